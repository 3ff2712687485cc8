package payments_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// expiringStore advances the service's clock past an order's deadline at
// the first purchase claim after it is armed: between create_order's
// RepeatsPurchase, which found the order awaiting payment, and CreateOrder,
// which finds it expired and makes a new one.
type expiringStore struct {
	payments.Store
	armed atomic.Int32
	jump  func()
}

func (s *expiringStore) ClaimPurchase(ctx context.Context, key, candidateOrderNo string, ttl time.Duration) (store.Claim, bool, error) {
	if s.armed.CompareAndSwap(1, 2) {
		s.jump()
	}
	return s.Store.ClaimPurchase(ctx, key, candidateOrderNo, ttl)
}

// TestRepeatRacingExpiryIsCounted: a create_order that asked again for its
// purchase's order (RepeatsPurchase, so not counted toward
// max_payment_calls_per_minute) whose order expired before CreateOrder read
// it again makes a new order at WeChat Pay, and that order counts: past the
// limit it is refused. Uncounted, limit 2, a third order was made at WeChat
// Pay within the minute.
func TestRepeatRacingExpiryIsCounted(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var hs *expiringStore
			var e *env
			e = newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.MaxPaymentCallsPerMinute = 2
				hs = &expiringStore{Store: o.Store, jump: func() { e.clock.Advance(payments.DefaultOrderTTL + time.Minute) }}
				o.Store = hs
			}})
			tools := newTools(e)
			u := caller("oUser-rate-race-" + driver)
			for _, args := range []string{`{"sku":"premium-monthly"}`, `{"sku":"tip"}`} {
				if tc := call(t, tools, u, "create_order", args); tc.result["status"] != "awaiting_payment" {
					t.Fatalf("create_order %s: %s", args, tc.out.Result)
				}
			}
			hs.armed.Store(1)
			tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`)
			if tc.result["status"] != "rate_limited" {
				t.Errorf("a repeat whose order expired meanwhile, limit 2 used: %s; want rate_limited", tc.out.Result)
			}
			if n := e.sim.OrderCount(); n != 2 {
				t.Errorf("%d orders at WeChat Pay within the minute; want 2", n)
			}
		})
	}
}

// TestRepeatRacingLastMinuteIsCounted: a create_order that asked again for
// its purchase's order (RepeatsPurchase: not counted) whose order entered
// its last minute before CreateOrder read it again would renew it (a
// query, a close and a prepay at WeChat Pay): that call counts, and past
// max_payment_calls_per_minute the order is handed back as it stands, as
// a create_order judged in the last minute from the start is. Uncounted,
// the renewal reached WeChat Pay three times past the limit.
func TestRepeatRacingLastMinuteIsCounted(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var hs *expiringStore
			var e *env
			e = newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				o.Rules.MaxPaymentCallsPerMinute = 2
				hs = &expiringStore{Store: o.Store, jump: func() { e.clock.Advance(45 * time.Second) }}
				o.Store = hs
			}})
			tools := newTools(e)
			u := caller("oUser-rate-race-last-minute-" + driver)
			first := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`)
			no, _ := first.result["order_no"].(string)
			if first.result["status"] != "awaiting_payment" || no == "" {
				t.Fatalf("create_order: %s", first.out.Result)
			}
			e.clock.Advance(e.order(no).ExpiresAt.Sub(e.clock.Now()) - 90*time.Second)
			for range 2 {
				if tc := call(t, tools, u, "query_order", `{"order_no":"PG000000000000none"}`); tc.result["status"] != "not_found" {
					t.Fatalf("query_order: %s", tc.out.Result)
				}
			}
			hs.armed.Store(1)
			before := len(e.sim.Requests())
			tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`)
			var reached []string
			for _, r := range e.sim.Requests()[before:] {
				reached = append(reached, r.Op+" "+r.OutTradeNo)
			}
			if tc.result["status"] != "awaiting_payment" || tc.result["order_no"] != no || len(reached) != 0 {
				t.Errorf("a repeat whose order entered its last minute meanwhile, limit 2 used: %s, WeChat Pay asked %v; want order %s as it stands, no call", tc.out.Result, reached, no)
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("%d orders at WeChat Pay; want 1", n)
			}
		})
	}
}
