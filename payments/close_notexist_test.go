package payments_test

import (
	"context"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestCloseAnsweredNotExistKeepsAPrepaidOrder: WeChat Pay's APIs are
// eventually consistent, and a close sent a moment after the prepay may be
// answered ORDER_NOT_EXIST for an order it opened and whose payment
// parameters the payer holds. Recorded closed on that word, the order
// stayed payable at WeChat Pay while a switch of pay method opened a
// second one for the same purchase: two charges. The order stays open
// here, and no replacement is opened, until a close is confirmed.
func TestCloseAnsweredNotExistKeepsAPrepaidOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{driver: driver})
			jsapi := payments.CreateRequest{Client: "shop-bot", User: "oUser-close-lag", SKU: "premium-monthly"}
			native := jsapi
			native.PayMethod = "native"
			a, err := e.svc.CreateOrder(ctx, jsapi)
			if err != nil {
				t.Fatal(err)
			}

			// Switch of pay method.
			e.sim.InjectFault(wxsim.Fault{Op: "close", Kind: wxsim.FaultNotExist})
			b, err := e.svc.CreateOrder(ctx, native)
			if err == nil && b.Order != nil && b.Order.OrderNo != a.Order.OrderNo {
				t.Errorf("switch answered with new order %s while %s is open at WeChat Pay", b.Order.OrderNo, a.Order.OrderNo)
			}
			if got := e.order(a.Order.OrderNo); got.Status != store.StatusAwaitingPayment {
				t.Errorf("after the switch the jsapi order is %s here; want awaiting_payment (open at WeChat Pay)", got.Status)
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("%d orders at WeChat Pay; want 1", n)
			}

			// A close asked for directly.
			e.sim.InjectFault(wxsim.Fault{Op: "close", Kind: wxsim.FaultNotExist})
			got, err := e.svc.CloseOrder(ctx, a.Order.OrderNo)
			if err == nil || got == nil || got.Status != store.StatusAwaitingPayment {
				t.Errorf("close answered ORDER_NOT_EXIST: %+v, %v; want an error and the order awaiting_payment", got, err)
			}
			if tx, _ := e.sim.Order(a.Order.OrderNo); tx.TradeState != "NOTPAY" {
				t.Fatalf("the order at WeChat Pay is %s; want NOTPAY", tx.TradeState)
			}
			// Asked again, WeChat Pay closes it.
			if got, err = e.svc.CloseOrder(ctx, a.Order.OrderNo); err != nil || got.Status != store.StatusClosed {
				t.Errorf("close again: %+v, %v; want closed", got, err)
			}
		})
	}
}
