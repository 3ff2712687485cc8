package payments_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// lateRecord is a store in which the first order record's write is still
// on its way when the caller hears it failed (a script queued behind a
// slow connection, or go-redis re-sending it after a lost reply): the
// caller is told "unavailable", reads the number back and finds nothing.
// The write reaches the store only once the caller has recorded the
// number abandoned (the abandon's CreateOrder), and late holds what the
// store answered it.
type lateRecord struct {
	fullStore
	held   *store.Order
	events []store.Event
	late   error
	landed bool
	// beforeAbandon lands the write between the caller's read back (which
	// found nothing) and its abandon of the number instead.
	beforeAbandon bool
}

func (l *lateRecord) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	o, err := l.fullStore.GetOrder(ctx, no)
	if l.beforeAbandon && l.held != nil && !l.landed && no == l.held.OrderNo && errors.Is(err, store.ErrNotFound) {
		l.landed = true
		l.late = l.fullStore.CreateOrder(context.Background(), l.held, l.events...)
	}
	return o, err
}

func (l *lateRecord) CreateOrder(ctx context.Context, o *store.Order, ev ...store.Event) error {
	switch {
	case l.held == nil && o.Status == store.StatusCreating:
		rec := *o
		l.held, l.events = &rec, ev
		return fmt.Errorf("redis create order: i/o timeout, the script still queued: %w", store.ErrUnavailable)
	case l.held != nil && !l.landed && !l.beforeAbandon && o.OrderNo == l.held.OrderNo:
		err := l.fullStore.CreateOrder(ctx, o, ev...)
		l.landed = true
		l.late = l.fullStore.CreateOrder(context.Background(), l.held, l.events...)
		return err
	}
	return l.fullStore.CreateOrder(ctx, o, ev...)
}

// TestLostRecordLandingAfterItsAbandonIsRefused: an order record the
// store did not confirm and that was not there when read back has its
// number recorded abandoned and the purchase made under its next number.
// The lost write, still in flight, lands after that abandon: the store
// refuses it (ErrExists, a create only succeeds where the number has no
// record), so the abandoned number stays closed, never `creating` for the
// sweep to open beside the purchase's order: one order at WeChat Pay.
func TestLostRecordLandingAfterItsAbandonIsRefused(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			user := "oUser-record-late-" + driver
			var l *lateRecord
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				l = &lateRecord{fullStore: o.Store.(fullStore)}
				o.Store = l
			}})
			ctx := context.Background()
			res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1})
			if err != nil || res.Order == nil || res.Order.Status != store.StatusAwaitingPayment {
				t.Fatalf("create whose record was lost: %+v, %v; want the purchase's order under its next number", res, err)
			}
			if l.held == nil || !l.landed {
				t.Fatalf("the lost write was not held past an abandon of its number (held %v, landed %v)", l.held != nil, l.landed)
			}
			if !errors.Is(l.late, store.ErrExists) {
				t.Errorf("the lost write landing after its number's abandon: %v; want store.ErrExists", l.late)
			}
			if res.Order.OrderNo == l.held.OrderNo {
				t.Errorf("the purchase's order is under the abandoned number %s", l.held.OrderNo)
			}
			e.clock.Advance(payments.DefaultCreatingGrace + payments.DefaultActiveQueryAfter)
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := e.st.GetOrder(ctx, l.held.OrderNo)
			if err != nil || got.Status != store.StatusClosed {
				t.Errorf("abandoned number %s after the late write and a sweep: %+v, %v; want closed", l.held.OrderNo, got, err)
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("orders at WeChat Pay: %d; want 1, the purchase's", n)
			}
		})
	}
}

// TestLostRecordLandingBeforeItsAbandonIsTheOrder: the lost write lands
// between the caller's read back, which found nothing, and its abandon of
// the number. The abandon is refused (the number has a record), so the
// order exists, `creating`: the caller answers that it may have been
// recorded, and the purchase's next ask after the sweep gets that order,
// prepaid once, with no second order made beside it at WeChat Pay and its
// count kept once (one more order of the day's limit of 2 allowed).
func TestLostRecordLandingBeforeItsAbandonIsTheOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			user := "oUser-record-late-before-" + driver
			var l *lateRecord
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				l = &lateRecord{fullStore: o.Store.(fullStore), beforeAbandon: true}
				o.Store = l
				o.Rules.MaxOrdersPerUserPerDay = 2
			}})
			ctx := context.Background()
			req := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1}
			_, err := e.svc.CreateOrder(ctx, req)
			if !errors.Is(err, payments.ErrOrderUnconfirmed) {
				t.Errorf("create whose lost record landed before its abandon: %v; want ErrOrderUnconfirmed", err)
			}
			if l.held == nil || !l.landed || l.late != nil {
				t.Fatalf("the lost write did not land before the abandon (held %v, landed %v, %v)", l.held != nil, l.landed, l.late)
			}
			e.clock.Advance(payments.DefaultCreatingGrace + payments.DefaultActiveQueryAfter)
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := e.svc.CreateOrder(ctx, req)
			if err != nil || res.Order == nil || res.Order.OrderNo != l.held.OrderNo || res.Order.Status != store.StatusAwaitingPayment {
				t.Errorf("the purchase asked again: %+v, %v; want its order %s, open", res, err, l.held.OrderNo)
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("orders at WeChat Pay: %d; want 1, the purchase's", n)
			}
			oneMoreOrder(t, e, user)
		})
	}
}
