package webhook_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// statsCounting counts the relay's backlog reads (its gauges' refreshes).
type statsCounting struct {
	store.Store
	n atomic.Int32
}

func (s *statsCounting) OutboxHeadsApart(ctx context.Context, apart ...string) ([]store.Event, int, error) {
	s.n.Add(1)
	return s.Store.OutboxHeadsApart(ctx, apart...)
}

// TestGaugesRefreshWhileEveryWorkerIsBusy: with its only worker stuck in a
// slow POST, Run keeps refreshing the backlog gauges (pending, oldest age),
// which is when an operator's alert needs them. Run waited for a free
// worker inside dispatch and read no stats tick meanwhile.
func TestGaugesRefreshWhileEveryWorkerIsBusy(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			release, started := make(chan struct{}), make(chan struct{}, 1)
			rc := newReceiver(t, time.Now, func(arrival, int) int {
				select {
				case started <- struct{}{}:
				default:
				}
				<-release
				return 204
			})
			st := &statsCounting{Store: testdrivers.Open(t, driver, nil)}
			orders{t, st.Store}.create("BUSYSTAT"+driver, store.StatusApprovalRequired)
			r := newRelay(t, st, rc.URL, time.Now, func(o *webhook.Options) {
				o.Concurrency, o.StatsInterval, o.PollInterval = 1, 10*time.Millisecond, 10*time.Millisecond
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { r.Run(ctx); close(done) }()
			defer func() { cancel(); close(release); <-done }()
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("no POST")
			}
			before := st.n.Load()
			deadline := time.Now().Add(10 * time.Second)
			for st.n.Load()-before < 3 {
				if time.Now().After(deadline) {
					t.Fatalf("gauges refreshed %d times in 10s (stats every 10ms) while the only worker POSTs", st.n.Load()-before)
				}
				time.Sleep(time.Millisecond) // poll the condition
			}
		})
	}
}
