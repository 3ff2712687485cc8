package payments_test

import (
	"context"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestApprovalOfMethodNoLongerOffered: a manager's approval prepays the
// held order at once, with no create_order to carry the caller's pay
// methods. A QR order held while both methods were offered, approved once
// its client is offered jsapi alone (payments.pay_methods: [jsapi], a
// restart between), went to WeChat Pay as a Native prepay the merchant
// has not activated (NO_AUTH: closed as failed, the operator paged).
// Nothing of a held order is at WeChat Pay: it is prepaid in its client's
// first method (Options.PayMethods). A client still offered its method,
// or one Options.PayMethods names none for, keeps it.
func TestApprovalOfMethodNoLongerOffered(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
				opts = *o
			}})
			tools := newTools(e)
			hold := func(user string) string {
				held := call(t, tools, caller(user), "create_order", `{"sku":"premium-monthly","quantity":2,"pay_method":"native"}`)
				no, _ := held.result["order_no"].(string)
				if held.result["status"] != "approval_required" || no == "" {
					t.Fatalf("create: %s; want approval_required", held.out.Result)
				}
				return no
			}
			off, kept := hold("oUser-approve-method-off"), hold("oUser-approve-method-kept")
			opts.PayMethods = func(client string) []string {
				if client == "shop-bot" {
					return []string{"jsapi"}
				}
				return nil
			}
			restarted := otherReplica(t, opts)
			if _, err := restarted.Approve(context.Background(), off); err != nil {
				t.Fatalf("approve: %v", err)
			}
			if ops := prepayOps(e.sim); len(ops) != 1 || ops[0] != "prepay-jsapi" {
				t.Errorf("prepays at WeChat Pay after the approval: %q; want one jsapi", ops)
			}
			if o := e.order(off); o.Status != store.StatusAwaitingPayment || o.PayMethod != "jsapi" {
				t.Errorf("the approved order is %s, %s; want awaiting_payment, jsapi", o.Status, o.PayMethod)
			}
			// Offered both again: the held QR order stays a QR order.
			opts.PayMethods = func(string) []string { return []string{"jsapi", "native"} }
			if _, err := otherReplica(t, opts).Approve(context.Background(), kept); err != nil {
				t.Fatalf("approve: %v", err)
			}
			if o := e.order(kept); o.Status != store.StatusAwaitingPayment || o.PayMethod != "native" {
				t.Errorf("the order approved with native offered is %s, %s; want awaiting_payment, native", o.Status, o.PayMethod)
			}
		})
	}
}
