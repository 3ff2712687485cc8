package webhook_test

import (
	"context"
	"fmt"
	"slices"
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
	afterAck    func()
	afterRetry  func()
	beforeHeads func()
}

func (s *hookStore) OutboxHeads(ctx context.Context, prefixes ...string) ([]store.Event, error) {
	if s.beforeHeads != nil {
		s.beforeHeads()
	}
	return s.Store.OutboxHeads(ctx, prefixes...)
}

func (s *hookStore) RetryEvent(ctx context.Context, key, id string, nextAt time.Time, attempts int, lastErr string) error {
	err := s.Store.RetryEvent(ctx, key, id, nextAt, attempts, lastErr)
	if s.afterRetry != nil {
		s.afterRetry()
	}
	return err
}

func (s *hookStore) RetryClaimedEvent(ctx context.Context, key, id string, leasedUntil, nextAt time.Time, attempts int, lastErr string) error {
	err := s.Store.RetryClaimedEvent(ctx, key, id, leasedUntil, nextAt, attempts, lastErr)
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

// TestClaimOfTheEventBeingHandled: a poll (Run claims while workers run)
// claims an event its key's worker is still handling.
//
// A retry claimed before its worker let go: the POST failed, the worker
// recorded a retry, and the claim, made once that retry was due and before
// the worker let go of the key, holds the event's lease: the event is
// POSTed again now. Dropped as a stalled worker's, the claim left the
// event leased, and its retry waited out the lease (Timeout + 20 s: 30 s
// by default) past the first retry within 10 s the merchant is promised
// (seen end to end as a refund.succeeded held 30 s behind its
// refund.proposed, TestRefundMovesOnlyOnConfirmationAndOnce).
//
// A lease run out under a stalled worker: the claim comes during the POST,
// which then answers 2xx, and the worker acknowledges the event. The claim,
// which that acknowledgement came after, is dropped: the event is POSTed
// once, not again for the claim. Answered 503, the worker records a retry
// after the claim: the claim, its lease overwritten, is dropped too, and
// the event waits for its retry's backoff (handled at once, it went out a
// second time before its retry was due, unleased, for another replica to
// claim and POST as well).
//
// A claim made while the worker checks a dropped claim's lease (its
// retry, due meanwhile): that claim holds the lease and is handled, not
// left aside for a worker that has let go of the key (1 POST, the event
// held for that claim's lease).
func TestClaimOfTheEventBeingHandled(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stalled     bool // the claim comes during the POST, past its lease
		first       int  // the first POST's answer
		duringCheck bool // a claim comes while a dropped claim's lease is checked
		posts       int
		pending     int
	}{
		{"a retry claimed before its worker let go", false, 503, false, 2, 0},
		{"a lease run out under a stalled worker", true, 204, false, 1, 0},
		{"a lease run out under a stalled worker that failed", true, 503, false, 1, 1},
		{"a retry claimed during the lease check", true, 503, true, 2, 0},
	} {
		for _, driver := range drivers(t) {
			t.Run(tc.name+"/"+driver, func(t *testing.T) {
				clk := newClock()
				st := testdrivers.Open(t, driver, nil)
				wrapped := &hookStore{Store: st}
				var r *webhook.Relay
				var once, checkOnce sync.Once
				var posted atomic.Bool
				poll := func(d time.Duration) { once.Do(func() { clk.Advance(d); r.RunOnce(context.Background()) }) }
				rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
					if nth > 0 {
						return 204
					}
					if tc.stalled {
						poll(webhook.LeaseOf(r) + time.Second)
					}
					posted.Store(true)
					return tc.first
				})
				if !tc.stalled {
					wrapped.afterRetry = func() { poll(time.Minute) } // recorded; the key not let go of yet
				}
				if tc.duringCheck {
					wrapped.beforeHeads = func() {
						if posted.Load() { // the dropped claim's lease check; its retry is due
							checkOnce.Do(func() { clk.Advance(time.Minute); r.RunOnce(context.Background()) })
						}
					}
				}
				r = newRelay(t, wrapped, rc.URL, clk.Now, nil)
				orders{t, st}.create("PCLAIM1", store.StatusApprovalRequired)
				drain(t, r)
				if got := len(rc.arrivals()); got != tc.posts {
					t.Errorf("%d POSTs of the event; want %d", got, tc.posts)
				}
				if s, err := st.OutboxStats(context.Background()); err != nil || s.Pending != tc.pending {
					t.Errorf("outbox: %d pending, %v; want %d", s.Pending, err, tc.pending)
				}
			})
		}
	}
}

// TestStalledClaimOfAnAcknowledgedEventIsNotSentAgain: a worker's POST of
// the first of an order's two events takes past its lease, and a poll
// claims that event again meanwhile; the POST answers 2xx, and a poll at
// the same instant claims the second event (now the key's head), leased
// until the very time the first one's claim was. The first event's claim
// is dropped: the head it finds is another event, whatever its lease's end.
// Each event is POSTed once, in order.
func TestStalledClaimOfAnAcknowledgedEventIsNotSentAgain(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			st := testdrivers.Open(t, driver, nil)
			_, first, second := twoQueued(t, st, clk, "PSTALLACK"+driver)
			wrapped := &hookStore{Store: st}
			var r *webhook.Relay
			var stall, acked sync.Once
			rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
				stall.Do(func() { // the first POST stalls past its lease; a poll claims its event again
					clk.Advance(webhook.LeaseOf(r) + time.Second)
					r.RunOnce(context.Background())
				})
				return 204
			})
			wrapped.afterAck = func() { acked.Do(func() { r.RunOnce(context.Background()) }) } // same instant: the second event's lease ends with the first's claim
			r = newRelay(t, wrapped, rc.URL, clk.Now, nil)
			drain(t, r)
			var got []string
			for _, a := range rc.arrivals() {
				got = append(got, a.id)
			}
			if want := []string{first.ID, second.ID}; !slices.Equal(got, want) {
				t.Errorf("POSTs %q; want %q, once each", got, want)
			}
		})
	}
}
