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

// TestPastTheCallLimitLastMinuteOrderHandedBack: past
// max_payment_calls_per_minute, the purchase asked again in its order's
// last minute gets that order back as it stands, with no call to WeChat
// Pay, as it does at the day's order limit: a renewal (a query, a close,
// a prepay) is what the limit holds back, and the order is still payable
// for its last seconds. Refused, the model told the user to wait a minute
// beside an order that had died by then, where the ask a second earlier
// (a repeat, not counted) had handed it back. Asked again past its
// deadline, nothing is left to hand back: refused, as before.
func TestPastTheCallLimitLastMinuteOrderHandedBack(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e, tools, u, no := purchasedUnderALimit(t, driver, 1, "oUser-rate-last-minute")
			e.clock.Advance(e.order(no).ExpiresAt.Sub(e.clock.Now()) - 30*time.Second)
			if tc := call(t, tools, u, "query_order", `{"order_no":"PG000000000000none"}`); tc.result["status"] != "not_found" {
				t.Fatalf("query_order (the minute's one call): %s", tc.out.Result)
			}
			before := len(e.sim.Requests())
			tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`)
			var reached []string
			for _, r := range e.sim.Requests()[before:] {
				reached = append(reached, r.Op+" "+r.OutTradeNo)
			}
			if tc.result["status"] != "awaiting_payment" || tc.result["order_no"] != no || tc.action == nil || len(reached) != 0 {
				t.Errorf("create_order past the limit, 30s before order %s's deadline: %s, action %v, WeChat Pay asked %v; want the order as it stands, its payment, no call", no, tc.out.Result, tc.action != nil, reached)
			}
			if got := e.order(no).Status; got != store.StatusAwaitingPayment {
				t.Errorf("the order: %s; want awaiting_payment", got)
			}
			e.clock.Advance(31 * time.Second) // past its deadline; no sweep runs; the query is still in the limit's minute
			if tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`); tc.result["status"] != "rate_limited" {
				t.Errorf("create_order past the limit and the deadline: %s; want rate_limited", tc.out.Result)
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("%d orders at WeChat Pay; want 1", n)
			}
		})
	}
}
