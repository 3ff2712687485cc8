package payments_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestAskAgainAfterCloseAnsweredPaidUnconfirmed: the purchase is asked for
// again while the close of its open order is answered ORDERPAID and the
// query after it still says NOTPAY (WeChat Pay's replicas are eventually
// consistent: the payer has paid). An ask in the same pay method past the
// order's deadline was answered with the order and fresh payment
// parameters, as if nothing had happened, so the user who had paid was
// asked to pay again; a switch of pay method closed again and again
// (six rounds of close and query requests) and ended telling the user the
// order "is being created". Either is now answered once, with the order
// pending and no payment of any method, until a reconciliation reads the
// payment.
func TestAskAgainAfterCloseAnsweredPaidUnconfirmed(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		expired bool
	}{
		{name: "same method past the deadline", method: "jsapi", expired: true},
		{name: "switch past the deadline", method: "native", expired: true},
		{name: "switch before the deadline", method: "native"},
	}
	for _, driver := range drivers(t) {
		for _, tc := range cases {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				e := newEnv(t, envOptions{driver: driver})
				user := "oUser-paid-lag-ask"
				o := e.create(user, 1)
				if tc.expired {
					e.clock.Advance(o.ExpiresAt.Sub(time.Now()) + time.Minute)
				}
				e.sim.InjectFault(wxsim.Fault{Op: "close", Kind: wxsim.FaultOrderPaidUnseen, Times: 20})

				res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1, PayMethod: tc.method})
				if !errors.Is(err, payments.ErrPaymentUnavailable) {
					t.Errorf("err %v; want ErrPaymentUnavailable (the close is not confirmed)", err)
				}
				if res == nil || res.Order == nil || res.Order.OrderNo != o.OrderNo {
					t.Fatalf("result %+v; want the open order %s", res, o.OrderNo)
				}
				if res.Payment != nil || res.CodeURL != "" {
					t.Errorf("payment %+v, code_url %q offered for an order WeChat Pay says is paid", res.Payment, res.CodeURL)
				}
				closes := 0
				for _, r := range e.sim.Requests() {
					if r.Op == "close" {
						closes++
					}
				}
				if closes != 1 {
					t.Errorf("%d closes sent by one ask; want 1", closes)
				}
				if n := e.sim.OrderCount(); n != 1 {
					t.Errorf("%d orders at WeChat Pay; want 1", n)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment {
					t.Errorf("order %s; want awaiting_payment until the payment is read", got.Status)
				}
			})
		}
	}
}
