package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// stopAtClaim is a store whose ClaimEvents stops the relay (cancels its
// context) once it has leased the events: a SIGTERM that lands while the
// relay hands out a batch it just claimed.
type stopAtClaim struct {
	store.Store
	stop context.CancelFunc
}

func (s stopAtClaim) ClaimEvents(ctx context.Context, kind string, now time.Time, lease time.Duration, limit int) ([]store.Event, error) {
	evs, err := s.Store.ClaimEvents(ctx, kind, now, lease, limit)
	s.stop()
	return evs, err
}

// TestStopWhileHandingOutAClaimGivesEveryLeaseBack: a relay stopped as it
// hands out the events it just claimed gives back the lease of each one,
// not only of those a worker had started on: dispatch returned at the stop
// with the rest of the batch leased, and the next process (a deploy's
// restart) sent them the lease (Timeout + 20 s) later, what 6c726b0 meant to
// end. Which events a worker started on before the stop is the select's
// pick, so the stop is made several times.
func TestStopWhileHandingOutAClaimGivesEveryLeaseBack(t *testing.T) {
	const keys, trials = 6, 12
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
			defer srv.Close()
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			for i := range keys {
				o := ob.create(fmt.Sprintf("PSTOPBATCH%d%s", i, driver), store.StatusAwaitingPayment)
				ob.move(o, store.StatusPaid, "notification")
			}
			clk := newClock()
			for trial := range trials {
				ctx, stop := context.WithCancel(context.Background())
				r := newRelay(t, stopAtClaim{st, stop}, srv.URL, clk.Now, nil)
				r.RunOnce(ctx)
				stop()
				s, err := st.OutboxStats(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if len(s.Heads) != keys {
					t.Fatalf("trial %d: %d keys pending; want %d (nothing delivered after the stop)", trial, len(s.Heads), keys)
				}
				for _, h := range s.Heads {
					if h.NextAt.After(clk.Now()) {
						t.Fatalf("trial %d: event %s of %s due at %s, %s on; want due now (its lease given back at the stop)",
							trial, h.ID, h.Key, h.NextAt.Format(time.RFC3339Nano), h.NextAt.Sub(clk.Now()))
					}
					if h.Attempts != 0 {
						t.Fatalf("trial %d: event %s has %d attempts; want 0 (none was made)", trial, h.ID, h.Attempts)
					}
				}
			}
		})
	}
}
