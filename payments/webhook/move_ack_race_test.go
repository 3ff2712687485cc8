package webhook_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// resendSteps runs a hook (each once, when armed) between a resend's steps
// of setting the waiting event back (setBack): kept after a write to one of
// order no's dead-letter keys (the event kept as a dead letter), tookOff
// after an AckEventAt on the order's queue (the event taken off it).
type resendSteps struct {
	store.Store
	no            string
	kept, tookOff atomic.Pointer[func()]
}

func (s *resendSteps) EnqueueEventsOnce(ctx context.Context, evs []store.Event, with ...store.Event) ([]string, error) {
	pending, err := s.Store.EnqueueEventsOnce(ctx, evs, with...)
	if len(evs) > 0 && strings.HasPrefix(evs[0].Key, webhook.DeadPrefix+s.no+"/") {
		if f := s.kept.Swap(nil); f != nil {
			(*f)()
		}
	}
	return pending, err
}

func (s *resendSteps) AckEventAt(ctx context.Context, key, id string, createdAt time.Time) error {
	err := s.Store.AckEventAt(ctx, key, id, createdAt)
	if key == s.no {
		if f := s.tookOff.Swap(nil); f != nil {
			(*f)()
		}
	}
	return err
}

// heldAck runs before (once, when armed) ahead of the first take-off
// (AckEvent or AckEventAt) from key: a relay's move that appended its copy
// to the delivery queue and has not yet taken the original off the
// order's queue.
type heldAck struct {
	store.Store
	key    string
	before atomic.Pointer[func()]
}

func (s *heldAck) hold(key string) {
	if key == s.key {
		if f := s.before.Swap(nil); f != nil {
			(*f)()
		}
	}
}

func (s *heldAck) AckEvent(ctx context.Context, key, id string) error {
	s.hold(key)
	return s.Store.AckEvent(ctx, key, id)
}

func (s *heldAck) AckEventAt(ctx context.Context, key, id string, createdAt time.Time) error {
	s.hold(key)
	return s.Store.AckEventAt(ctx, key, id, createdAt)
}

// TestMoveKeepsTheRefundTwoResendsSetBack: the first refund's
// refund.succeeded was given up, the second's was just committed, and two
// resends of the order run at once while a relay moves the second's event
// to the delivery queue. The first resend read it on the order's queue;
// the relay appended its copy to the delivery queue; the first resend
// took the original off (its id and CreatedAt) and, before it queued
// anything, the second resend, reading the relay's copy on the delivery
// queue, set that back: took it off, queued both refunds' events again on
// the order's queue and cleared the dead letters (the first resend's own
// enqueues then added nothing). The relay's move then took the original
// off the order's queue by id: that removed the resend's copy of the
// second refund's event, which was then neither queued nor listed, and
// the merchant never heard of the second refund (its last word on the
// order 1000 fen refunded of 1500).
func TestMoveKeepsTheRefundTwoResendsSetBack(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			no := "PGMOVEACKRACE" + driver
			steps := &resendSteps{Store: st, no: no}
			mover := &heldAck{Store: st, key: no}
			r := newRelay(t, mover, rc.URL, clk.Now, shortWindow)
			first := newRelay(t, steps, rc.URL, clk.Now, shortWindow)
			second := newRelay(t, st, rc.URL, clk.Now, shortWindow)
			secondRefundWaiting(orders{t, st}, r, clk, up, no)
			clk.Advance(time.Second)

			ctx := context.Background()
			const wait = 20 * time.Second
			kept, appended, ackGo := make(chan struct{}), make(chan struct{}), make(chan struct{})
			keptFn := func() {
				close(kept)
				select {
				case <-appended:
				case <-time.After(wait):
				}
			}
			steps.kept.Store(&keptFn)
			var secondRes webhook.Resent
			var secondErr error
			tookOffFn := func() { secondRes, secondErr = second.Resend(ctx, no, false) }
			steps.tookOff.Store(&tookOffFn)
			heldFn := func() {
				close(appended)
				select {
				case <-ackGo:
				case <-time.After(wait):
				}
			}
			mover.before.Store(&heldFn)

			type resent struct {
				res webhook.Resent
				err error
			}
			firstDone := make(chan resent, 1)
			go func() {
				res, err := first.Resend(ctx, no, false)
				firstDone <- resent{res, err}
			}()
			select {
			case <-kept:
			case <-time.After(wait):
				t.Fatal("the first resend kept no dead letter: it set nothing back")
			}
			moved := make(chan int, 1)
			go func() { moved <- r.RunOnce(ctx) }()
			var firstRes resent
			select {
			case firstRes = <-firstDone:
			case <-time.After(wait):
				t.Fatal("the first resend did not end")
			}
			close(ackGo)
			select {
			case <-moved:
			case <-time.After(wait):
				t.Fatal("the relay's move did not end")
			}
			select {
			case <-appended:
			default:
				t.Fatal("the relay did not move the second refund's event: the race was not run")
			}
			if steps.tookOff.Load() != nil {
				t.Fatal("the first resend took nothing off the order's queue: the race was not run")
			}
			if firstRes.err != nil || secondErr != nil {
				t.Fatalf("the resends: %v and %v", firstRes.err, secondErr)
			}
			if !firstRes.res.AlreadyPending || !secondRes.AlreadyPending || firstRes.res.Event.ID != secondRes.Event.ID {
				t.Fatalf("the resends: %+v and %+v; want both to set the second refund's event back", firstRes.res, secondRes)
			}
			var dead []string
			for _, d := range getAdminView(t, r).DeadLetters {
				dead = append(dead, d.EventID)
			}
			queued := queuedFor(t, st, no)
			up.Store(true)
			runFor(t, r, clk, 3*time.Second)
			got, last := refundsAccepted(rc)
			if !slices.Equal(got, []string{"rf_first", "rf_second"}) {
				t.Fatalf("the merchant accepted refunds %v (after the move queued: %v, dead letters listed: %v); want rf_first then rf_second",
					got, queued, dead)
			}
			if total := gjson.GetBytes(last, "data.order.refunded_fen").Int(); total != 1500 {
				t.Errorf("the merchant's last word on the order: %d fen refunded; want 1500", total)
			}
		})
	}
}
