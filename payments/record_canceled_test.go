package payments_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// canceledRecord is a store whose first record of a new order applies and
// is then answered context.Canceled, as the Redis driver answers a write
// whose caller's context ended after a try of it reached Redis (go-redis
// reports its last try, and mapErr passes a cancel on as it is): the bot
// hung up as create_order recorded its order.
type canceledRecord struct {
	fullStore
	mu sync.Mutex
	no string // the number recorded and answered canceled
}

func (s *canceledRecord) CreateOrder(ctx context.Context, o *store.Order, events ...store.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.no != "" || o.Status != store.StatusCreating {
		return s.fullStore.CreateOrder(ctx, o, events...)
	}
	if err := s.fullStore.CreateOrder(ctx, o, events...); err != nil {
		return err
	}
	s.no = o.OrderNo
	return context.Canceled
}

func (s *canceledRecord) recorded() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.no
}

// TestRecordAnsweredCanceledKeepsThePurchasesOrder: an order's record the
// store applied and answered context.Canceled may stand, as one answered
// unavailable may (mayHaveApplied): it keeps its count of the user's
// orders of the day, and asked again it is the purchase's order, prepaid
// once under its number. Read as not applied, its count went back while
// the order stood, and a user held to one order a day had a second one
// opened at WeChat Pay.
func TestRecordAnsweredCanceledKeepsThePurchasesOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var st *canceledRecord
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				st = &canceledRecord{fullStore: o.Store.(fullStore)}
				o.Store = st
				o.Rules.MaxOrdersPerUserPerDay = 1
			}})
			tools := newTools(e)
			u := caller("oUser-record-canceled")
			call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`)
			first := st.recorded()
			if first == "" {
				t.Fatal("no order recorded")
			}
			if tc := call(t, tools, u, "create_order", `{"sku":"tip"}`); tc.result["order_no"] != nil || e.sim.OrderCount() != 0 {
				t.Errorf("another purchase the same day: %s, %d orders at WeChat Pay; want refused (one order a day), none", tc.out.Result, e.sim.OrderCount())
			}
			e.clock.Advance(payments.DefaultCreatingGrace + time.Second)
			tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`)
			if no, _ := tc.result["order_no"].(string); no != first || tc.result["status"] != string(store.StatusAwaitingPayment) {
				t.Errorf("asked again: %s; want order %s awaiting payment (the order recorded)", tc.out.Result, first)
			}
			if n := e.sim.OrderCount(); n != 1 || e.sim.Prepays(first) == 0 {
				t.Errorf("%d orders at WeChat Pay, %d prepays of %s; want one, that one", n, e.sim.Prepays(first), first)
			}
		})
	}
}
