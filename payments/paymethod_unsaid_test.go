package payments_test

import (
	"testing"

	"github.com/paygate/paygate/store"
)

// TestRepeatedAskWithoutPayMethodKeepsTheOpenOrder: a purchase asked for
// again with pay_method left out, or null (strict mode sends null for an
// optional argument), as a model re-asking usually writes it, gets its
// open QR (native) order back. It was read as jsapi, SPEC 4's default,
// and so as a switch: the QR code the user had was closed at WeChat Pay
// and a jsapi order opened in its place. A first ask without pay_method
// is still jsapi, and an explicit other method still switches.
func TestRepeatedAskWithoutPayMethodKeepsTheOpenOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			c := caller("oUser-unsaid-method")
			first := call(t, tools, c, "create_order", `{"sku":"premium-monthly","pay_method":"native"}`)
			order, _ := first.action["order"].(map[string]any)
			no, _ := order["order_no"].(string)
			if first.result["status"] != "awaiting_payment" || no == "" || first.action["code_url"] == nil {
				t.Fatalf("native order: %s %s; want awaiting_payment with a code_url", first.out.Result, first.out.Action)
			}
			for _, args := range []string{`{"sku":"premium-monthly"}`, `{"sku":"premium-monthly","pay_method":null}`, `{"sku":"premium-monthly","quantity":1,"pay_method":null}`} {
				again := call(t, tools, c, "create_order", args)
				if again.result["order_no"] != no || again.result["status"] != "awaiting_payment" {
					t.Errorf("%s: %s; want the open order %s", args, again.out.Result, no)
				}
				if again.action != nil && again.action["code_url"] == nil {
					t.Errorf("%s: action %s; want the QR order's code_url, or none", args, again.out.Action)
				}
				if tx, _ := e.sim.Order(no); tx.TradeState != "NOTPAY" {
					t.Errorf("%s: the QR order at WeChat Pay is %s; want NOTPAY", args, tx.TradeState)
				}
				if o := e.order(no); o.Status != store.StatusAwaitingPayment || o.PayMethod != "native" {
					t.Errorf("%s: the QR order is %s, %s here; want awaiting_payment, native", args, o.Status, o.PayMethod)
				}
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("%d orders at WeChat Pay; want 1", n)
			}
			// Asked for explicitly, the other method still switches.
			sw := call(t, tools, c, "create_order", `{"sku":"premium-monthly","pay_method":"jsapi"}`)
			if sw.result["order_no"] == no || sw.result["status"] != "awaiting_payment" {
				t.Fatalf("jsapi after native: %s; want a new order", sw.out.Result)
			}
			if o := e.order(no); o.Status != store.StatusClosed {
				t.Errorf("the QR order is %s after the switch; want closed", o.Status)
			}
			// A first ask without pay_method is jsapi.
			fresh := call(t, tools, caller("oUser-unsaid-method-first"), "create_order", `{"sku":"premium-monthly"}`)
			if o := e.order(fresh.result["order_no"].(string)); o.PayMethod != "jsapi" {
				t.Errorf("a first ask without pay_method made a %s order; want jsapi", o.PayMethod)
			}
		})
	}
}
