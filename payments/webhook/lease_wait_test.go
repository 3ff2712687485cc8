package webhook_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestClaimedEventsDoNotWaitForAWorker: relay 1 (Concurrency 1) claims
// five due events of five orders in one dispatch; every POST answers within
// Timeout. The lease of the fifth event runs out while it waits for relay 1's
// only worker, relay 2 claims and POSTs it, and relay 1 then POSTs it again.
// No relay died or stalled: each event must be POSTed once.
func TestClaimedEventsDoNotWaitForAWorker(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			st := testdrivers.Open(t, driver, nil)
			var r2 *webhook.Relay
			var n atomic.Int32
			var once sync.Once
			rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
				if n.Add(1) <= 4 {
					clk.Advance(webhook.DefaultTimeout - time.Second) // a POST answered within Timeout
				}
				return 204
			})
			// relay 2 claims (another replica's poll) while relay 1 POSTs its fourth event.
			wrapped := &hookStore{Store: st}
			r1 := newRelay(t, wrapped, rc.URL, clk.Now, func(o *webhook.Options) { o.Concurrency = 1 })
			r2 = newRelay(t, st, rc.URL, clk.Now, nil)
			ob := orders{t, st}
			for i := range 5 {
				ob.create(fmt.Sprintf("PLEASE%s%d", driver, i), store.StatusApprovalRequired)
			}
			wrapped.afterAck = func() { // another replica polls while relay 1 works
				if n.Load() == 4 {
					once.Do(func() { r2.RunOnce(context.Background()) })
				}
			}
			// Relay 1 runs as Run would: a dispatch after every finished
			// event, until nothing is due.
			for i := 0; r1.RunOnce(context.Background()) > 0; i++ {
				if i > 100 {
					t.Fatal("relay 1 never ran out of due events")
				}
			}
			count := map[string]int{}
			for _, a := range rc.arrivals() {
				count[a.id]++
			}
			for id, c := range count {
				if c != 1 {
					t.Errorf("event %s POSTed %d times; want once (lease %v ran out while it waited for a worker)", id, c, webhook.LeaseOf(r1))
				}
			}
			if len(count) != 5 {
				t.Errorf("%d events POSTed; want 5", len(count))
			}
		})
	}
}

type hookStore struct {
	store.Store
	afterAck func()
}

func (s *hookStore) AckEvent(ctx context.Context, key, id string) error {
	err := s.Store.AckEvent(ctx, key, id)
	if s.afterAck != nil {
		s.afterAck()
	}
	return err
}
