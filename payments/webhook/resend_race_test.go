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

// enqueueHook runs hook (once, when armed) as a resend first writes an
// event on one of order no's keys (its intake queue, or a dead letter as
// it sets back the event waiting), before it does: between the resend's
// read of the outbox and its clearing of the dead letters.
type enqueueHook struct {
	store.Store
	no   string
	hook atomic.Pointer[func()]
}

func (h *enqueueHook) EnqueueEventsOnce(ctx context.Context, evs []store.Event, with ...store.Event) ([]string, error) {
	if len(evs) > 0 && (evs[0].Key == h.no || strings.HasPrefix(evs[0].Key, webhook.DeadPrefix+h.no+"/")) {
		if f := h.hook.Swap(nil); f != nil {
			(*f)()
		}
	}
	return h.Store.EnqueueEventsOnce(ctx, evs, with...)
}

// TestResendKeepsADeadLetterGivenUpMeanwhile: a resend clears the dead
// letters it read and superseded, not one another replica's relay buried
// after that read. It cleared every dead letter of the order it found
// afterwards: with the first refund's refund.succeeded given up and the
// second's still retried, a resend answered 200 naming the second as
// waiting; were it given up on another replica between the resend's read
// and its clearing (its retries ran out), its dead letter was cleared with
// the first's, and the second refund was never told to the merchant, with
// nothing listed for an operator to resend. (The resend now sets the
// second back behind the first and queues both again: given up meanwhile,
// it is kept or queued, never neither.)
func TestResendKeepsADeadLetterGivenUpMeanwhile(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			no := "PGRESENDRACE" + driver
			hooked := &enqueueHook{Store: st, no: no}
			r := newRelay(t, hooked, rc.URL, clk.Now, shortWindow)
			other := newRelay(t, st, rc.URL, clk.Now, shortWindow) // another replica's
			secondRefundWaiting(orders{t, st}, r, clk, up, no)
			drain(t, r) // rf_second's refused once; retried in a second
			var secondID string
			for _, a := range rc.arrivals() {
				if gjson.GetBytes(a.body, "data.refund.refund_id").Str == "rf_second" {
					secondID = a.id
				}
			}
			if secondID == "" {
				t.Fatal("rf_second's refund.succeeded was never attempted")
			}
			// The other replica gives rf_second up while the resend is
			// between its read and its clearing.
			bury := func() { runFor(t, other, clk, 8*time.Second) }
			hooked.hook.Store(&bury)
			if a := postResend(t, r, no, ""); a.code != http.StatusOK || a.EventID != secondID {
				t.Fatalf("resend while rf_second is retried: %+v; want 200 naming %s", a, secondID)
			}
			if hooked.hook.Load() != nil {
				t.Fatal("the resend queued nothing on the order's queue: the race was not run")
			}
			// Kept as a dead letter (resent below) or queued again: the
			// merchant, back, hears of both refunds.
			up.Store(true)
			runFor(t, r, clk, 2*time.Second)
			if len(getAdminView(t, r).DeadLetters) > 0 {
				if a := postResend(t, r, no, ""); a.code != http.StatusAccepted {
					t.Fatalf("second resend: %+v; want 202", a)
				}
				runFor(t, r, clk, 2*time.Second)
			}
			told := map[string]bool{}
			for _, a := range rc.accepted() {
				if a.typ == webhook.TypeRefundSucceeded {
					told[gjson.GetBytes(a.body, "data.refund.refund_id").Str] = true
				}
			}
			if !told["rf_first"] || !told["rf_second"] {
				t.Errorf("refunds the merchant accepted: %v; want rf_first and rf_second", told)
			}
		})
	}
}

// deadReadHook runs hook (once, when armed) as a read of order no's dead
// letters alone starts: clearDead's, after the resend read the outbox and
// queued what it queues.
type deadReadHook struct {
	store.Store
	no   string
	hook atomic.Pointer[func()]
}

func (h *deadReadHook) OutboxHeads(ctx context.Context, prefixes ...string) ([]store.Event, error) {
	if slices.Equal(prefixes, []string{webhook.DeadPrefix + h.no + "/"}) {
		if f := h.hook.Swap(nil); f != nil {
			(*f)()
		}
	}
	return h.Store.OutboxHeads(ctx, prefixes...)
}

// TestResendKeepsTheDeadLetterOfAnEventStillQueued: a relay that kept a
// given-up event as a dead letter and then failed to take it off its queue
// (a crash, or a store error, between the two) leaves the event queued,
// its retries spent: once its lease runs out it is posted again and, on a
// failure, buried onto that very dead letter (kept once: nothing added)
// and taken off the queue. A resend in between read the dead letter, found
// the event waiting (200, already pending), and cleared the dead letter
// after the other replica's relay had buried the event onto it: the
// order.paid was neither queued nor listed, and the merchant never heard
// the order was paid. Clearing only the dead letters read did not close
// this, the id being one read.
func TestResendKeepsTheDeadLetterOfAnEventStillQueued(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			base := testdrivers.Open(t, driver, nil)
			no := "PGRESENDSTILLQUEUED" + driver
			ob := orders{t, base}
			o := ob.create(no, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			crash := &crashBeforeAck{Store: base, key: webhook.QueuePrefix + no}
			crash.armed.Store(true)
			hooked := &deadReadHook{Store: crash, no: no}
			r := newRelay(t, hooked, rc.URL, clk.Now, shortWindow)
			other := newRelay(t, base, rc.URL, clk.Now, shortWindow) // another replica's
			runFor(t, r, clk, 6*time.Second)
			v := getAdminView(t, r)
			if len(v.DeadLetters) != 1 || v.DeadLetters[0].Type != webhook.TypeOrderPaid {
				t.Fatalf("dead letters %+v; want the order.paid", v.DeadLetters)
			}
			paidID := v.DeadLetters[0].EventID
			if q := queuedFor(t, base, no); !slices.Equal(q, []string{paidID}) {
				t.Fatalf("queued %v; want the order.paid %s left on its queue by the crash", q, paidID)
			}
			// The other replica posts it again, once its lease ran out, and
			// buries it while the resend is between its read and its
			// clearing.
			bury := func() {
				clk.Advance(webhook.LeaseOf(r))
				drain(t, other)
			}
			hooked.hook.Store(&bury)
			if a := postResend(t, r, no, ""); a.code != http.StatusOK || a.EventID != paidID {
				t.Fatalf("resend while the order.paid is still queued: %+v; want 200 naming %s", a, paidID)
			}
			if hooked.hook.Load() != nil {
				t.Fatal("the resend cleared nothing: the race was not run")
			}
			var dead []string
			for _, d := range getAdminView(t, r).DeadLetters {
				dead = append(dead, d.EventID)
			}
			if q := queuedFor(t, base, no); len(q) == 0 && !slices.Contains(dead, paidID) {
				t.Fatalf("the order.paid %s is neither queued nor listed (dead letters %v): lost", paidID, dead)
			}
			up.Store(true)
			drain(t, r)
			if len(getAdminView(t, r).DeadLetters) > 0 {
				if a := postResend(t, r, no, ""); a.code != http.StatusAccepted {
					t.Fatalf("resend of what is listed: %+v; want 202", a)
				}
				runFor(t, r, clk, 2*time.Second)
			}
			if acc := rc.acceptedTypes(); !slices.Contains(acc, webhook.TypeOrderPaid) {
				t.Errorf("the merchant accepted %v; want the order.paid", acc)
			}
		})
	}
}
