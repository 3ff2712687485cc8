package webhook_test

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// enqueueHook runs hook (once, when armed) as a resend queues an event on
// order no's intake queue, before it does: between the resend's read of the
// outbox and its clearing of the dead letters.
type enqueueHook struct {
	store.Store
	no   string
	hook atomic.Pointer[func()]
}

func (h *enqueueHook) EnqueueEventOnce(ctx context.Context, e store.Event) (bool, error) {
	if e.Key == h.no {
		if f := h.hook.Swap(nil); f != nil {
			(*f)()
		}
	}
	return h.Store.EnqueueEventOnce(ctx, e)
}

// TestResendKeepsADeadLetterGivenUpMeanwhile: a resend clears the dead
// letters it read and superseded, not one another replica's relay buried
// after that read. It cleared every dead letter of the order it found
// afterwards: with the first refund's refund.succeeded given up and the
// second's still retried, a resend answered 200 naming the second as
// waiting; were it given up on another replica between the resend's read
// and its clearing (its retries ran out), its dead letter was cleared with
// the first's, and the second refund was never told to the merchant, with
// nothing listed for an operator to resend.
func TestResendKeepsADeadLetterGivenUpMeanwhile(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			no := "PGRESENDRACE" + driver
			hooked := &enqueueHook{Store: st, no: no}
			ob := orders{t, st}
			up.Store(true)
			o := ob.create(no, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			r := newRelay(t, hooked, rc.URL, clk.Now, shortWindow)
			other := newRelay(t, st, rc.URL, clk.Now, shortWindow) // another replica's
			drain(t, r)
			refund := func(id string, amount int64) { ob.refund(o, id, amount) }
			up.Store(false)
			refund("rf_first", 1000)
			runFor(t, r, clk, 8*time.Second) // rf_first given up
			refund("rf_second", 500)
			drain(t, r) // refused once; retried in a second
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
			var dead []string
			for _, d := range getAdminView(t, r).DeadLetters {
				dead = append(dead, d.EventID)
			}
			if !slices.Contains(dead, secondID) {
				t.Fatalf("dead letters %v; want rf_second's %s kept: it was given up after the resend read the outbox, and nothing queued it again", dead, secondID)
			}
			up.Store(true)
			if a := postResend(t, r, no, ""); a.code != http.StatusAccepted {
				t.Fatalf("second resend: %+v; want 202", a)
			}
			runFor(t, r, clk, 2*time.Second)
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
