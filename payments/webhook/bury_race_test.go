package webhook_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestBuryKeepsTheRefundAResendSetBack: the order's one refund's
// refund.succeeded fails its last attempt, and the relay buries it: kept
// as a dead letter, then taken off the delivery queue. Between the two a
// resend of the order runs: it finds the dead letter and the event still
// waiting, sets that event back (takes it off, queues it again under its
// id after the given-up ones, itself among them) and clears the dead
// letter; a relay moves the copy to the delivery queue. bury's take-off
// by id then removed that copy, the one event of the id queued there: the
// refund was neither queued nor listed, and the merchant was never told
// of it.
func TestBuryKeepsTheRefundAResendSetBack(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			no := "PGBURYRACE" + driver
			hooked := &keptHook{Store: st, no: no}
			r := newRelay(t, hooked, rc.URL, clk.Now, shortWindow)
			other := newRelay(t, st, rc.URL, clk.Now, shortWindow) // another replica's
			ob := orders{t, st}
			o := paidThenDown(ob, r, up, no)
			ob.refund(o, "rf_only", 1000)

			ctx := context.Background()
			var resent webhook.Resent
			var resendErr, moveErr error
			// Run on the relay's worker, right after bury kept the dead
			// letter and before it takes the event off its queue.
			race := func() {
				if resent, resendErr = other.Resend(ctx, no, false); resendErr != nil {
					return
				}
				heads, err := st.OutboxHeads(ctx, no)
				if err != nil {
					moveErr = err
					return
				}
				for _, h := range heads {
					if h.Key == no {
						moveErr = relayMove(ctx, st, no, h)
						return
					}
				}
			}
			hooked.hook.Store(&race)
			for end := clk.Now().Add(10 * time.Second); hooked.hook.Load() != nil && clk.Now().Before(end); clk.Advance(500 * time.Millisecond) {
				drain(t, r)
			}
			if hooked.hook.Load() != nil {
				t.Fatal("the relay buried nothing: the race was not run")
			}
			if resendErr != nil || moveErr != nil {
				t.Fatalf("the resend during the burial: %v; the move after it: %v", resendErr, moveErr)
			}
			if !resent.AlreadyPending || resent.Type != webhook.TypeRefundSucceeded {
				t.Fatalf("the resend during the burial: %+v; want the waiting refund.succeeded set back", resent)
			}
			var dead []string
			for _, d := range getAdminView(t, r).DeadLetters {
				dead = append(dead, d.EventID)
			}
			queued := queuedFor(t, st, no)
			up.Store(true)
			runFor(t, r, clk, 2*time.Second)
			if got, _ := refundsAccepted(rc); !slices.Equal(got, []string{"rf_only"}) {
				t.Fatalf("the merchant accepted refunds %v (after the burial queued: %v, dead letters listed: %v); want rf_only",
					got, queued, dead)
			}
		})
	}
}

// TestBuryAResendSetBackIsNoGiveUp: a resend that sets the event back
// between its burial's keep and take-off (the dead letter cleared, the
// event queued again) leaves the burial's take-off nothing to take off.
// That burial gave nothing up: the event is on its way again, so it is no
// given_up and raises no ALERT. Read as a take-off whose answer was lost
// (the event gone from its queue), it paged the operator for a dead letter
// the resend had just cleared. So is one whose take-off then fails (the
// store's answer lost): the event is gone from its queue, as a take-off
// applied leaves it, but the resend queued it again.
func TestBuryAResendSetBackIsNoGiveUp(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, lost := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/answer lost=%v", driver, lost), func(t *testing.T) { buryResendSetBack(t, driver, lost) })
		}
	}
}

func buryResendSetBack(t *testing.T, driver string, lost bool) {
	clk := newClock()
	rc, up := downReceiver(t, clk.Now)
	st := testdrivers.Open(t, driver, nil)
	no := "PGBURYSETBACK" + driver
	hooked := &keptHook{Store: st, no: no}
	var relayStore store.Store = hooked
	takeOff := &takeOffAnswerLost{Store: hooked, applied: true}
	if lost {
		relayStore = takeOff
	}
	reg := prometheus.NewRegistry()
	var logs logtest.Buffer
	r := newRelay(t, relayStore, rc.URL, clk.Now, func(o *webhook.Options) {
		shortWindow(o)
		o.Registerer = reg
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	other := newRelay(t, st, rc.URL, clk.Now, shortWindow) // another replica's
	ob := orders{t, st}
	o := paidThenDown(ob, r, up, no)
	ob.refund(o, "rf_only", 1000)

	ctx := context.Background()
	var resent webhook.Resent
	var resendErr error
	race := func() { resent, resendErr = other.Resend(ctx, no, false) }
	hooked.hook.Store(&race)
	for end := clk.Now().Add(10 * time.Second); hooked.hook.Load() != nil && clk.Now().Before(end); clk.Advance(500 * time.Millisecond) {
		drain(t, r)
	}
	if hooked.hook.Load() != nil {
		t.Fatal("the relay buried nothing: the race was not run")
	}
	if lost != takeOff.lost.Load() {
		t.Fatalf("take-off's answer lost: %v; want %v", takeOff.lost.Load(), lost)
	}
	if resendErr != nil || !resent.AlreadyPending {
		t.Fatalf("the resend during the burial: %+v, %v; want the waiting event set back", resent, resendErr)
	}
	if got := testutil.ToFloat64(deliveries(t, reg, webhook.TypeRefundSucceeded, webhook.OutcomeGivenUp)); got != 0 {
		t.Errorf("given_up metric %v; want 0 (the resend set the event back)", got)
	}
	if n := strings.Count(logs.String(), `"alert":true`); n != 0 {
		t.Errorf("%d alerts logged; want none:\n%s", n, logs.String())
	}
	if dead := getAdminView(t, r).DeadLetters; len(dead) != 0 {
		t.Errorf("dead letters %+v; want none", dead)
	}
}
