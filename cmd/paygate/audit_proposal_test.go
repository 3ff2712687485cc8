package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// enqueueBlipStore fails EnqueueEvents as a Redis blip would.
type enqueueBlipStore struct {
	store.Store
	fail int
}

func (b *enqueueBlipStore) EnqueueEvents(ctx context.Context, evs ...store.Event) error {
	if b.fail > 0 {
		b.fail--
		return store.ErrUnavailable
	}
	return b.Store.EnqueueEvents(ctx, evs...)
}

// TestRefundProposalAuditSurvivesEnqueueBlip: a refund proposal is a money
// action (SPEC 7). Its audit record was enqueued once, after the proposal
// was written and apart from it: one failed enqueue left a live proposal
// without its record (and the conversation that led to the refund) for good.
// The record now rides the proposal's own write; no separate enqueue is left
// to fail.
func TestRefundProposalAuditSurvivesEnqueueBlip(t *testing.T) {
	ctx := context.Background()
	cfg, err := config.Parse([]byte(`clients: [{name: bot, key: sk-paygate-test-0123456789}]`), "t.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			st := &enqueueBlipStore{Store: testdrivers.Open(t, driver, nil), fail: 1000}
			au, err := newAuditing(cfg, st, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			turn := &payments.Turn{Client: "bot", User: "oAlice", Provider: "fake", Model: "openai/gpt-4o",
				Messages: []byte(`[{"role":"user","content":"refund please"}]`)}
			tctx := payments.WithTurn(ctx, turn)
			p := &store.RefundProposal{RefundID: "rf_blip1", OrderNo: "PG1", Client: "bot", User: "oAlice",
				AmountFen: 4999, Reason: "changed my mind", OutRefundNo: payments.OutRefundNo("rf_blip1")}
			// What payments.ProposeRefund does with the options serve wires.
			if err := st.PutRefundProposal(tctx, p, 15*time.Minute, audit.ProposalEvents(tctx, payments.ProposalMade, *p, nil)...); err != nil {
				t.Fatal(err)
			}
			au.proposed(tctx, *p)
			if _, err := au.worker.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := st.GetRefundProposal(ctx, p.RefundID); err != nil {
				t.Fatalf("proposal: %v; want it live (the user can confirm it)", err)
			}
			res, err := audit.Verify(ctx, st, audit.VerifyOptions{Texts: true})
			if err != nil || res.Records != 1 || res.TextsChecked != 1 {
				t.Fatalf("verify: %+v %v; want the refund.proposed record with its text", res, err)
			}
			recs, err := st.ReadAudit(ctx, 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			r, err := audit.Decode(recs[0].Body)
			if err != nil || r.Name != "refund.proposed" || r.RefundID != p.RefundID || r.Provider != "fake" {
				t.Errorf("record %+v %v; want refund.proposed of %s with its turn", r, err, p.RefundID)
			}
		})
	}
}

// TestRefundProposalAuditedThroughServe: the refund.proposed record is
// written with the proposal by the application as served (the payments
// options serve wires), with the turn that proposed it, on both drivers.
func TestRefundProposalAuditedThroughServe(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var orderNo string
			up := refundProvider(t, &orderNo, "it does not work for me")
			p := testdrivers.NewPlace(t, driver, nil)
			storeYAML := `store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}`
			if driver == "redis" {
				storeYAML = `store: {driver: redis, redis: {addrs: ["` + testdrivers.RedisAddr() + `"], key_prefix: "` + p.Prefix + `"}}`
			}
			url, a := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
`+storeYAML+`
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`, io.Discard)
			const user = "oUser-refund-audit"
			orderNo = paidByChat(t, url, a, user)
			ans := chatAs(t, url, user, "I want a refund")
			id := ans.Get(`paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str
			if id == "" {
				t.Fatalf("no refund proposed: %s", ans.Raw)
			}
			ctx := context.Background()
			var got *audit.Record
			for deadline := time.Now().Add(10 * time.Second); got == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				recs, err := a.store.ReadAudit(ctx, 1, 100)
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range recs {
					if r, err := audit.Decode(rec.Body); err == nil && r.Name == "refund.proposed" {
						got = &r
					}
				}
			}
			if got == nil {
				t.Fatal("no refund.proposed record appended")
			}
			if got.RefundID != id || got.OrderNo != orderNo || got.User != user || got.RefundFen != 4999 ||
				got.Provider != "fake" || got.Model == "" || got.TextSHA256 == "" {
				t.Errorf("record %+v; want refund.proposed of %s for %s with its turn", got, id, orderNo)
			}
			text, err := a.store.GetAuditText(ctx, got.Seq)
			if err != nil || !strings.Contains(string(text), "I want a refund") {
				t.Errorf("kept text %q %v; want the conversation that led to the refund", text, err)
			}
		})
	}
}
