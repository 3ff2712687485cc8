package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestQueryAnswerOfNotifiedPaymentStaysPaid: a query answer of a payment
// already applied from its notification (a reconciliation or a user's
// message that read the order as pending just before the notification
// landed) is WeChat Pay's word of the same transaction, JSAPI or Native
// (whose payer is whoever scanned): a copy, not a disagreement that sends a
// good paid order to needs_review (copyDisagreement).
func TestQueryAnswerOfNotifiedPaymentStaysPaid(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	for _, method := range []string{"jsapi", "native"} {
		t.Run(method, func(t *testing.T) {
			res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-copyquery-" + method, SKU: "premium-monthly", Quantity: 1, PayMethod: method})
			if err != nil || res.Order.Status != store.StatusAwaitingPayment {
				t.Fatalf("create: %v %+v", err, res)
			}
			stale := res.Order
			d, err := e.sim.Pay(ctx, stale.OrderNo)
			if err != nil {
				t.Fatal(err)
			}
			paid := e.order(stale.OrderNo)
			if paid.Status != store.StatusPaid {
				t.Fatalf("after the notification (%+v): %s %q; want paid", d, paid.Status, paid.ReviewReason)
			}
			e.clock.Advance(time.Minute)
			got := e.svc.RefreshPending(ctx, []*store.Order{stale})
			after := e.order(stale.OrderNo)
			if got[0].Status != store.StatusPaid || after.Status != store.StatusPaid || after.Version != paid.Version {
				t.Errorf("after the query: %s v%d %q; want paid v%d", after.Status, after.Version, after.ReviewReason, paid.Version)
			}
		})
	}
}
