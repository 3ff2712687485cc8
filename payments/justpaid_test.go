package payments_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// justPaidEnv is an env at the config's defaults (dedupe_window 10m,
// order_ttl 2h) whose simulator signs notifications by the env's clock
// while simClock is set, so that a payment can be made past the claim.
func justPaidEnv(t *testing.T, driver string) (*env, *atomic.Bool) {
	t.Helper()
	return justPaidEnvWith(t, driver, func(o *payments.Options) {
		o.DedupeWindow = 10 * time.Minute
		o.OrderTTL = 2 * time.Hour
	})
}

// justPaidEnvWith is justPaidEnv with the service's options set by opts.
func justPaidEnvWith(t *testing.T, driver string, opts func(*payments.Options)) (*env, *atomic.Bool) {
	t.Helper()
	var simClock atomic.Bool
	var e *env
	e = newEnv(t, envOptions{driver: driver, storeClock: true, sim: wxsim.Options{Now: func() time.Time {
		if simClock.Load() {
			return e.clock.Now()
		}
		return time.Now()
	}}, service: opts})
	return e, &simClock
}

// payAt pays o at the simulator by the env's clock.
func payAt(t *testing.T, e *env, simClock *atomic.Bool, o *store.Order) {
	t.Helper()
	simClock.Store(true)
	defer simClock.Store(false)
	if d, err := e.sim.Pay(context.Background(), o.OrderNo); err != nil || !d.Acked {
		t.Fatalf("pay: %+v %v", d, err)
	}
	if s := e.order(o.OrderNo).Status; s != store.StatusPaid {
		t.Fatalf("after payment: %s", s)
	}
}

// TestCreateOrderJustPaidPastClaimIsAlreadyPaid: the user takes 11 minutes
// to pay (the claim, 10 minutes from the last ask, has lapsed; the order,
// open 2 hours, has not), pays, and the purchase is asked for again right
// after (an SDK retry, the model calling create_order on "I paid"). SPEC 4:
// a user who has just paid gets already_paid, not a second order, within
// the window.
func TestCreateOrderJustPaidPastClaimIsAlreadyPaid(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e, simClock := justPaidEnv(t, driver)
			ctx := context.Background()
			req := payments.CreateRequest{Client: "shop-bot", User: "oUser-late-payer", SKU: "premium-monthly", Quantity: 1}
			first, err := e.svc.CreateOrder(ctx, req)
			if err != nil || first.Order.Status != store.StatusAwaitingPayment {
				t.Fatalf("first: %+v, %v", first, err)
			}
			e.clock.Advance(11 * time.Minute)
			payAt(t, e, simClock, first.Order)

			again, err := e.svc.CreateOrder(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if again.Order.OrderNo != first.Order.OrderNo || again.Order.Status != store.StatusPaid || again.Payment != nil || !again.Existing {
				t.Errorf("asked again right after paying: got %s order %s (payment parameters %v, existing %v); want %s, paid, existing",
					again.Order.Status, again.Order.OrderNo, again.Payment != nil, again.Existing, first.Order.OrderNo)
			}
			tc := call(t, newTools(e), caller(req.User), "create_order", `{"sku":"premium-monthly"}`)
			if tc.result["status"] != "already_paid" || tc.result["order_no"] != first.Order.OrderNo || tc.out.Action != nil {
				t.Errorf("tool: %s %s; want already_paid of %s", tc.out.Result, tc.out.Action, first.Order.OrderNo)
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("orders at the simulator: %d; want 1", n)
			}

			// Past the window from the payment (and the claim lapsed
			// again), the purchase is bought again: a new order.
			e.clock.Advance(11 * time.Minute)
			later, err := e.svc.CreateOrder(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if later.Order.OrderNo == first.Order.OrderNo || later.Order.Status != store.StatusAwaitingPayment {
				t.Errorf("asked again past the window: %s %s; want a new order awaiting payment", later.Order.OrderNo, later.Order.Status)
			}
		})
	}
}

// TestCreateOrderJustPaidPastClaimConcurrent: many requests for the
// purchase land together right after the late payment; every one gets the
// paid order, none a new one.
func TestCreateOrderJustPaidPastClaimConcurrent(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e, simClock := justPaidEnv(t, driver)
			ctx := context.Background()
			req := payments.CreateRequest{Client: "shop-bot", User: "oUser-late-payers", SKU: "premium-monthly", Quantity: 2}
			first, err := e.svc.CreateOrder(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(11 * time.Minute)
			payAt(t, e, simClock, first.Order)
			const n = 8
			type got struct {
				res *payments.CreateResult
				err error
			}
			out := make(chan got, n)
			for range n {
				go func() {
					res, err := e.svc.CreateOrder(ctx, req)
					out <- got{res, err}
				}()
			}
			for range n {
				g := <-out
				if g.err != nil || g.res.Order.OrderNo != first.Order.OrderNo || g.res.Order.Status != store.StatusPaid {
					t.Errorf("concurrent ask: %+v %v; want the paid order %s", g.res, g.err, first.Order.OrderNo)
				}
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("orders at the simulator: %d; want 1", n)
			}
		})
	}
}

// TestJustPaidOrderOlderThanTheOpenHorizonIsAlreadyPaid: with a window
// longer than orders stay open (dedupe_window 24h, order_ttl 30m,
// approval_ttl 1h: boundOrderOf looked back only 2×(1h+30m) = 3h), a user
// who paid 29 minutes after asking, and asked again 23h45m after paying
// (the claim, 24h from the ask, had lapsed), got a second payable order
// for the purchase instead of already_paid: the paid order was created
// before the look-back and never seen. SPEC 4: within the window, a user
// who has just paid gets already_paid, not a second order.
func TestJustPaidOrderOlderThanTheOpenHorizonIsAlreadyPaid(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e, simClock := justPaidEnvWith(t, driver, func(o *payments.Options) {
				o.DedupeWindow = 24 * time.Hour
				o.OrderTTL = 30 * time.Minute
				o.Rules.ApprovalTTL = time.Hour
			})
			user := "oUser-paid-long-ago-" + driver
			tc := call(t, newTools(e), caller(user), "create_order", `{"sku":"premium-monthly"}`)
			no, _ := tc.result["order_no"].(string)
			if tc.result["status"] != "awaiting_payment" {
				t.Fatalf("first: %s", tc.out.Result)
			}
			e.clock.Advance(29 * time.Minute)
			payAt(t, e, simClock, e.order(no))
			e.clock.Advance(24*time.Hour - 15*time.Minute)

			again := call(t, newTools(e), caller(user), "create_order", `{"sku":"premium-monthly"}`)
			if again.result["status"] != "already_paid" || again.result["order_no"] != no || again.out.Action != nil {
				t.Errorf("asked again 23h45m after paying, within the 24h window: %s (action %v); want already_paid of %s", again.out.Result, again.out.Action != nil, no)
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("orders at the simulator: %d; want 1", n)
			}
		})
	}
}
