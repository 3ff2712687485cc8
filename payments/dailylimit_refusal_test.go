package payments_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// TestDailyLimitHoldsForConcurrentTurnsOnTwoReplicas: a user one order below
// the limit (20 a day, 19 made) whose five turns ask at once, on two
// replicas of one store, for five different SKUs gets one more order, not
// five: the count is one atomic step of the store. The four refusals
// take no count (TestDailyLimitRefusalTakesNoCount), so the day ends with
// the limit's 20 orders and the 21st is still refused.
func TestDailyLimitHoldsForConcurrentTurnsOnTwoReplicas(t *testing.T) {
	const limit, made, asks = 20, 19, 5
	ctx := context.Background()
	items := make([]payments.CatalogItem, 0, limit+asks+1)
	for i := range limit + asks + 1 {
		items = append(items, payments.CatalogItem{SKU: fmt.Sprintf("sku-%02d", i), Name: fmt.Sprintf("Item %d", i), Price: "1.00"})
	}
	cat, err := payments.NewCatalog(items)
	if err != nil {
		t.Fatal(err)
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Catalog = cat
				o.Rules.MaxOrdersPerUserPerDay = limit
				opts = *o
			}})
			other := otherReplica(t, opts)
			replicas := []*payments.Service{e.svc, other}
			const user = "oUser-limit-concurrent"
			req := func(i int) payments.CreateRequest {
				return payments.CreateRequest{Client: "shop-bot", User: user, SKU: fmt.Sprintf("sku-%02d", i)}
			}
			for i := range made {
				if _, err := replicas[i%2].CreateOrder(ctx, req(i)); err != nil {
					t.Fatalf("order %d: %v", i, err)
				}
			}
			errs := make([]error, asks)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range asks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = replicas[i%2].CreateOrder(ctx, req(made+i))
				}()
			}
			close(start)
			wg.Wait()
			ok, refused := 0, 0
			for i, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, payments.ErrDailyLimit):
					refused++
				default:
					t.Errorf("ask %d: %v; want an order or ErrDailyLimit", i, err)
				}
			}
			if ok != 1 || refused != asks-1 {
				t.Errorf("%d orders made and %d refused of %d concurrent asks; want 1 and %d", ok, refused, asks, asks-1)
			}
			mine, err := e.st.ListOrders(ctx, store.OrderFilter{Client: "shop-bot", User: user})
			if err != nil {
				t.Fatal(err)
			}
			if len(mine) != limit {
				t.Errorf("%d stored orders; want the limit, %d", len(mine), limit)
			}
			if got := e.sim.OrderCount(); got != limit {
				t.Errorf("%d orders at WeChat Pay; want %d", got, limit)
			}
			if _, err := other.CreateOrder(ctx, req(limit+asks)); !errors.Is(err, payments.ErrDailyLimit) {
				t.Errorf("an order past the limit: %v; want ErrDailyLimit", err)
			}
		})
	}
}

// TestDailyLimitConcurrentRefusalsLeaveTheCount: at 19 of 20, five asks at
// once on two replicas whose orders WeChat Pay all refuses (the client's
// app is not bound to the merchant) make no order, so the day still has
// one order left: the four refused at the limit gave their counts back as
// the refused prepay did. Kept, they locked the user out for the day.
func TestDailyLimitConcurrentRefusalsLeaveTheCount(t *testing.T) {
	const limit, made, asks = 20, 19, 5
	const bound = "wx-bound-app-only"
	ctx := context.Background()
	items := make([]payments.CatalogItem, 0, limit+asks+1)
	for i := range limit + asks + 1 {
		items = append(items, payments.CatalogItem{SKU: fmt.Sprintf("sku-%02d", i), Name: fmt.Sprintf("Item %d", i), Price: "1.00"})
	}
	cat, err := payments.NewCatalog(items)
	if err != nil {
		t.Fatal(err)
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, sim: wxsim.Options{AppIDs: []string{bound}}, service: func(o *payments.Options) {
				o.Catalog = cat
				o.Rules.MaxOrdersPerUserPerDay = limit
				opts = *o
			}})
			other := otherReplica(t, opts)
			replicas := []*payments.Service{e.svc, other}
			const user = "oUser-limit-concurrent-refused"
			req := func(i int, app string) payments.CreateRequest {
				return payments.CreateRequest{Client: "shop-bot", User: user, SKU: fmt.Sprintf("sku-%02d", i), AppID: app}
			}
			for i := range made {
				if _, err := replicas[i%2].CreateOrder(ctx, req(i, bound)); err != nil {
					t.Fatalf("order %d: %v", i, err)
				}
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range asks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := replicas[i%2].CreateOrder(ctx, req(made+i, "")) // the default app: refused by WeChat Pay
					if !errors.Is(err, payments.ErrDailyLimit) && !errors.Is(err, payments.ErrPrepayRejected) {
						t.Errorf("ask %d: %v; want ErrDailyLimit or ErrPrepayRejected", i, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if _, err := other.CreateOrder(ctx, req(limit+asks, bound)); err != nil {
				t.Fatalf("the day's 20th order: %v; want it made (19 orders stand)", err)
			}
			if _, err := e.svc.CreateOrder(ctx, req(limit, bound)); !errors.Is(err, payments.ErrDailyLimit) {
				t.Errorf("a 21st order: %v; want ErrDailyLimit", err)
			}
		})
	}
}
