package payments_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// abandonedBeforeRecord is a store in which another replica, tired of
// waiting for the order's record, recorded its number abandoned (closed,
// version 1) just before the record arrived, and the record's answer (the
// store's ErrExists) was lost: the caller hears "unavailable", a write
// that may have applied, and reads back the abandoned record.
type abandonedBeforeRecord struct {
	fullStore
	done bool
}

func (a *abandonedBeforeRecord) CreateOrder(ctx context.Context, o *store.Order, ev ...store.Event) error {
	if a.done || o.Status != store.StatusCreating {
		return a.fullStore.CreateOrder(ctx, o, ev...)
	}
	a.done = true
	ab := *o
	ab.Status = store.StatusClosed
	if err := a.fullStore.CreateOrder(ctx, &ab); err != nil {
		return err
	}
	return fmt.Errorf("redis create order: reply lost: %w", store.ErrUnavailable)
}

// TestRecordLostToAnAbandonGivesBackItsCount: an order record the store
// did not confirm, read back as another caller's abandoned record of its
// number, provably never applied (a create is atomic with the number's
// absence). It is the same race as a record refused with ErrExists: the
// day's count goes back and the purchase follows its claim to a new
// number, made in the same call. Kept, the count outlived an order that
// never existed (limit 2: one order made, the second refused), and the
// model was told the order "may have been created".
func TestRecordLostToAnAbandonGivesBackItsCount(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			user := "oUser-record-lost-" + driver
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Store = &abandonedBeforeRecord{fullStore: o.Store.(fullStore)}
				o.Rules.MaxOrdersPerUserPerDay = 2
			}})
			ctx := context.Background()
			req := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1}
			res, err := e.svc.CreateOrder(ctx, req)
			if err != nil || res.Order == nil || res.Order.Status != store.StatusAwaitingPayment {
				t.Errorf("create whose record lost to an abandon: %+v, %v; want the purchase's order made under its next number", res, err)
			}
			// The purchase has its one order now, however the first ask ended.
			if _, err := e.svc.CreateOrder(ctx, req); err != nil {
				t.Fatalf("asked again: %v", err)
			}
			oneMoreOrder(t, e, user)
		})
	}
}
