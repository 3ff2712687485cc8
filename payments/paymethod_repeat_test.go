package payments_test

import (
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestRepeatNamingMethodNoLongerOffered: a model asking again for a
// purchase copies its earlier call's arguments, "pay_method": "native"
// with them. A QR order opened while both methods were offered, asked for
// again that way once the caller is offered jsapi alone, was answered
// needs_clarification ("native" is not offered), and the model told the
// user no QR code could be had beside their open, payable one. The open
// order of that method is handed back as it is, with its code_url, as
// when pay_method is left out: no WeChat Pay call, nothing counted. With
// no such order open, the method not offered is still asked about.
func TestRepeatNamingMethodNoLongerOffered(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.MaxPaymentCallsPerMinute = 1
			}})
			tools := newTools(e)
			c := caller("oUser-repeat-method-off")
			const args = `{"sku":"premium-monthly","pay_method":"native"}`
			first := call(t, tools, c, "create_order", args)
			no, _ := first.result["order_no"].(string)
			if first.result["status"] != "awaiting_payment" || first.action["code_url"] == nil {
				t.Fatalf("native order: %s %s", first.out.Result, first.out.Action)
			}
			before := len(e.sim.Requests())
			c.PayMethods = []string{"jsapi"} // restarted with payments.pay_methods: [jsapi]
			again := call(t, tools, c, "create_order", args)
			if again.result["status"] != "awaiting_payment" || again.result["order_no"] != no || again.action["code_url"] == nil {
				t.Fatalf("asked again naming native: %s %s; want the open QR order %s with its code_url", again.out.Result, again.out.Action, no)
			}
			// Named under another name, as the one-method tool has no
			// pay_method: the same.
			other := call(t, tools, c, "create_order", `{"sku":"premium-monthly","payment_method":"native"}`)
			if other.result["status"] != "awaiting_payment" || other.result["order_no"] != no || other.action["code_url"] == nil {
				t.Errorf("asked again naming native as payment_method: %s %s; want the open QR order %s with its code_url", other.out.Result, other.out.Action, no)
			}
			if n := len(e.sim.Requests()) - before; n != 0 {
				t.Errorf("%d requests reached WeChat Pay; want none", n)
			}
			if o := e.order(no); o.Status != store.StatusAwaitingPayment || o.PayMethod != "native" {
				t.Errorf("the QR order is %s, %s; want awaiting_payment, native", o.Status, o.PayMethod)
			}
			// Another purchase, with no QR order open: asked about.
			other = call(t, tools, c, "create_order", `{"sku":"premium-monthly","quantity":2,"pay_method":"native"}`)
			if other.result["status"] != "needs_clarification" || other.out.Executed {
				t.Errorf("a new purchase naming native: %s; want needs_clarification", other.out.Result)
			}
			if n := len(e.sim.Requests()) - before; n != 0 {
				t.Errorf("%d requests reached WeChat Pay; want none", n)
			}
		})
	}
}
