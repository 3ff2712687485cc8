package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestResendIsAudited: an operator's webhook resend that queued something
// (the given-up order.paid sent again, then a forced new one, on which the
// merchant delivers the goods again) is a money action, and the chain
// records each with the order, the events queued, whether it was forced
// and who asked (actor: the admin request's id, and the operator and
// reason of the optional body, as a decision's). A resend that queued
// nothing (refused) records nothing. The chain verifies. A resend left
// only a log line that named no operator.
func TestResendIsAudited(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var down atomic.Bool
			down.Store(true)
			m := newMerchant(t, func(hookArrival, int) bool { return down.Load() })
			up := newScriptedProvider(t, purchaseScript)
			results := make(chan webhook.Result, 256)
			url, a, _ := hookApp(t, webhookStoreYAML(t, driver), up.URL, m.URL, "", func(r webhook.Result) { results <- r },
				withWebhookOptions(func(o *webhook.Options) {
					// hookApp's own, which this replaces, and a retry window of
					// a few attempts.
					o.RetryBase, o.MaxDelay, o.PollInterval = 20*time.Millisecond, 80*time.Millisecond, 10*time.Millisecond
					o.RetryFor = 100 * time.Millisecond
					o.Observe = func(r webhook.Result) { results <- r }
				}))
			admin := httptest.NewServer(a.adminHandler())
			t.Cleanup(admin.Close)
			ctx := context.Background()
			resend := func(no, query, body string) (int, gjson.Result, string) {
				t.Helper()
				req, err := http.NewRequest(http.MethodPost, admin.URL+"/admin/api/orders/"+no+"/webhook"+query, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+testAdminToken)
				req.Header.Set(console.CSRFHeader, "1")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, gjson.ParseBytes(b), resp.Header.Get("X-Request-Id")
			}
			records := func(no string) []gjson.Result {
				t.Helper()
				if _, err := a.audit.worker.Drain(ctx); err != nil {
					t.Fatal(err)
				}
				recs, err := a.store.ReadAudit(ctx, 1, 1000)
				if err != nil {
					t.Fatal(err)
				}
				var out []gjson.Result
				for _, r := range recs {
					if b := gjson.ParseBytes(r.Body); b.Get("order_no").Str == no && b.Get("action").Str == "webhook.resent" {
						out = append(out, b)
					}
				}
				return out
			}

			no, _ := orderFor(t, url, testOpenID, "premium please")
			if d, err := a.sim.Pay(ctx, no); err != nil || !d.Acked {
				t.Fatalf("pay: %+v %v", d, err)
			}
			var paidID string
			for paidID == "" {
				r := nextResult(t, results, "the order.paid given up")
				if r.Type == webhook.TypeOrderPaid && r.Outcome == webhook.OutcomeGivenUp {
					paidID = r.EventID
				}
			}
			down.Store(false)

			status, body, reqID := resend(no, "", `{"operator":"alice","reason":"endpoint back"}`)
			if status != http.StatusAccepted || body.Get("event_id").Str != paidID {
				t.Fatalf("resend of the given-up order.paid: %d %s; want 202 naming %s", status, body.Raw, paidID)
			}
			for {
				r := nextResult(t, results, "the resent order.paid delivered")
				if r.EventID == paidID && r.Outcome == webhook.OutcomeDelivered {
					break
				}
			}
			// Nothing lost any more: refused, nothing queued, nothing recorded.
			if status, body, _ := resend(no, "", ""); status != http.StatusConflict {
				t.Fatalf("resend of a delivered order.paid: %d %s; want 409", status, body.Raw)
			}
			fStatus, fBody, fReqID := resend(no, "?force=true", "")
			if fStatus != http.StatusAccepted || fBody.Get("event_id").Str == paidID {
				t.Fatalf("forced resend: %d %s; want 202 with a new event", fStatus, fBody.Raw)
			}
			m.await(t, "the forced order.paid", func(h hookArrival) bool { return h.env.ID == fBody.Get("event_id").Str })

			// The forced event reaches the merchant from the delivery
			// queue possibly before the relay's move took it off the
			// order's queue, where the record waits behind it: sealed
			// once the audit worker reaches it.
			recs := records(no)
			for deadline := time.Now().Add(10 * time.Second); len(recs) < 2 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond) // a poll: the move's take-off is not observable
				recs = records(no)
			}
			if len(recs) != 2 {
				t.Fatalf("%d webhook.resent records of %s; want 2 (the resend and the forced one; none for the refusal): %v", len(recs), no, recs)
			}
			for i, tc := range []struct {
				reqID, eventID, operator, reason string
				forced                           bool
			}{
				{reqID, paidID, "alice", "endpoint back", false},
				{fReqID, fBody.Get("event_id").Str, "", "", true},
			} {
				rec := recs[i]
				if rec.Get("client").Str != "bot" || rec.Get("user").Str != testOpenID || rec.Get("status").Str != "paid" {
					t.Errorf("record %d %s; want client bot, user %s, status paid", i, rec.Raw, testOpenID)
				}
				if rec.Get("forced").Bool() != tc.forced {
					t.Errorf("record %d forced %v; want %v", i, rec.Get("forced").Bool(), tc.forced)
				}
				evs := rec.Get("webhooks").Array()
				if len(evs) != 1 || evs[0].Get("id").Str != tc.eventID || evs[0].Get("type").Str != webhook.TypeOrderPaid {
					t.Errorf("record %d webhooks %s; want [%s order.paid]", i, rec.Get("webhooks").Raw, tc.eventID)
				}
				act := rec.Get("actor")
				if act.Get("kind").Str != "admin" || tc.reqID == "" || act.Get("request_id").Str != tc.reqID ||
					act.Get("operator").Str != tc.operator || act.Get("reason").Str != tc.reason {
					t.Errorf("record %d actor %s; want kind admin, request id %s, operator %q, reason %q", i, act.Raw, tc.reqID, tc.operator, tc.reason)
				}
			}
			if _, err := audit.Verify(ctx, a.store, audit.VerifyOptions{}); err != nil {
				t.Errorf("verify: %v", err)
			}
			// A body a decision would refuse is refused here too, and sends nothing.
			if status, body, _ := resend(no, "?force=true", `{"operater":"alice"}`); status != http.StatusBadRequest {
				t.Errorf("resend with an unknown member: %d %s; want 400", status, body.Raw)
			}
			if n := len(records(no)); n != 2 {
				t.Errorf("%d webhook.resent records after the refused body; want 2", n)
			}
		})
	}
}
