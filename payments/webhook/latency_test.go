package webhook_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// auditedOrders commits order transitions as paygate does with the audit
// on: each transition's audit record first, then its webhook, on the
// order's queue, so each webhook waits behind an audit record.
type auditedOrders struct {
	t  testing.TB
	st store.Store
}

func (o auditedOrders) commit(ord *store.Order, before store.Order, cause string, refund *store.RefundProposal) {
	o.t.Helper()
	tr := payments.Transition{Before: before, After: *ord, Cause: cause, Refund: refund}
	evs := append(audit.TransitionEvents(tr), webhook.Events(tr)...)
	var err error
	if before.Status == "" {
		err = o.st.CreateOrder(context.Background(), ord, evs...)
	} else {
		err = o.st.UpdateOrder(context.Background(), ord, before.Status, evs...)
	}
	if err != nil {
		o.t.Fatalf("%s %s -> %s: %v", ord.OrderNo, before.Status, ord.Status, err)
	}
}

// TestAuditedEventsGoOutBackToBack: an order paid and then refunded, each
// transition's webhook queued behind its audit record, reaches the merchant
// as order.paid then refund.succeeded with neither the relay's nor the audit
// worker's poll firing (both an hour): the audit worker's acknowledgement
// wakes the relay, and the relay's move wakes the audit worker for the
// records behind it. Each waited for the other's next poll, so an order's
// events went out one poll apart (refund.succeeded seconds after the
// refund settled).
func TestAuditedEventsGoOutBackToBack(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			rc := newReceiver(t, time.Now, nil)
			st := testdrivers.Open(t, driver, nil)
			ob := auditedOrders{t, st}
			now := time.Now()
			o := &store.Order{
				OrderNo: "PBACK" + driver, Client: "shop-bot", AppID: "wxapp1", User: "oUser-back", SKU: "premium-monthly",
				Description: "Premium", Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi",
				Status: store.StatusAwaitingPayment, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(30 * time.Minute).Truncate(time.Second),
			}
			ob.commit(o, store.Order{}, "create", nil)
			step := func(to store.OrderStatus, cause string, refund *store.RefundProposal) {
				before := *o
				o.Status, o.UpdatedAt = to, time.Now()
				if to == store.StatusPaid {
					o.PaidAt, o.TransactionID = o.UpdatedAt, "4200"+o.OrderNo
				}
				if to == store.StatusPartiallyRefunded {
					o.RefundedFen += refund.AmountFen
				}
				ob.commit(o, before, cause, refund)
			}
			p := &store.RefundProposal{RefundID: "rf_back", OrderNo: o.OrderNo, AmountFen: 1000, Reason: "damaged"}
			step(store.StatusPaid, "notification", nil)
			step(store.StatusRefunding, "refund", p)
			step(store.StatusPartiallyRefunded, "notification", p)

			results := make(chan webhook.Result, 16)
			var w *audit.Worker
			r := newRelay(t, st, rc.URL, time.Now, func(o *webhook.Options) {
				o.PollInterval = time.Hour // only wake-ups make it read the outbox
				o.Moved = func() { w.Wake() }
				o.Observe = func(res webhook.Result) { results <- res }
			})
			w, err := audit.NewWorker(audit.WorkerOptions{Store: st, PollInterval: time.Hour, Acked: r.Wake})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{}, 2)
			go func() { r.Run(ctx); done <- struct{}{} }()
			go func() { w.Run(ctx); done <- struct{}{} }()
			defer func() { cancel(); <-done; <-done }()
			for _, want := range []string{webhook.TypeOrderPaid, webhook.TypeRefundSucceeded} {
				select {
				case res := <-results:
					if res.Type != want || res.Outcome != webhook.OutcomeDelivered {
						t.Fatalf("result %+v; want %s delivered", res, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s not delivered without a poll (accepted so far: %v)", want, rc.acceptedTypes())
				}
			}
		})
	}
}
