package webhook_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// deadKeepOfOrderFails fails the first keep of a dead letter of order no, as a
// store that does not answer for a moment does.
type deadKeepOfOrderFails struct {
	store.Store
	no     string
	failed atomic.Bool
}

func (d *deadKeepOfOrderFails) EnqueueEventsOnce(ctx context.Context, evs []store.Event, with ...store.Event) ([]string, error) {
	if len(evs) > 0 && strings.HasPrefix(evs[0].Key, webhook.DeadPrefix+d.no+"/") && d.failed.CompareAndSwap(false, true) {
		return nil, errors.New("store timeout")
	}
	return d.Store.EnqueueEventsOnce(ctx, evs, with...)
}

// TestGivenUpOnlyOnceBuried: the last attempt of an order.paid fails, and
// the store fails to keep it as a dead letter. The event is not given up:
// it stays queued and is posted again once its lease runs out, and the
// merchant, back by then, acknowledges it. The relay counted it given up
// all the same (an alert in the log, "kept as a dead letter", and
// paygate_webhook_deliveries_total{outcome="given_up"}) for an event that
// was neither a dead letter nor lost, and one given up in the end counted
// twice.
func TestGivenUpOnlyOnceBuried(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			no := "PGBURYFAIL" + driver
			wrapped := &deadKeepOfOrderFails{Store: st, no: no}
			var mu sync.Mutex
			var results []webhook.Result
			r := newRelay(t, wrapped, rc.URL, clk.Now, func(o *webhook.Options) {
				shortWindow(o)
				o.Observe = func(res webhook.Result) {
					mu.Lock()
					results = append(results, res)
					mu.Unlock()
				}
			})
			ob := orders{t, st}
			o := ob.create(no, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			runFor(t, r, clk, 6*time.Second)
			if !wrapped.failed.Load() {
				t.Fatal("the relay never tried to keep a dead letter")
			}
			up.Store(true)
			runFor(t, r, clk, time.Minute)

			if got := rc.acceptedTypes(); len(got) != 1 || got[0] != webhook.TypeOrderPaid {
				t.Fatalf("merchant accepted %v; want the order.paid, posted again after the failed burial", got)
			}
			mu.Lock()
			defer mu.Unlock()
			var outcomes []string
			for _, res := range results {
				outcomes = append(outcomes, res.Outcome)
				if res.Outcome == webhook.OutcomeGivenUp {
					t.Errorf("attempt %d reported given up (%v), but the event stayed queued and was delivered", res.Attempt, res.Err)
				}
			}
			if n := len(outcomes); n == 0 || outcomes[n-1] != webhook.OutcomeDelivered {
				t.Errorf("outcomes %v; want the last delivered", outcomes)
			}
			if v := getAdminView(t, r); len(v.DeadLetters) != 0 {
				t.Errorf("dead letters %+v; want none: the event was delivered", v.DeadLetters)
			}
		})
	}
}
