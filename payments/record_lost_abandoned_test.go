package payments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// abandonedBeforeRecord is a store in which another replica, tired of
// waiting for the order's record, recorded its number abandoned (closed,
// version 1) just before the record arrived, and the record's answer (the
// store's ErrExists) was lost: the caller hears "unavailable", a write
// that may have applied, and reads back the abandoned record. unapplied:
// no one recorded the number; the record itself never reached the store
// (the connection dropped before it was sent), and the read back finds
// no record of it.
type abandonedBeforeRecord struct {
	fullStore
	unapplied bool
	done      bool
	// onAdvance, when set, runs once as the purchase's claim next moves
	// on (AdvanceClaim).
	onAdvance func()
}

func (a *abandonedBeforeRecord) AdvanceClaim(ctx context.Context, key string, from int, no string, ttl time.Duration) (store.Claim, bool, error) {
	if f := a.onAdvance; f != nil {
		a.onAdvance = nil
		f()
	}
	return a.fullStore.AdvanceClaim(ctx, key, from, no, ttl)
}

func (a *abandonedBeforeRecord) CreateOrder(ctx context.Context, o *store.Order, ev ...store.Event) error {
	if a.done || o.Status != store.StatusCreating {
		return a.fullStore.CreateOrder(ctx, o, ev...)
	}
	a.done = true
	if a.unapplied {
		return fmt.Errorf("redis create order: connection reset: %w", store.ErrUnavailable)
	}
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
// model was told the order "may have been created". A record not found
// when read back is made so: the caller records its number abandoned
// itself (atomic with the number's absence, so the lost write can never
// apply after it). Kept, its count outlived an order that never existed
// once the purchase's next ask gave its number up, and the model was told
// it "may have been created".
func TestRecordLostToAnAbandonGivesBackItsCount(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, unapplied := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/unapplied=%v", driver, unapplied), func(t *testing.T) {
				user := fmt.Sprintf("oUser-record-lost-%s-%v", driver, unapplied)
				e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
					o.Store = &abandonedBeforeRecord{fullStore: o.Store.(fullStore), unapplied: unapplied}
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
}

// TestMovedSwitchCountGoesBackWithALostRecord: a switch of pay method
// counts its replacement at 23:59:59 and China's midnight passes before
// the replacement is made, so its count moves to day 2 with it; that
// record is lost (to an abandon, or never applied). The count moved to
// day 2 goes back with it, as the next replacement moves the switch's
// count there again: kept, day 2 counted the one replacement twice, and
// the user, with one order that day, was refused a second.
func TestMovedSwitchCountGoesBackWithALostRecord(t *testing.T) {
	for _, unapplied := range []bool{false, true} {
		t.Run(fmt.Sprintf("unapplied=%v", unapplied), func(t *testing.T) {
			user := fmt.Sprintf("oUser-switch-record-lost-%v", unapplied)
			var lost *abandonedBeforeRecord
			e := newEnv(t, envOptions{storeClock: true, service: func(o *payments.Options) {
				lost = &abandonedBeforeRecord{fullStore: o.Store.(fullStore), unapplied: unapplied, done: true}
				o.Store = lost
				o.Rules.MaxOrdersPerUserPerDay = 2
			}})
			cst := time.FixedZone("CST", 8*3600)
			now := time.Now()
			y, m, d := now.In(cst).Date()
			midnight := time.Date(y, m, d+1, 0, 0, 0, 0, cst)
			e.clock.Advance(midnight.Add(-time.Minute).Sub(now)) // 23:59 China time
			ctx := context.Background()
			if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"}); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(midnight.Add(-500 * time.Millisecond).Sub(e.clock.Now()))
			lost.done = false
			lost.onAdvance = func() { e.clock.Advance(time.Second) } // the switch's claim moves on at 00:00:00.5
			native := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native"}
			r, err := e.svc.CreateOrder(ctx, native)
			if err != nil || r.Order == nil || r.Order.PayMethod != "native" || r.Order.Status != store.StatusAwaitingPayment {
				t.Fatalf("the switch across midnight: %+v, %v; want its replacement made", r, err)
			}
			oneMoreOrder(t, e, user)
		})
	}
}
