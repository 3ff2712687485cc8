package payments_test

import (
	"context"
	"errors"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestDailyLimitRefusalTakesNoCount: an order refused at the daily limit
// is no order, so it must leave nothing on the day's count. It left its
// count taken: once an order that was counted came to nothing (WeChat Pay
// refused its prepay at approval), the counter still held the refused
// ask, and the user, one order below the limit, was refused for the rest
// of the day.
func TestDailyLimitRefusalTakesNoCount(t *testing.T) {
	const bound = "wx-bound-app-only"
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, sim: wxsim.Options{AppIDs: []string{bound}}, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 1
				o.Rules.ApprovalAboveFen = payments.FenPtr(50000)
			}})
			const user = "oUser-limit-refusal-count"
			held, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 12})
			if err != nil || held.Order.Status != store.StatusApprovalRequired {
				t.Fatalf("held order: %+v, %v", held, err)
			}
			// At the limit: refused, and asked twice.
			for i := 0; i < 2; i++ {
				if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", AppID: bound}); !errors.Is(err, payments.ErrDailyLimit) {
					t.Fatalf("an order at the limit: %v; want ErrDailyLimit", err)
				}
			}
			if _, err := e.svc.Approve(ctx, held.Order.OrderNo); !errors.Is(err, payments.ErrPrepayRejected) {
				t.Fatalf("approval: %v; want ErrPrepayRejected (the held order's app is not bound)", err)
			}
			res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", AppID: bound})
			if err != nil {
				t.Fatalf("an order once the held one came to nothing: %v; want it made (no order of today stands)", err)
			}
			if res.Order.Status != store.StatusAwaitingPayment {
				t.Errorf("status %s; want awaiting_payment", res.Order.Status)
			}
			if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 2, AppID: bound}); !errors.Is(err, payments.ErrDailyLimit) {
				t.Errorf("a second order made: %v; want ErrDailyLimit (the limit still counts real orders)", err)
			}
		})
	}
}
