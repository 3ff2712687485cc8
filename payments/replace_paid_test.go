package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestReplacingPaidOrderAnswersPaid: the purchase's open order is paid at
// WeChat Pay and its notification has not arrived (lost, or on its way)
// when the purchase is asked again in the order's last minute (a renewal)
// or in the other pay method (a switch), on a day whose orders the user
// has used up. The query the replacement starts with says SUCCESS: the
// payment is recorded and the ask answered as paid. Counted first, the
// renewal met the daily limit and handed the paid order back with fresh
// payment parameters (the model told the user to pay again), and the
// switch answered "daily order limit reached" to a user who had paid.
func TestReplacingPaidOrderAnswersPaid(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		left   time.Duration // before the order's deadline, at the ask
		method string
	}{
		{name: "renewal in the last minute", left: 30 * time.Second},
		{name: "switch of pay method", left: time.Hour, method: "native"},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", service: func(o *payments.Options) {
					o.Rules.MaxOrdersPerUserPerDay = 1
				}})
				user := "oUser-replace-paid-" + driver
				old := e.create(user, 1)
				e.clock.Advance(old.ExpiresAt.Sub(e.clock.Now()) - tt.left)
				if _, err := e.sim.Pay(ctx, old.OrderNo); err != nil {
					t.Fatalf("pay: %v", err)
				}
				if got := e.order(old.OrderNo).Status; got != store.StatusAwaitingPayment {
					t.Fatalf("paid order with its notification lost: %s; want awaiting_payment", got)
				}
				res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1, PayMethod: tt.method})
				if err != nil || res == nil || res.Order == nil {
					t.Fatalf("asked again: %+v, %v; want the paid order", res, err)
				}
				if res.Order.OrderNo != old.OrderNo || res.Order.Status != store.StatusPaid || res.Payment != nil || res.CodeURL != "" {
					t.Errorf("answer: order %s %s, payment %v, code_url %q; want %s paid with no payment", res.Order.OrderNo, res.Order.Status, res.Payment != nil, res.CodeURL, old.OrderNo)
				}
				if got := e.order(old.OrderNo).Status; got != store.StatusPaid {
					t.Errorf("the order as stored: %s; want paid", got)
				}
				if n := e.sim.OrderCount(); n != 1 {
					t.Errorf("orders at WeChat Pay: %d; want 1", n)
				}
			})
		}
	}
}
