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
func TestDeliveryOnAConnectionTheReceiverClosed(t *testing.T) {
	var mu sync.Mutex
	keys := map[string][]string{} // event id -> Idempotency-Key headers of its answered POST
	var hungUp atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(connRequests{}).(*atomic.Int32).Add(1) == 2 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			hungUp.Add(1)
			_ = conn.Close()
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
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
	r := newRelay(t, st, srv.URL, newClock().Now, func(o *webhook.Options) {
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
	for _, res := range results {
		if res.Outcome != webhook.OutcomeDelivered || res.Attempt != 1 {
			t.Errorf("%s %s: %s on attempt %d (%v); want delivered on its first attempt", res.OrderNo, res.Type, res.Outcome, res.Attempt, res.Err)
		}
		if key, ok := keys[res.EventID]; !ok || len(key) != 0 {
			t.Errorf("%s %s arrived with Idempotency-Key %q (arrived: %t); want it delivered without the header", res.OrderNo, res.Type, key, ok)
		}
	}
}
