package payments_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestAskedAgainPastDeadlineWhilePayingHandsNoPayment: the purchase asked
// again (same pay method) for an order past its expires_at whose payer is
// entering their password (USERPAYING) keeps that order open, as
// TestExpiryNeverClosesUnderAPayingUser holds, and hands no payment for it:
// freshly signed wx.requestPayment parameters for an order past its
// time_expire went to the bot as an order_created action, the payment sheet
// opened again over the one in progress, and WeChat Pay refused it, while
// GET /v1/paygate/orders (PayableParams) gave none for the same order. The
// caller is told ErrPayerPaying, as a switch of pay method is, and the tool
// answers user_paying with no action.
func TestAskedAgainPastDeadlineWhilePayingHandsNoPayment(t *testing.T) {
	var b *payingBackend
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		b = &payingBackend{Client: o.Backend.(*wechatpay.Client)}
		o.Backend = b
	}})
	ctx := context.Background()
	const user = "oUser-paying-past-deadline"
	o := e.create(user, 1)
	b.paying.Store(true)
	e.clock.Advance(payments.DefaultOrderTTL + time.Second)
	res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1})
	if res == nil || res.Order == nil || res.Order.OrderNo != o.OrderNo || res.Payment != nil || res.CodeURL != "" || !errors.Is(err, payments.ErrPayerPaying) {
		var pay any
		if res != nil {
			pay = res.Payment
		}
		t.Errorf("asked again past the deadline while the payer pays: payment %+v, err %v; want the paying order, no payment, ErrPayerPaying", pay, err)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment || b.closes.Load() != 0 {
		t.Errorf("order %s after %d close(s); want it open, never closed under the payer", got.Status, b.closes.Load())
	}
	if p, code, _ := e.svc.PayableParams(ctx, e.order(o.OrderNo)); p != nil || code != "" {
		t.Errorf("the orders API's parameters: %+v %q; want none past the deadline", p, code)
	}
	tool := call(t, newTools(e), caller(user), "create_order", `{"sku":"premium-monthly"}`)
	if tool.result["status"] != "user_paying" || tool.out.Action != nil {
		t.Errorf("the tool: result %s, action %s; want user_paying and no action", tool.out.Result, tool.out.Action)
	}
}
