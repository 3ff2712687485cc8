package webhook_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestSetAsideKeepsTheRefundAResendSetBack: a process that runs no relay
// sets aside the second refund's refund.succeeded, left on the order's
// queue (the first refund's was given up): it appends the copy to the
// delivery queue, then takes the event off the order's queue. Between the
// two another replica's resend sets the event back: it takes the original
// and the copy off both queues, queues the first refund's event and the
// second's again on the order's queue, and clears the dead letters. The
// set-aside's take-off by id then removed the resend's copy of the second
// refund's event, which was neither queued nor listed: the merchant's last
// word on the order was the first refund's smaller total.
func TestSetAsideKeepsTheRefundAResendSetBack(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			no := "PGSETASIDERACE" + driver
			aside := &heldAck{Store: st, key: no}
			r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
			other := newRelay(t, st, rc.URL, clk.Now, shortWindow) // another replica's
			secondRefundWaiting(orders{t, st}, r, clk, up, no)
			waiting, ok := head(t, st, no)
			if !ok || gjson.GetBytes(waiting.Payload, "data.refund.refund_id").Str != "rf_second" {
				t.Fatalf("the order's queue's head: %+v, %v; want rf_second's refund.succeeded", waiting, ok)
			}
			clk.Advance(time.Second)

			ctx := context.Background()
			var resent webhook.Resent
			var resendErr error
			// Run between the set-aside's append and its take-off.
			race := func() { resent, resendErr = other.Resend(ctx, no, false) }
			aside.before.Store(&race)
			later := func() time.Time { return time.Now().Add(time.Hour) } // long abandoned
			moved, err := webhook.SetAside(aside, webhook.DefaultAbandonedAfter, later)(ctx, waiting)
			if err != nil || !moved {
				t.Fatalf("set aside %s: %v, %v; want it moved", waiting.ID, moved, err)
			}
			if aside.before.Load() != nil {
				t.Fatal("the set-aside took nothing off the order's queue: the race was not run")
			}
			if resendErr != nil || !resent.AlreadyPending || resent.Event.ID != waiting.ID {
				t.Fatalf("the resend during the set-aside: %+v, %v; want rf_second's %s set back", resent, resendErr, waiting.ID)
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
				t.Fatalf("the merchant accepted refunds %v (after the set-aside queued: %v, dead letters listed: %v); want rf_first then rf_second",
					got, queued, dead)
			}
			if total := gjson.GetBytes(last, "data.order.refunded_fen").Int(); total != 1500 {
				t.Errorf("the merchant's last word on the order: %d fen refunded; want 1500", total)
			}
		})
	}
}
