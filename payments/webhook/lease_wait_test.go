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
	afterAck   func()
	afterRetry func()
}

func (s *hookStore) RetryEvent(ctx context.Context, key, id string, nextAt time.Time, attempts int, lastErr string) error {
	err := s.Store.RetryEvent(ctx, key, id, nextAt, attempts, lastErr)
	if s.afterRetry != nil {
		s.afterRetry()
	}
	return err
}

func (s *hookStore) AckEvent(ctx context.Context, key, id string) error {
	err := s.Store.AckEvent(ctx, key, id)
	if s.afterAck != nil {
		s.afterAck()
	}
	return err
}

// TestRetryClaimedBeforeItsWorkerLetGo: a POST fails and its retry is
// recorded; the relay's next poll (Run claims while workers run) finds the
// retry due and claims the event before the worker that recorded the
// failure has let go of its key. That claim is the retry's, made after the
// worker settled, not one of an event whose lease ran out under a stalled
// worker: the event is POSTed again now. Dropped as the stalled worker's,
// it stayed leased by the dropped claim, and its retry waited out the
// lease (Timeout + 20 s: 30 s by default) past the first retry within 10 s
// the merchant is promised (seen end to end as a refund.succeeded held
// 30 s behind its refund.proposed, TestRefundMovesOnlyOnConfirmationAndOnce).
func TestRetryClaimedBeforeItsWorkerLetGo(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			st := testdrivers.Open(t, driver, nil)
			rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
				if nth == 0 {
					return 503
				}
				return 204
			})
			wrapped := &hookStore{Store: st}
			r := newRelay(t, wrapped, rc.URL, clk.Now, nil)
			var once sync.Once
			wrapped.afterRetry = func() { // the worker recorded the failure and has yet to let go
				once.Do(func() {
					clk.Advance(time.Minute) // the retry is due
					r.RunOnce(context.Background())
				})
			}
			orders{t, st}.create("PRETRY"+driver, store.StatusApprovalRequired)
			drain(t, r)
			if got := len(rc.arrivals()); got != 2 {
				t.Errorf("%d POSTs of the event; want 2 (the failed one, then its retry at once)", got)
			}
			if s, err := st.OutboxStats(context.Background()); err != nil || s.Pending != 0 {
				t.Errorf("outbox after the retry: %d pending, %v; want it drained", s.Pending, err)
			}
		})
	}
}

// TestClaimUnderAStalledWorkerIsDropped: a worker's POST of an event takes
// past its lease (a stalled process), and a poll claims the event again
// meanwhile; the POST then answers 2xx and the worker acknowledges the
// event. The claim, which the acknowledgement came after, is dropped (the
// event is no longer pending): the event is POSTed once, where handled as
// a retry's claim (TestRetryClaimedBeforeItsWorkerLetGo) it went out twice.
func TestClaimUnderAStalledWorkerIsDropped(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			st := testdrivers.Open(t, driver, nil)
			var r *webhook.Relay
			rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
				if nth == 0 { // the worker stalls past its lease; a poll claims the event
					clk.Advance(webhook.LeaseOf(r) + time.Second)
					r.RunOnce(context.Background())
				}
				return 204
			})
			r = newRelay(t, st, rc.URL, clk.Now, nil)
			orders{t, st}.create("PSTALL"+driver, store.StatusApprovalRequired)
			drain(t, r)
			if got := len(rc.arrivals()); got != 1 {
				t.Errorf("%d POSTs of the event; want 1", got)
			}
			if s, err := st.OutboxStats(context.Background()); err != nil || s.Pending != 0 {
				t.Errorf("outbox: %d pending, %v; want it drained", s.Pending, err)
			}
		})
	}
}
