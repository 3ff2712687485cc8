package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestCreatingNotSupersededByAnotherPurchase: an order left creating and
// never opened at WeChat Pay is superseded only by a later order of its
// own purchase made under a later generation of its claim. A later order
// of another purchase of the user (another quantity or SKU, with a
// generation counter of its own), one of no later generation, or the record of an abandoned number of
// its purchase (never an order: a taker bound the claim back to this
// one) leaves it the purchase's order: the sweep prepays it. Closed
// instead, the order the user was told is being created is gone.
func TestCreatingNotSupersededByAnotherPurchase(t *testing.T) {
	tests := []struct {
		name  string
		later func(o *store.Order)
	}{
		{"another quantity", func(o *store.Order) { o.Quantity, o.Status = 2, store.StatusExpired }},
		{"another sku", func(o *store.Order) { o.SKU, o.Status = "premium-yearly", store.StatusExpired }},
		{"an abandoned number of the purchase", func(o *store.Order) { o.Status = store.StatusClosed }},
		// Made under a key of another numbering (one that held the pay
		// method, by a replica not yet upgraded): not a later generation.
		{"no later generation", func(o *store.Order) {
			o.ClaimKey, o.Generation, o.PayMethod, o.Status = "legacy-key", 0, "native", store.StatusExpired
		}},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, notifyTo: "sink"})
				user := "oUser-not-superseded-" + driver
				o := e.creatingOrder(payments.NewOrderNo(e.clock.Now().Add(-time.Minute)), user, time.Minute)
				at := e.clock.Now().Add(-30 * time.Second)
				p := *o
				p.OrderNo, p.Generation, p.CreatedAt, p.UpdatedAt = payments.NewOrderNo(at), o.Generation+3, at, at
				tt.later(&p)
				if err := e.st.CreateOrder(context.Background(), &p); err != nil {
					t.Fatal(err)
				}
				if _, err := e.svc.Sweep(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment {
					t.Errorf("the purchase's creating order after the sweep: %s; want awaiting_payment (prepaid)", got.Status)
				}
			})
		}
	}
}

// TestSupersededOpenAtWeChatIsClosedThere: a creating order WeChat Pay
// did open (its prepay's record was lost) whose purchase moved on to a
// later generation's order, also open, is closed at WeChat Pay and here,
// its count given back, not prepaid again: found open (NOTPAY) the sweep
// recorded it awaiting_payment beside the purchase's order, two orders of
// one purchase open at WeChat Pay, each payable.
func TestSupersededOpenAtWeChatIsClosedThere(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink"})
			user := "oUser-superseded-open-" + driver
			o := e.creatingOrder(payments.NewOrderNo(e.clock.Now().Add(-time.Minute)), user, time.Minute)
			e.prepayAtWeChat(o)
			at := e.clock.Now().Add(-30 * time.Second)
			p := *o
			p.OrderNo, p.Generation, p.CreatedAt, p.UpdatedAt, p.Status = payments.NewOrderNo(at), o.Generation+1, at, at, store.StatusAwaitingPayment
			if err := e.st.CreateOrder(context.Background(), &p); err != nil {
				t.Fatal(err)
			}
			e.prepayAtWeChat(&p)
			if _, err := e.svc.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusClosed {
				t.Errorf("the superseded order open at WeChat Pay after the sweep: %s; want closed", got.Status)
			}
			tx, err := e.client.QueryOrder(context.Background(), o.OrderNo)
			if err != nil || tx.TradeState != "CLOSED" {
				t.Errorf("the superseded order at WeChat Pay: %+v, %v; want CLOSED", tx, err)
			}
		})
	}
}
