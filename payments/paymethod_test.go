package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestSwitchingPayMethod: the pay method is how a purchase is paid, not what
// it is. A user who asks for a QR code after a JSAPI order gets one order of
// the new method, the first closed at WeChat Pay, so only one can be paid;
// one who has just paid gets the paid order again, not a second one.
func TestSwitchingPayMethod(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{driver: driver})
			jsapi := payments.CreateRequest{Client: "shop-bot", User: "oUser-switch", SKU: "premium-monthly"}
			native := jsapi
			native.PayMethod = "native"

			a, err := e.svc.CreateOrder(ctx, jsapi)
			if err != nil {
				t.Fatal(err)
			}
			b, err := e.svc.CreateOrder(ctx, native)
			if err != nil {
				t.Fatal(err)
			}
			if b.Order.OrderNo == a.Order.OrderNo || b.Order.PayMethod != "native" || b.CodeURL == "" {
				t.Fatalf("native after jsapi: %+v; want a new native order with a code URL", b.Order)
			}
			if tx, _ := e.sim.Order(a.Order.OrderNo); tx.TradeState != "CLOSED" {
				t.Errorf("the jsapi order at WeChat Pay is %s; want CLOSED", tx.TradeState)
			}
			if got, _ := e.st.GetOrder(ctx, a.Order.OrderNo); got.Status != store.StatusClosed {
				t.Errorf("the jsapi order is %s here; want closed", got.Status)
			}
			if _, err := e.sim.Pay(ctx, a.Order.OrderNo); err == nil {
				t.Errorf("the closed jsapi order could still be paid")
			}
			// Asked again the same way: the same order.
			again, err := e.svc.CreateOrder(ctx, native)
			if err != nil || again.Order.OrderNo != b.Order.OrderNo {
				t.Fatalf("native again: %v, %v; want %s", again, err, b.Order.OrderNo)
			}
			// Paid, then asked the other way: the paid order, no new one.
			if _, err := e.sim.Pay(ctx, b.Order.OrderNo); err != nil {
				t.Fatal(err)
			}
			e.await(func(tr payments.Transition) bool {
				return tr.After.OrderNo == b.Order.OrderNo && tr.After.Status == store.StatusPaid
			})
			paid, err := e.svc.CreateOrder(ctx, jsapi)
			if err != nil || paid.Order.OrderNo != b.Order.OrderNo || paid.Order.Status != store.StatusPaid {
				t.Fatalf("jsapi after paying by QR: %+v, %v; want the paid order", paid, err)
			}
			if n := e.sim.OrderCount(); n != 2 {
				t.Errorf("%d orders at WeChat Pay; want 2", n)
			}
		})
	}
}

// TestSwitchingPayMethodAfterPayingUnnoticed: the user paid the JSAPI order
// but its notification has not come when the QR code is asked for: closing
// it at WeChat Pay answers ORDERPAID, and the purchase is answered as paid.
func TestSwitchingPayMethodAfterPayingUnnoticed(t *testing.T) {
	e := newEnv(t, envOptions{notifyTo: "sink"}) // notifications go nowhere
	a, b := switchAfterUnnoticedPayment(t, e, "oUser-switch-paid")
	if b.Order.OrderNo != a.Order.OrderNo || b.Order.Status != store.StatusPaid || b.CodeURL != "" {
		t.Fatalf("native after an unnoticed payment: %+v; want the paid jsapi order", b.Order)
	}
	if n := e.sim.OrderCount(); n != 1 {
		t.Errorf("%d orders at WeChat Pay; want 1", n)
	}
}

// switchAfterUnnoticedPayment makes user's JSAPI order of premium-monthly,
// pays it at WeChat Pay (e's notifications must go nowhere: notifyTo
// "sink"), and asks for the same purchase to be paid by Native: the order
// and the switch's answer.
func switchAfterUnnoticedPayment(t *testing.T, e *env, user string) (order, switched *payments.CreateResult) {
	t.Helper()
	ctx := context.Background()
	jsapi := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"}
	order, err := e.svc.CreateOrder(ctx, jsapi)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.Pay(ctx, order.Order.OrderNo); err != nil {
		t.Fatal(err)
	}
	native := jsapi
	native.PayMethod = "native"
	if switched, err = e.svc.CreateOrder(ctx, native); err != nil {
		t.Fatalf("the switch: %v", err)
	}
	return order, switched
}

// TestSwitchingPayMethodOfALargeOrder: an order held for a manager has
// nothing at WeChat Pay yet, so asking for the other method changes the
// held order, and the approval prepays it that way; once approved and
// payable, switching again closes it and opens the new method's order at
// once: the manager approved the purchase, not its pay method.
func TestSwitchingPayMethodOfALargeOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := approvalEnv(t, driver)
			ctx := context.Background()
			jsapi := payments.CreateRequest{Client: "shop-bot", User: "oUser-held-switch", SKU: "premium-monthly", Quantity: 2}
			native := jsapi
			native.PayMethod = "native"
			a, err := e.svc.CreateOrder(ctx, jsapi)
			if err != nil || a.Order.Status != store.StatusApprovalRequired {
				t.Fatalf("jsapi: %+v, %v; want held", a, err)
			}
			b, err := e.svc.CreateOrder(ctx, native)
			if err != nil || b.Order.OrderNo != a.Order.OrderNo || b.Order.PayMethod != "native" || b.Order.Status != store.StatusApprovalRequired {
				t.Fatalf("native while held: %+v, %v; want the held order, now native", b.Order, err)
			}
			res, err := e.svc.Approve(ctx, a.Order.OrderNo)
			if err != nil || res.CodeURL == "" {
				t.Fatalf("approved: %+v, %v; want a QR code (the method asked for last)", res, err)
			}
			c, err := e.svc.CreateOrder(ctx, jsapi)
			if err != nil {
				t.Fatal(err)
			}
			if c.Order.OrderNo == a.Order.OrderNo || c.Order.Status != store.StatusAwaitingPayment || c.Payment == nil {
				t.Fatalf("jsapi after approval: %s %s; want a new payable jsapi order, not held again", c.Order.OrderNo, c.Order.Status)
			}
			if got, _ := e.st.GetOrder(ctx, a.Order.OrderNo); got.Status != store.StatusClosed {
				t.Errorf("the approved native order is %s; want closed", got.Status)
			}
			if q, _ := e.svc.Approvals(ctx, 0); len(q) != 0 {
				t.Errorf("%d orders wait for approval; want none", len(q))
			}
		})
	}
}

// TestNoPaymentParamsForAnOrderClosedSince: a turn reads the user's orders
// at its start and announces one a manager approved since; if the turn's
// own create_order switched the pay method meanwhile, that order is closed,
// and its copy from the turn's start must not get freshly signed payment
// parameters beside the new order's (a two-replica soak saw both handed in
// one answer).
func TestNoPaymentParamsForAnOrderClosedSince(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{driver: driver})
			jsapi := payments.CreateRequest{Client: "shop-bot", User: "oUser-stale", SKU: "premium-monthly"}
			native := jsapi
			native.PayMethod = "native"
			a, err := e.svc.CreateOrder(ctx, jsapi)
			if err != nil {
				t.Fatal(err)
			}
			atStart := *a.Order // the turn's copy
			if rp, code, err := e.svc.PayableParams(ctx, &atStart); err != nil || rp == nil && code == "" {
				t.Fatalf("the open order: %v, %q, %v; want its parameters", rp, code, err)
			}
			if _, err := e.svc.CreateOrder(ctx, native); err != nil {
				t.Fatal(err)
			}
			if rp, code, err := e.svc.PayableParams(ctx, &atStart); err != nil || rp != nil || code != "" {
				t.Errorf("the order closed by the switch, from the turn's copy: %+v, %q, %v; want no parameters", rp, code, err)
			}
		})
	}
}

// TestNoPaymentlessOrderCreatedWhenWeChatPayDidNotAnswer: a create_order
// whose open order WeChat Pay did not answer about (the close of a switch
// of pay method, the query of an order past its deadline) leaves that order
// as it stood, with no payment made. It was answered "awaiting_payment",
// as a success, with an order_created carrying neither request_payment nor
// code_url: the model told a user who asked for a QR code to scan one that
// was never made, and the bot had nothing to open the payment sheet with
// (in a turn that had handed the open order's parameters, the action that
// carried them was replaced by this empty one). It is pending, a failure
// of WeChat Pay's, with no action, as an unanswered prepay is.
func TestNoPaymentlessOrderCreatedWhenWeChatPayDidNotAnswer(t *testing.T) {
	cases := []struct {
		name   string
		before func(e *env)
		args   string
	}{
		{"a switch whose close is unanswered", func(e *env) {
			e.sim.InjectFault(wxsim.Fault{Op: "close", Kind: wxsim.FaultSystemError, Times: 3})
		}, `{"sku":"premium-monthly","pay_method":"native"}`},
		{"an order past its deadline whose query is unanswered", func(e *env) {
			e.clock.Advance(3 * time.Hour)
			e.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultSystemError, Times: 3})
		}, `{"sku":"premium-monthly","pay_method":"jsapi"}`},
	}
	for _, driver := range drivers(t) {
		for _, c := range cases {
			t.Run(driver+"/"+c.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver})
				tools := newTools(e)
				u := caller("oUser-unanswered")
				first := call(t, tools, u, "create_order", `{"sku":"premium-monthly","pay_method":"jsapi"}`)
				if first.result["status"] != "awaiting_payment" || first.action["request_payment"] == nil {
					t.Fatalf("first: %s %s; want a payable order", first.out.Result, first.out.Action)
				}
				c.before(e)
				again := call(t, tools, u, "create_order", c.args)
				if again.out.Action != nil {
					t.Errorf("action %s; want none: WeChat Pay did not answer, and no payment came of the call", again.out.Action)
				}
				if again.result["status"] != "pending" || !again.out.Failed {
					t.Errorf("result %s (failed %v); want pending, a failure (WeChat Pay did not answer)", again.out.Result, again.out.Failed)
				}
			})
		}
	}
}
