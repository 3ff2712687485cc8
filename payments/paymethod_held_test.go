package payments_test

import (
	"context"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestHeldOrderOfMethodNoLongerOffered: an order held for a manager exists
// nowhere at WeChat Pay yet; its approval prepays it in its method. A QR
// order held while both methods were offered, asked for again once the
// caller is offered jsapi alone (pay_method left out, as a model re-asking
// writes it), was handed back native, and its approval sent WeChat Pay a
// Native prepay the merchant has not activated (NO_AUTH: closed as failed,
// the operator paged). It now takes the caller's first method (no WeChat
// Pay call: nothing is open there), and its approval prepays jsapi.
func TestHeldOrderOfMethodNoLongerOffered(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
			}})
			tools := newTools(e)
			c := caller("oUser-held-method-off")
			held := call(t, tools, c, "create_order", `{"sku":"premium-monthly","quantity":2,"pay_method":"native"}`)
			no, _ := held.result["order_no"].(string)
			if held.result["status"] != "approval_required" || no == "" {
				t.Fatalf("create: %s; want approval_required", held.out.Result)
			}
			c.PayMethods = []string{"jsapi"} // restarted with payments.pay_methods: [jsapi]
			again := call(t, tools, c, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			if again.result["status"] != "approval_required" || again.result["order_no"] != no {
				t.Fatalf("asked again: %s; want the held order %s", again.out.Result, no)
			}
			if m := e.order(no).PayMethod; m != "jsapi" {
				t.Errorf("the held order asked for again by a jsapi-only caller is %s; want jsapi (nothing is open at WeChat Pay)", m)
			}
			if n := len(e.sim.Requests()); n != 0 {
				t.Errorf("%d requests reached WeChat Pay before the approval; want none", n)
			}
			if _, err := e.svc.Approve(context.Background(), no); err != nil {
				t.Fatalf("approve: %v", err)
			}
			if ops := prepayOps(e.sim); len(ops) != 1 || ops[0] != "prepay-jsapi" {
				t.Errorf("prepays at WeChat Pay after the approval: %q; want one jsapi", ops)
			}
			if o := e.order(no); o.Status != store.StatusAwaitingPayment {
				t.Errorf("the approved order is %s; want awaiting_payment", o.Status)
			}
		})
	}
}

// prepayOps are the prepays sim was asked for, in order (prepay-jsapi,
// prepay-native).
func prepayOps(sim *wxsim.Server) []string {
	var ops []string
	for _, r := range sim.Requests() {
		if strings.HasPrefix(r.Op, "prepay") {
			ops = append(ops, r.Op)
		}
	}
	return ops
}
