package webhook_test

import (
	"context"
	"net/http"
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

// keptHook runs hook (once, when armed) right after a write to one of
// order no's dead-letter keys: as a resend has kept the event waiting at
// the head of the order's queue as a dead letter (setBack), before it takes
// the event off that queue.
type keptHook struct {
	store.Store
	no   string
	hook atomic.Pointer[func()]
}

func (h *keptHook) EnqueueEventsOnce(ctx context.Context, evs []store.Event, with ...store.Event) ([]string, error) {
	pending, err := h.Store.EnqueueEventsOnce(ctx, evs, with...)
	if len(evs) > 0 && strings.HasPrefix(evs[0].Key, webhook.DeadPrefix+h.no+"/") {
		if f := h.hook.Swap(nil); f != nil {
			(*f)()
		}
	}
	return pending, err
}

// TestConcurrentSetBacksKeepTheLaterRefund: the first refund's
// refund.succeeded was given up, the second's is still retried, and two
// resends of the order run at once. Both set the second's event back
// behind the first's: kept as a dead letter, then taken off the delivery
// queue by id. The second resend, run whole between the first's two
// steps, took the event off, queued both refunds' events again and
// cleared the dead letters; a relay moved them to the delivery queue,
// the second refund's halfway (copied there, not yet taken off the
// order's queue). The first resend's take-off then removed that copy (the
// one event of the id queued there), and its own enqueue of the event
// found the other copy still on the order's queue, which the relay's move
// then took off: the second refund's event was neither queued nor listed,
// and the merchant never heard of it, its last word on the order 1000 fen
// refunded of 1500.
func TestConcurrentSetBacksKeepTheLaterRefund(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			no := "PGSETBACKRACE" + driver
			hooked := &keptHook{Store: st, no: no}
			r := newRelay(t, hooked, rc.URL, clk.Now, shortWindow)
			other := newRelay(t, st, rc.URL, clk.Now, shortWindow) // another replica's
			secondRefundWaiting(orders{t, st}, r, clk, up, no)
			drain(t, r) // rf_second's moved to the delivery queue, refused once
			waiting, ok := head(t, st, webhook.QueuePrefix+no)
			if !ok || gjson.GetBytes(waiting.Payload, "data.refund.refund_id").Str != "rf_second" {
				t.Fatalf("the delivery queue's head: %+v, %v; want rf_second's refund.succeeded", waiting, ok)
			}
			clk.Advance(time.Second)

			ctx := context.Background()
			var otherAnswer resendAnswer
			finishMove := func() {}
			race := func() {
				otherAnswer = postResend(t, other, no, "")
				// A relay moves what it queued: rf_first's event whole,
				// rf_second's copied to the delivery queue and not yet
				// taken off the order's queue.
				first, ok := head(t, st, no)
				if !ok || gjson.GetBytes(first.Payload, "data.refund.refund_id").Str != "rf_first" {
					t.Errorf("the order's queue's head after the other resend: %+v, %v; want rf_first's", first, ok)
					return
				}
				if err := relayMove(ctx, st, no, first); err != nil {
					t.Error(err)
					return
				}
				second, ok := head(t, st, no)
				if !ok || second.ID != waiting.ID {
					t.Errorf("the order's queue's head: %+v, %v; want rf_second's %s", second, ok, waiting.ID)
					return
				}
				cp := second
				cp.Key = webhook.QueuePrefix + no
				cp.Attempts, cp.NextAt, cp.LastError, cp.FailedAt = 0, time.Time{}, "", time.Time{}
				if _, err := st.EnqueueEventsOnce(ctx, []store.Event{cp}); err != nil {
					t.Error(err)
					return
				}
				finishMove = func() {
					if err := st.AckEvent(ctx, no, second.ID); err != nil {
						t.Error(err)
					}
				}
			}
			hooked.hook.Store(&race)
			a := postResend(t, r, no, "")
			if hooked.hook.Load() != nil {
				t.Fatal("the resend kept no dead letter: the race was not run")
			}
			finishMove()
			if t.Failed() {
				return
			}
			if a.code != http.StatusOK || a.EventID != waiting.ID || otherAnswer.code != http.StatusOK || otherAnswer.EventID != waiting.ID {
				t.Fatalf("the resends: %+v and %+v; want 200 naming rf_second's %s, both", a, otherAnswer, waiting.ID)
			}
			var dead []string
			for _, d := range getAdminView(t, r).DeadLetters {
				dead = append(dead, d.EventID)
			}
			up.Store(true)
			runFor(t, r, clk, 2*time.Second)
			got, last := refundsAccepted(rc)
			if !slices.Equal(got, []string{"rf_first", "rf_second"}) {
				t.Fatalf("the merchant accepted refunds %v (dead letters listed: %v); want rf_first then rf_second", got, dead)
			}
			if total := gjson.GetBytes(last, "data.order.refunded_fen").Int(); total != 1500 {
				t.Errorf("the merchant's last word on the order: %d fen refunded; want 1500", total)
			}
		})
	}
}

// TestSetBackFindsTheRefundMovedAfterItsRead: the first refund's
// refund.succeeded was given up and the second's was just committed. A
// resend read it on the order's queue and, before it took it off there, a
// relay moved it to the delivery queue: the take-off removed nothing, the
// resend queued the first refund's event (and the second's again) on the
// order's queue, and the moved original went out ahead of them. The
// merchant got 1500 refunded, then 1000 (the second's copy, under the id
// it had, was discarded): its last word on the order was the smaller
// total, which setting the event back is for.
func TestSetBackFindsTheRefundMovedAfterItsRead(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			no := "PGSETBACKMOVED" + driver
			hooked := &keptHook{Store: st, no: no}
			r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
			other := newRelay(t, hooked, rc.URL, clk.Now, shortWindow) // another replica's
			secondRefundWaiting(orders{t, st}, r, clk, up, no)
			waiting, ok := head(t, st, no)
			if !ok || gjson.GetBytes(waiting.Payload, "data.refund.refund_id").Str != "rf_second" {
				t.Fatalf("the order's queue's head: %+v, %v; want rf_second's refund.succeeded", waiting, ok)
			}
			clk.Advance(time.Second)

			moved := 0
			// The relay moves it between the resend's read (and keep) and
			// its take-off.
			race := func() { moved = r.RunOnce(context.Background()) }
			hooked.hook.Store(&race)
			a := postResend(t, other, no, "")
			if hooked.hook.Load() != nil || moved != 1 {
				t.Fatalf("the relay handled %d events during the resend; want it to move rf_second's: the race was not run", moved)
			}
			if a.code != http.StatusOK || a.EventID != waiting.ID {
				t.Fatalf("the resend: %+v; want 200 naming rf_second's %s, set back", a, waiting.ID)
			}
			queued := queuedFor(t, st, no)
			up.Store(true)
			runFor(t, r, clk, 3*time.Second)
			got, last := refundsAccepted(rc)
			if !slices.Equal(got, []string{"rf_first", "rf_second"}) {
				t.Fatalf("the merchant accepted refunds %v (queued after the resend: %v); want rf_first then rf_second", got, queued)
			}
			if total := gjson.GetBytes(last, "data.order.refunded_fen").Int(); total != 1500 {
				t.Errorf("the merchant's last word on the order: %d fen refunded; want 1500", total)
			}
		})
	}
}
