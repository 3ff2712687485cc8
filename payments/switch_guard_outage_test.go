package payments_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// guardOutage is a store that goes down in a switch of pay method right
// after the switch raised its guard: the day's order count and the guard's
// give-back both fail, so the guard stays raised with no mark, as it does
// when the replica dies there.
type guardOutage struct {
	fullStore
	down atomic.Bool
}

func (g *guardOutage) IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if g.down.Load() && strings.HasPrefix(key, "orders:") {
		return 0, errCut
	}
	return g.fullStore.IncrCounter(ctx, key, ttl)
}

func (g *guardOutage) DecrCounter(ctx context.Context, key, token string) error {
	if g.down.Load() && strings.HasPrefix(key, "switch-guard:") {
		return errCut
	}
	return g.fullStore.DecrCounter(ctx, key, token)
}

// TestSwitchGuardLeftByAnOutageLapses: a switch of pay method cut by a
// store outage (or a replica's death) between raising its guard and
// writing its mark leaves the guard raised. Once the outage is over, a
// switch asked again a couple of minutes later is made: the guard only
// orders callers that count at once, so it lapses within minutes. It
// lived as long as the day's counter (48 h), and every switch and
// last-minute renewal of the order was answered "in progress" for the
// rest of the order's life.
func TestSwitchGuardLeftByAnOutageLapses(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var g *guardOutage
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				g = &guardOutage{fullStore: o.Store.(fullStore)}
				o.Store = g
				o.Rules.MaxOrdersPerUserPerDay = 20
			}})
			payments.SetSwitchWait(e.svc, 20*time.Millisecond)
			user := "oUser-switch-outage"
			first := e.create(user, 1)
			tools := newTools(e)
			const native = `{"sku":"premium-monthly","pay_method":"native"}`

			g.down.Store(true)
			if tc := call(t, tools, caller(user), "create_order", native); tc.out.Action != nil {
				t.Fatalf("switch in the outage: %s %s; want no order made", tc.out.Result, tc.out.Action)
			}
			if s := e.order(first.OrderNo).Status; s != store.StatusAwaitingPayment {
				t.Fatalf("the JSAPI order is %s after the outage; want awaiting_payment, untouched", s)
			}
			g.down.Store(false)

			e.clock.Advance(2 * time.Minute)
			tc := call(t, tools, caller(user), "create_order", native)
			if url, no := codeURLOf(t, tc.out); url == "" || no == first.OrderNo {
				t.Errorf("switch after the outage: %s %s (failed %v); want a native order with its code_url", tc.out.Result, tc.out.Action, tc.out.Failed)
			}
			if s := e.order(first.OrderNo).Status; s != store.StatusClosed {
				t.Errorf("the JSAPI order is %s; want closed, replaced", s)
			}
		})
	}
}

// stalledCounter is a store in which caller A's switch stalls right after
// it raised the switch guard, at its count of the day's orders, until
// released: a GC pause, a frozen VM, a store slower than the guard's life.
type stalledCounter struct {
	fullStore
	counting, release chan struct{}
	once              sync.Once
}

func (s *stalledCounter) IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if strings.HasPrefix(key, "orders:") && callerOf(ctx) == "A" {
		s.once.Do(func() {
			close(s.counting)
			<-s.release
		})
	}
	return s.fullStore.IncrCounter(ctx, key, ttl)
}

// TestSwitchGuardHolderStalledPastItsLifeCountsOnce: a switch (A) stalls
// between raising the guard and counting for longer than the guard lives;
// meanwhile another copy of the request (B) finds the guard lapsed and
// makes the replacement on its own count. When A wakes it makes no second
// payable order (the purchase's claim moved on to B's replacement) and
// keeps no second count: one replacement costs the user one of the day's
// orders, and with a limit of three the user can still make one more.
func TestSwitchGuardHolderStalledPastItsLifeCountsOnce(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var s *stalledCounter
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				s = &stalledCounter{fullStore: o.Store.(fullStore), counting: make(chan struct{}), release: make(chan struct{})}
				o.Store = s
				o.Rules.MaxOrdersPerUserPerDay = 3
			}})
			user := "oUser-switch-stalled"
			first := e.create(user, 1)
			native := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native"}
			type out struct {
				r   *payments.CreateResult
				err error
			}
			a := make(chan out, 1)
			go func() {
				r, err := e.svc.CreateOrder(context.WithValue(context.Background(), callerKey{}, "A"), native)
				a <- out{r, err}
			}()
			<-s.counting
			e.clock.Advance(2 * time.Minute) // A's guard lapses
			b, err := e.svc.CreateOrder(context.WithValue(context.Background(), callerKey{}, "B"), native)
			if err != nil || b.Order.PayMethod != "native" || b.Order.Status != store.StatusAwaitingPayment {
				t.Fatalf("B's switch: %+v, %v; want the native replacement", b, err)
			}
			close(s.release)
			ra := <-a
			if ra.err != nil && !errors.Is(ra.err, payments.ErrInProgress) {
				t.Errorf("A's switch: %+v, %v; want B's replacement, or in progress", ra.r, ra.err)
			}
			if ra.err == nil && ra.r.Order.OrderNo != b.Order.OrderNo {
				t.Errorf("A's switch made %s; want B's replacement %s", ra.r.Order.OrderNo, b.Order.OrderNo)
			}
			if n := e.sim.OrderCount(); n != 2 {
				t.Errorf("orders at the simulator: %d; want 2 (the JSAPI order and its one replacement)", n)
			}
			if st := e.order(first.OrderNo).Status; st != store.StatusClosed {
				t.Errorf("the JSAPI order is %s; want closed, replaced", st)
			}
			// The day holds two orders (the JSAPI one and its replacement).
			oneMoreOrder(t, e, user)
		})
	}
}
