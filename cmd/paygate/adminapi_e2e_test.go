package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// TestAdminOrdersPaging pages GET /admin/api/orders with the next_before it
// hands out, through orders that share a second (created_at shows only the
// second) and one instant (told apart by number): every page size must show
// every order once, newest first, and the last page must say there is no
// more.
func TestAdminOrdersPaging(t *testing.T) {
	_, adminURL, a, _ := consoleApp(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := map[string]time.Duration{
		"PGPAGE0005": 1500 * time.Millisecond, // the next second
		"PGPAGE0004": 900 * time.Millisecond,
		"PGPAGE0001": 500 * time.Millisecond, // 0001..0003: one instant
		"PGPAGE0002": 500 * time.Millisecond,
		"PGPAGE0003": 500 * time.Millisecond,
		"PGPAGE0000": 100 * time.Millisecond,
	}
	for no, d := range at {
		o := &store.Order{OrderNo: no, Client: "bot", User: "oUser-paging", SKU: "premium-monthly", Description: "Premium tier, 1 month",
			Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: store.StatusAwaitingPayment,
			ClaimKey: "k" + no, Generation: 1, CreatedAt: base.Add(d), ExpiresAt: base.Add(2 * time.Hour)}
		if err := a.store.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	want := "[PGPAGE0005 PGPAGE0004 PGPAGE0003 PGPAGE0002 PGPAGE0001 PGPAGE0000]"

	for _, tc := range []struct {
		name  string
		query string
	}{
		{"one per page", "limit=1"},
		{"two per page", "limit=2"},
		{"four per page", "limit=4"},
		{"all on one page", "limit=6"},
		{"by user across clients", "limit=2&user=oUser-paging"},
		{"by status", "limit=2&status=awaiting_payment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen []string
			before := ""
			for page := 0; ; page++ {
				if page > len(at) {
					t.Fatalf("no end after %d pages: %v", page, seen)
				}
				q := "?" + tc.query
				if before != "" {
					q += "&before=" + url.QueryEscape(before)
				}
				body := adminOK(t, adminURL+"/admin/api/orders"+q)
				for _, o := range body.Get("orders").Array() {
					seen = append(seen, o.Get("order_no").Str)
				}
				next := body.Get("next_before")
				if !next.Exists() {
					t.Fatalf("page %d has no next_before: %s", page, body.Raw)
				}
				if next.Type == gjson.Null {
					break
				}
				before = next.Str
			}
			if got := fmt.Sprint(seen); got != want {
				t.Errorf("paged through %s; want %s", got, want)
			}
		})
	}

	// A bare RFC 3339 time is still a cursor: strictly before it.
	got := adminOK(t, adminURL+"/admin/api/orders?before="+url.QueryEscape(base.Add(500*time.Millisecond).Format(time.RFC3339Nano)))
	if o := got.Get("orders.#.order_no").String(); o != `["PGPAGE0000"]` {
		t.Errorf("before a bare time: %s; want [PGPAGE0000]", o)
	}
	if st, body := httpCall(t, http.MethodGet, adminURL+"/admin/api/orders?before=yesterday", "Bearer "+consoleToken, ""); st != http.StatusBadRequest || body.Get("error").Str == "" {
		t.Errorf("before=yesterday: %d %s; want 400 with an error", st, body.Raw)
	}
}

// TestAdminApprovalsAndRefundsPaging pages GET /admin/api/approvals and GET
// /admin/api/refunds with the next_before they hand out, as the order list
// pages: each list is newest first and capped, so without a cursor the
// oldest held orders (the nearest their approval deadline) and a refund
// still in flight behind newer finished ones could not be reached. Every
// page size must show every listed order once, in order, the last page
// must say there is no more, and orders that are not listed (a paid order
// among the refunds, an order in review with no refund) take no place.
func TestAdminApprovalsAndRefundsPaging(t *testing.T) {
	// Once a day: the refund in flight below has no refund at WeChat Pay,
	// and a sweep after the one at start sends it to review (as
	// TestConsoleReadsEveryPage's did in a loaded run).
	_, adminURL, a, _ := consoleApp(t, withConfig(func(c *config.Config) { c.Payments.Reconcile.SweepInterval = config.Duration(24 * time.Hour) }))
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	mk := func(no string, st store.OrderStatus, d time.Duration, refunded int64) {
		t.Helper()
		o := &store.Order{OrderNo: no, Client: "bot", User: "oUser-" + no, SKU: "premium-yearly", Description: "Premium tier, 1 year",
			Quantity: 2, AmountFen: 99800, Currency: "CNY", PayMethod: "jsapi", Status: st, RefundedFen: refunded,
			ClaimKey: "k" + no, Generation: 1, CreatedAt: base.Add(d), ExpiresAt: base.Add(48 * time.Hour)}
		if err := a.store.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// Held orders: the oldest first to reach its deadline; three share one
	// instant (told apart by number).
	mk("PGHELD0000", store.StatusApprovalRequired, 100*time.Millisecond, 0)
	mk("PGHELD0001", store.StatusApprovalRequired, 500*time.Millisecond, 0)
	mk("PGHELD0002", store.StatusApprovalRequired, 500*time.Millisecond, 0)
	mk("PGHELD0003", store.StatusApprovalRequired, 500*time.Millisecond, 0)
	mk("PGHELD0004", store.StatusApprovalRequired, 1500*time.Millisecond, 0)
	// Refunds: the one still in flight is the oldest.
	mk("PGRFND0000", store.StatusRefunding, 100*time.Millisecond, 0)
	mk("PGRFND0001", store.StatusRefunded, 500*time.Millisecond, 99800)
	mk("PGRFND0002", store.StatusPartiallyRefunded, 500*time.Millisecond, 1000)
	mk("PGRFND0003", store.StatusNeedsReview, 500*time.Millisecond, 500) // money went back, then review
	mk("PGRFND0004", store.StatusNeedsReview, 900*time.Millisecond, 0)   // in review, no refund: not listed
	mk("PGRFND0005", store.StatusPaid, 1000*time.Millisecond, 0)         // no refund: not listed
	mk("PGRFND0006", store.StatusRefunded, 1500*time.Millisecond, 99800)

	for _, list := range []struct {
		path, numbers string
		want          string
	}{
		{"/admin/api/approvals", "approvals.#.order_no", "[PGHELD0004 PGHELD0003 PGHELD0002 PGHELD0001 PGHELD0000]"},
		{"/admin/api/refunds", "refunds.#.order.order_no", "[PGRFND0006 PGRFND0003 PGRFND0002 PGRFND0001 PGRFND0000]"},
	} {
		for _, limit := range []int{1, 2, 3, 5, 6} {
			t.Run(fmt.Sprintf("%s limit=%d", list.path, limit), func(t *testing.T) {
				var seen []string
				before := ""
				for page := 0; ; page++ {
					if page > 6 {
						t.Fatalf("no end after %d pages: %v", page, seen)
					}
					q := fmt.Sprintf("?limit=%d", limit)
					if before != "" {
						q += "&before=" + url.QueryEscape(before)
					}
					body := adminOK(t, adminURL+list.path+q)
					for _, no := range body.Get(list.numbers).Array() {
						seen = append(seen, no.Str)
					}
					next := body.Get("next_before")
					if !next.Exists() {
						t.Fatalf("page %d has no next_before: %s", page, body.Raw)
					}
					if next.Type == gjson.Null {
						break
					}
					before = next.Str
				}
				if got := fmt.Sprint(seen); got != list.want {
					t.Errorf("paged through %s; want %s", got, list.want)
				}
			})
		}
		if st, body := httpCall(t, http.MethodGet, adminURL+list.path+"?before=yesterday", "Bearer "+consoleToken, ""); st != http.StatusBadRequest || body.Get("error").Str == "" {
			t.Errorf("%s?before=yesterday: %d %s; want 400 with an error", list.path, st, body.Raw)
		}
	}
}

// TestAdminDecisionRecordsWhoAndWhy: an operator's approval or rejection is
// audited with who made it and why: actor kind "admin", the admin request's
// id (its X-Request-Id, the key to its log line) and remote address, and
// the operator's name and reason when the optional JSON body gives them.
// They are in the record's hashed body, and the chain verifies. A body that
// is not such an object, or whose values are too long or of the wrong
// kind, is a 400 in the admin API's error format, and nothing is decided.
func TestAdminDecisionRecordsWhoAndWhy(t *testing.T) {
	_, adminURL, a, outcomes := consoleApp(t)
	ctx := context.Background()
	hold := func(user string) string {
		t.Helper()
		res, err := a.payments.CreateOrder(ctx, payments.CreateRequest{Client: "bot", User: user, SKU: "premium-yearly", Quantity: 2})
		if err != nil || res.Order.Status != store.StatusApprovalRequired {
			t.Fatalf("create: %+v %v; want approval_required", res, err)
		}
		return res.Order.OrderNo
	}
	decide := func(no, verb, body string) (*http.Response, gjson.Result) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, adminURL+"/admin/api/approvals/"+no+"/"+verb, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+consoleToken)
		req.Header.Set(console.CSRFHeader, "1")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, gjson.ParseBytes(b)
	}
	reason := strings.Repeat("理", 1000) // the longest reason, 3000 bytes
	for _, tc := range []struct {
		name, verb, body string
		action           string
		operator, reason string
	}{
		{name: "reject with who and why", verb: "reject", body: `{"operator":"alice","reason":"suspected fraud"}`,
			action: "order.rejected", operator: "alice", reason: "suspected fraud"},
		{name: "approve without a body", verb: "approve", action: "order.approved"},
		{name: "approve with an empty object", verb: "approve", body: ` {} `, action: "order.approved"},
		{name: "approve with the longest reason", verb: "approve", body: `{"reason":"` + reason + `","operator":null}`,
			action: "order.approved", reason: reason},
	} {
		t.Run(tc.name, func(t *testing.T) {
			no := hold("oUser-decision-" + strings.ReplaceAll(tc.name, " ", "-"))
			resp, body := decide(no, tc.verb, tc.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.verb, resp.StatusCode, body.Raw)
			}
			id := resp.Header.Get("X-Request-Id")
			rec := auditRecord(t, a, outcomes, no, tc.action)
			if !rec.Exists() {
				t.Fatalf("no %s record of %s", tc.action, no)
			}
			act := rec.Get("actor")
			if act.Get("kind").Str != "admin" || act.Get("request_id").Str != id || id == "" ||
				!strings.HasPrefix(act.Get("remote_addr").Str, "127.0.0.1:") {
				t.Errorf("actor %s; want kind admin, request id %s, a remote address", act.Raw, id)
			}
			if act.Get("operator").Str != tc.operator || act.Get("reason").Str != tc.reason {
				t.Errorf("actor operator %q reason %q; want %q and %q", act.Get("operator").Str, act.Get("reason").Str, tc.operator, tc.reason)
			}
			for _, k := range []string{"operator", "reason"} {
				if v := act.Get(k); v.Exists() && v.Str == "" {
					t.Errorf("actor %s: an empty %s is written; want it left out", act.Raw, k)
				}
			}
		})
	}

	no := hold("oUser-decision-refused")
	for _, tc := range []struct{ name, body string }{
		{"not JSON", `{"reason":`},
		{"not an object", `["suspected fraud"]`},
		{"two values", `{} {}`},
		{"an unknown member", `{"reasn":"suspected fraud"}`},
		{"a reason that is not a string", `{"reason":5}`},
		{"an operator that is not a string", `{"operator":{"name":"alice"}}`},
		{"a reason too long", `{"reason":"` + reason + `x"}`},
		{"an operator too long", `{"operator":"` + strings.Repeat("a", 129) + `"}`},
		{"an operator with a line break", `{"operator":"alice\nroot"}`},
		{"an operator with a line separator", `{"operator":"alice\u2028root"}`},
		{"an operator with a paragraph separator", "{\"operator\":\"alice\u2029root\"}"},
		{"a body too large", `{"reason":"` + strings.Repeat(" ", 64<<10) + `"}`},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			resp, body := decide(no, "reject", tc.body)
			if resp.StatusCode != http.StatusBadRequest || body.Get("error").Type != gjson.String || body.Get("error").Str == "" ||
				resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%d %s %s; want 400 with the admin API's {\"error\": \"…\"}", resp.StatusCode, resp.Header.Get("Content-Type"), body.Raw)
			}
		})
	}
	if o, err := a.store.GetOrder(ctx, no); err != nil || o.Status != store.StatusApprovalRequired {
		t.Errorf("after refused decisions: %+v %v; want still approval_required", o, err)
	}
	if rec := auditRecord(t, a, outcomes, no, "order.rejected"); rec.Exists() {
		t.Errorf("a refused decision was recorded: %s", rec.Raw)
	}
	if _, err := audit.Verify(ctx, a.store, audit.VerifyOptions{Texts: true}); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// auditRecord is the hashed body of the chain's record of action on order
// no, once the audit worker has appended it (none when the outbox empties
// without it): an order's audit events wait in its queue behind its
// merchant webhooks, so each delivery (an outcome) may let the next one
// through.
func auditRecord(t *testing.T, a *app, outcomes <-chan webhook.Result, no, action string) gjson.Result {
	t.Helper()
	ctx := context.Background()
	for {
		if _, err := a.audit.worker.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		recs, err := a.store.ReadAudit(ctx, 1, store.MaxListLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if b := gjson.ParseBytes(r.Body); b.Get("order_no").Str == no && b.Get("action").Str == action {
				return b
			}
		}
		if st, err := a.store.OutboxStats(ctx); err != nil || st.Pending == 0 {
			return gjson.Result{}
		}
		select {
		case <-outcomes:
		case <-time.After(15 * time.Second):
			t.Fatalf("no %s record of %s, and no webhook delivered for 15 s", action, no)
		}
	}
}

// TestAdminOrdersByUserFindsOrphanPayments: a payment WeChat Pay reports for
// an order paygate does not know is recorded as an orphan with no client,
// under the payer's OpenID. The admin's user search across clients (the
// console's "user (OpenID)" box) finds it beside the user's orders of a
// client, newest first and paged as any other; naming a client or a status
// narrows as it does for those.
func TestAdminOrdersByUserFindsOrphanPayments(t *testing.T) {
	mainURL, adminURL, a, _ := consoleApp(t)
	ctx := context.Background()
	const ghost, payer = "PGghostByUser0000001", "oUser-orphan-payer"
	res, err := a.payments.CreateOrder(ctx, payments.CreateRequest{Client: "bot", User: payer, SKU: "premium-monthly", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	mine := res.Order.OrderNo
	tx := wxsim.Transaction{AppID: a.sim.AppID(), MchID: a.sim.MchID(), OutTradeNo: ghost, TransactionID: "4200001234" + strings.Repeat("6", 18),
		TradeType: "JSAPI", TradeState: "SUCCESS", TradeStateDesc: "支付成功", BankType: "OTHERS",
		SuccessTime: time.Now().Format(time.RFC3339), Payer: &wxsim.Payer{OpenID: payer},
		Amount: wxsim.Amount{Total: 777, PayerTotal: 777, Currency: "CNY", PayerCurrency: "CNY"}}
	n, err := a.sim.BuildNotification(wxsim.NotificationSpec{EventType: "TRANSACTION.SUCCESS", Summary: "支付成功", OriginalType: "transaction", Resource: tx})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := a.sim.Deliver(ctx, mainURL+"/wechatpay/notify", n); err != nil || code/100 != 2 {
		t.Fatalf("deliver: %d %v", code, err)
	}
	if o, err := a.store.GetOrder(ctx, ghost); err != nil || o.Status != store.StatusNeedsReview || o.Client != "" || o.User != payer {
		t.Fatalf("orphan %+v %v; want needs_review with no client, user %s", o, err, payer)
	}

	u := adminURL + "/admin/api/orders?user=" + payer
	if got, want := adminOK(t, u).Get("orders.#.order_no").String(), fmt.Sprintf("[%q,%q]", ghost, mine); got != want {
		t.Errorf("by user: %s; want %s (the orphan, then the bot's order)", got, want)
	}
	var seen []string
	for before := ""; ; {
		q := u + "&limit=1"
		if before != "" {
			q += "&before=" + url.QueryEscape(before)
		}
		body := adminOK(t, q)
		for _, o := range body.Get("orders").Array() {
			seen = append(seen, o.Get("order_no").Str)
		}
		next := body.Get("next_before")
		if next.Type == gjson.Null || len(seen) > 2 {
			break
		}
		before = next.Str
	}
	if got, want := fmt.Sprint(seen), fmt.Sprint([]string{ghost, mine}); got != want {
		t.Errorf("by user, one per page: %s; want %s", got, want)
	}
	if got, want := adminOK(t, u+"&client=bot").Get("orders.#.order_no").String(), fmt.Sprintf("[%q]", mine); got != want {
		t.Errorf("by user of client bot: %s; want %s", got, want)
	}
	if got, want := adminOK(t, u+"&status=needs_review").Get("orders.#.order_no").String(), fmt.Sprintf("[%q]", ghost); got != want {
		t.Errorf("by user in needs_review: %s; want %s", got, want)
	}
}

// TestAdminWrongMethod: a known admin path asked with a method it does not
// serve is a 405 naming the methods it does (Allow) with the admin API's
// JSON error, on every admin route whoever mounts it; an unknown path stays
// a 404, and without the token both stay a 401.
func TestAdminWrongMethod(t *testing.T) {
	_, adminURL, _, _ := consoleApp(t)
	for _, tc := range []struct {
		method, path string
		token        bool
		status       int
		allow        string
	}{
		{"POST", "/admin/api/orders", true, 405, "GET, HEAD"},
		{"DELETE", "/admin/api/orders", true, 405, "GET, HEAD"},
		{"GET", "/admin/api/approvals/PG1/approve", true, 405, "POST"},
		{"PUT", "/admin/api/approvals/PG1/reject", true, 405, "POST"},
		{"POST", "/admin/api/approvals", true, 405, "GET, HEAD"},
		{"POST", "/admin/api/refunds", true, 405, "GET, HEAD"},
		{"POST", "/admin/api/audit", true, 405, "GET, HEAD"},
		{"POST", "/admin/api/audit/head", true, 405, "GET, HEAD"},
		{"GET", "/admin/api/audit/texts/oUser", true, 405, "DELETE"},
		{"POST", "/admin/api/stats", true, 405, "GET, HEAD"},
		{"DELETE", "/admin/api/webhooks", true, 405, "GET, HEAD"},
		{"GET", "/admin/api/orders/PG1/webhook", true, 405, "POST"},
		{"GET", "/admin/api/nothing", true, 404, ""},
		{"POST", "/admin/api/orders/PG1", true, 405, "GET, HEAD"},
		{"POST", "/admin/api/orders/PG1/nothing", true, 404, ""},
		{"GET", "/admin/api/", true, 404, ""},
		{"POST", "/admin/api/orders", false, 401, ""},
		{"GET", "/admin/api/nothing", false, 401, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			h := map[string]string{console.CSRFHeader: "1"}
			if tc.token {
				h["Authorization"] = "Bearer " + consoleToken
			}
			resp, b := adminDo(t, tc.method, adminURL+tc.path, h)
			if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow {
				t.Errorf("%d Allow=%q %s; want %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"), strings.TrimSpace(string(b)), tc.status, tc.allow)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" || gjson.GetBytes(b, "error").Str == "" {
				t.Errorf("body %q (%s); want the admin API's JSON error", b, ct)
			}
		})
	}
}

// adminOK GETs an admin URL with the console's token and wants a 200.
func adminOK(t *testing.T, u string) gjson.Result {
	t.Helper()
	st, body := httpCall(t, http.MethodGet, u, "Bearer "+consoleToken, "")
	if st != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, st, body.Raw)
	}
	return body
}
