package webhook_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// connRequests is the count of requests a server connection has carried.
type connRequests struct{}

// TestDeliveryOnAConnectionTheReceiverClosed: a receiver that closes a
// kept-alive connection as paygate sends the next delivery on it (Node
// closes idle ones after 5 s, Go's transport keeps them 90 s) has that
// delivery sent again at once on a fresh connection, not counted as a
// failed attempt and retried 5 s later: the POST is marked with an
// Idempotency-Key entry without a value, which lets Go's transport replay
// it and sends no header (a merchant's idempotency middleware would replay
// a first failure's answer to every retry). The receiver here
// hangs up on every second request of a connection without answering it,
// which is what paygate sees when the close and the POST cross.
//
// A receiver that held the POST for seconds before it hung up (a Go
// server's WriteTimeout passed while its handler worked, a Node socket
// timeout) may have acted on it: that is a failed attempt, retried after
// RetryBase, not sent again at once in the same attempt, the first
// handler possibly still running.
func TestDeliveryOnAConnectionTheReceiverClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		held time.Duration // the hung-up POST's time in the receiver, on the relay's clock
		// The hung-up event's first attempt: its outcome, and its POSTs.
		outcome string
		posts   int
	}{
		{"closed as the POST crossed it", 0, webhook.OutcomeDelivered, 2},
		{"held, then hung up on", 6 * time.Second, webhook.OutcomeFailed, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			var mu sync.Mutex
			keys := map[string][]string{} // event id -> Idempotency-Key headers of its answered POST
			posts := map[string]int{}     // event id -> POSTs that reached the receiver
			var hungUp atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				mu.Lock()
				posts[r.Header.Get("X-Paygate-Event-Id")]++
				mu.Unlock()
				if r.Context().Value(connRequests{}).(*atomic.Int32).Add(1) == 2 {
					clk.Advance(tc.held)
					conn, _, err := http.NewResponseController(w).Hijack()
					if err != nil {
						t.Errorf("hijack: %v", err)
						return
					}
					hungUp.Add(1)
					_ = conn.Close()
					return
				}
				mu.Lock()
				keys[r.Header.Get("X-Paygate-Event-Id")] = r.Header.Values("Idempotency-Key")
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
				return context.WithValue(ctx, connRequests{}, new(atomic.Int32))
			}
			srv.Start()
			defer srv.Close()

			st := testdrivers.Open(t, "embedded", nil)
			ob := orders{t, st}
			var results []webhook.Result
			r := newRelay(t, st, srv.URL, clk.Now, func(o *webhook.Options) {
				o.Concurrency = 1
				o.Observe = func(res webhook.Result) { mu.Lock(); results = append(results, res); mu.Unlock() }
			})
			for _, no := range []string{"PIDLE1", "PIDLE2"} {
				o := ob.create(no, store.StatusAwaitingPayment)
				ob.move(o, store.StatusPaid, "notification")
				drain(t, r)
			}

			mu.Lock()
			defer mu.Unlock()
			if hungUp.Load() != 1 {
				t.Fatalf("the receiver hung up on %d POSTs; want 1 (the second, on the first's kept-alive connection)", hungUp.Load())
			}
			if len(results) != 2 {
				t.Fatalf("%d results %+v; want 2, one per event", len(results), results)
			}
			if res := results[1]; res.Outcome != tc.outcome || res.Attempt != 1 || posts[res.EventID] != tc.posts {
				t.Errorf("the hung-up %s %s: %s on attempt %d, POSTed %d times (%v); want %s on attempt 1, POSTed %d times",
					res.OrderNo, res.Type, res.Outcome, res.Attempt, posts[res.EventID], res.Err, tc.outcome, tc.posts)
			}
			for _, res := range results {
				if res.Outcome != webhook.OutcomeDelivered {
					continue
				}
				if res.Attempt != 1 {
					t.Errorf("%s %s: delivered on attempt %d; want its first", res.OrderNo, res.Type, res.Attempt)
				}
				if key, ok := keys[res.EventID]; !ok || len(key) != 0 {
					t.Errorf("%s %s arrived with Idempotency-Key %q (arrived: %t); want it delivered without the header", res.OrderNo, res.Type, key, ok)
				}
			}
			if tc.outcome == webhook.OutcomeFailed {
				retry := clk.Now().Add(time.Second) // RetryBase
				if h, ok := head(t, st, webhook.QueuePrefix+"PIDLE2"); !ok || h.Attempts != 1 || !h.NextAt.Equal(retry) {
					t.Errorf("PIDLE2's head %+v (found %t); want attempt 1 recorded, next at %s (RetryBase on)", h, ok, retry)
				}
			}
		})
	}
}
