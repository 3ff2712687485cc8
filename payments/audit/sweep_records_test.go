package audit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestSweepActionsRecordedAndAnnounced: the money actions no turn and no
// notification makes, those of the sweep, reach the chain and the merchant
// as the others do (SPEC 7, SPEC 2.6): a payment the sweep found by asking
// WeChat Pay (its close answered ORDERPAID, the notification never came) is
// recorded order.paid, cause and WeChat Pay's transaction on the record,
// and announced order.paid; an unpaid order the sweep expired is recorded
// order.expired and announced order.closed with status expired. Neither
// record names a provider, a model or a text: no turn caused them.
func TestSweepActionsRecordedAndAnnounced(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			w := newTestWorker(t, st, nil)
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			svc, sim := simService(t, st, w, payments.Options{Now: clock, Events: func(tr payments.Transition) []store.Event {
				return append(TransitionEvents(tr), webhook.Events(tr)...)
			}})
			ctx := context.Background()
			turn := TurnFromRequest("shop-bot", "oAlice", []byte(`{"temperature":0.3,"messages":[{"role":"user","content":"buy"}]}`), "openrouter", "openai/gpt-4o")
			first, err := svc.CreateOrder(payments.WithTurn(ctx, turn), payments.CreateRequest{Client: "shop-bot", User: "oAlice", SKU: "premium-monthly"})
			if err != nil {
				t.Fatal(err)
			}
			second, err := svc.CreateOrder(payments.WithTurn(ctx, turn), payments.CreateRequest{Client: "shop-bot", User: "oBob", SKU: "premium-monthly"})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			now = now.Add(payments.DefaultOrderTTL + time.Minute)
			mu.Unlock()
			// The payer paid just before the close: WeChat Pay answers the
			// sweep's close ORDERPAID, and no notification comes.
			sim.InjectFault(wxsim.Fault{Op: "close", Kind: wxsim.FaultOrderPaid})
			if _, err := svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			status := map[string]store.OrderStatus{}
			for _, no := range []string{first.Order.OrderNo, second.Order.OrderNo} {
				o, err := st.GetOrder(ctx, no)
				if err != nil {
					t.Fatal(err)
				}
				status[no] = o.Status
			}
			var paidNo, expiredNo string
			for no, s := range status {
				switch s {
				case store.StatusPaid:
					paidNo = no
				case store.StatusExpired:
					expiredNo = no
				}
			}
			if paidNo == "" || expiredNo == "" {
				t.Fatalf("after the sweep: %v; want one paid (its close answered ORDERPAID), one expired", status)
			}
			drainAll(t, w)

			_, recs := chainEvents(t, st)
			last := map[string]Record{}
			for _, r := range recs {
				last[r.OrderNo] = r
			}
			if r := last[paidNo]; r.Name != "order.paid" || r.StatusBefore != "awaiting_payment" || r.Cause == "" ||
				r.TransactionID == "" || r.NotificationID != "" || r.AmountFen != 4999 {
				t.Errorf("the sweep's payment: last record %+v; want order.paid from awaiting_payment with its cause, the transaction, no notification, 4999", r)
			}
			if r := last[expiredNo]; r.Name != "order.expired" || r.Status != "expired" || r.Cause == "" {
				t.Errorf("the sweep's expiry: last record %+v; want order.expired", r)
			}
			for _, no := range []string{paidNo, expiredNo} {
				if r := last[no]; r.Provider != "" || r.Model != "" || r.Params != nil || r.TextSHA256 != "" {
					t.Errorf("%s: the sweep's record carries a turn: provider %q model %q params %v text %q", no, r.Provider, r.Model, r.Params, r.TextSHA256)
				}
			}

			due, err := st.DueEvents(ctx, now.Add(time.Hour), 100, webhook.Kind)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, ev := range due {
				got[ev.Key] = gjson.GetBytes(ev.Payload, "type").Str + "/" + gjson.GetBytes(ev.Payload, "data.order.status").Str
			}
			if got[paidNo] != "order.paid/paid" || got[expiredNo] != "order.closed/expired" {
				t.Errorf("webhooks queued: %v; want order.paid/paid for %s and order.closed/expired for %s", got, paidNo, expiredNo)
			}
		})
	}
}
