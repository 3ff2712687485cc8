package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestLapsedApprovalIsNotCarriedToTheNextOrder: a manager's yes opens one
// payment of the purchase (carried only to the replacement a switch of pay
// method makes of that open order). An approved order the user let expire
// unpaid, directly or after a switch carried its approval to a replacement,
// ends that approval: the purchase asked again, in either pay method, is a
// new order above approval_above, held for a manager again, with nothing
// opened at WeChat Pay.
func TestLapsedApprovalIsNotCarriedToTheNextOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, tc := range []struct {
			name    string
			switch_ bool   // switch the approved order's pay method before it lapses
			again   string // pay_method of the ask after the lapse
		}{
			{"approved order expired, asked again", false, ""},
			{"approved order expired, asked again as native", false, "native"},
			{"switched replacement expired, asked again", true, ""},
			{"switched replacement expired, asked again as jsapi", true, "jsapi"},
		} {
			t.Run(driver+", "+tc.name, func(t *testing.T) {
				e := approvalEnv(t, driver)
				ctx := context.Background()
				const user = "oUser-lapsed-approval"
				ask := func(method string) *payments.CreateResult {
					t.Helper()
					r, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 2, PayMethod: method, KeepPayMethod: method == ""})
					if err != nil || r.Order == nil {
						t.Fatalf("create_order (%q): %+v, %v", method, r, err)
					}
					return r
				}
				held := ask("")
				if held.Order.Status != store.StatusApprovalRequired {
					t.Fatalf("first order %s; want approval_required", held.Order.Status)
				}
				if _, err := e.svc.Approve(ctx, held.Order.OrderNo); err != nil {
					t.Fatalf("approve: %v", err)
				}
				payable := held.Order.OrderNo
				if tc.switch_ {
					r := ask("native")
					if r.Order.OrderNo == payable || r.Order.Status != store.StatusAwaitingPayment || r.Order.ApprovedFen != r.Order.AmountFen {
						t.Fatalf("switch of the approved order: %s %s approved %d; want a payable replacement carrying the approval", r.Order.OrderNo, r.Order.Status, r.Order.ApprovedFen)
					}
					payable = r.Order.OrderNo
				}
				e.clock.Advance(payments.DefaultOrderTTL + time.Minute)
				again := ask(tc.again)
				if again.Order.OrderNo == payable || again.Order.OrderNo == held.Order.OrderNo {
					t.Fatalf("asked again after the lapse: order %s (%s); want a new order", again.Order.OrderNo, again.Order.Status)
				}
				if got := e.order(payable).Status; got != store.StatusExpired {
					t.Errorf("the lapsed payable order is %s; want expired", got)
				}
				if again.Order.Status != store.StatusApprovalRequired || again.Order.ApprovedFen != 0 || again.Payment != nil || again.CodeURL != "" {
					t.Errorf("the order after the lapse: %s, approved %d, payment parameters %t, code URL %t; want approval_required, no approval, nothing payable",
						again.Order.Status, again.Order.ApprovedFen, again.Payment != nil, again.CodeURL != "")
				}
				if n := e.sim.Prepays(again.Order.OrderNo); n != 0 {
					t.Errorf("prepays of the order after the lapse: %d; want none before a manager's yes", n)
				}
			})
		}
	}
}
