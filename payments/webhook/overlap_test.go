package webhook_test

import (
	"encoding/json"
	"io"
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

// TestCopyArrivesWhileTheFirstIsStillHandled: a merchant endpoint slower
// than the relay's timeout (a stock check, a call to the goods' system) is
// POSTed the same event again while it is still handling the first copy:
// the relay stopped waiting and retried. (A replica stopped mid-delivery
// gives its event back and another sends it at once, the same overlap.) A
// receiver that checks the id, acts, and remembers the id as three steps,
// as the README's snippet read (`if alreadyProcessed(evt.ID) …; act;
// remember evt.ID`), lets the copy through its check before the first
// remembered it, and delivers the goods twice for one order.paid. One that
// checks, acts and remembers under one lock (Example_receiver; a database
// transaction holding the id's unique key) acts once, and the copy it holds
// back gets its 2xx. No sleeps: the first copy's action waits for the
// second to arrive (and, for the three steps, to pass its check).
func TestCopyArrivesWhileTheFirstIsStillHandled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		oneStep   bool
		wantActed int32
	}{
		{"check, act and remember apart", false, 2},
		{"check, act and remember under one lock", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu          sync.Mutex
				processed   = map[string]bool{}
				arrivals    atomic.Int32
				handling    atomic.Int32
				overlapped  atomic.Bool
				acted       atomic.Int32
				copyArrived = make(chan struct{})
				copyChecked = make(chan struct{})
				stuck       atomic.Bool
			)
			// act is the slow work; the first copy's waits for the second
			// copy to reach the point where the recipe lets it through or
			// holds it back.
			act := func(nth int32) {
				acted.Add(1)
				if nth != 1 {
					return
				}
				wait := copyArrived
				if !tc.oneStep {
					wait = copyChecked
				}
				select {
				case <-wait:
				case <-time.After(20 * time.Second): // a guard, not synchronisation
					stuck.Store(true)
				}
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
				if err != nil {
					http.Error(w, "cannot read body", http.StatusBadRequest)
					return
				}
				if err := webhook.Verify(testSecret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
					http.Error(w, "bad signature", http.StatusBadRequest)
					return
				}
				var evt webhook.Envelope
				if err := json.Unmarshal(body, &evt); err != nil {
					http.Error(w, "bad event", http.StatusBadRequest)
					return
				}
				if handling.Add(1) > 1 {
					overlapped.Store(true)
				}
				defer handling.Add(-1)
				nth := arrivals.Add(1)
				if nth == 2 {
					close(copyArrived)
				}
				if tc.oneStep {
					mu.Lock()
					defer mu.Unlock()
					if processed[evt.ID] {
						w.WriteHeader(http.StatusNoContent)
						return
					}
					act(nth)
					processed[evt.ID] = true
					w.WriteHeader(http.StatusNoContent)
					return
				}
				mu.Lock()
				already := processed[evt.ID]
				mu.Unlock()
				if nth == 2 {
					close(copyChecked)
				}
				if already {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				act(nth)
				mu.Lock()
				processed[evt.ID] = true
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()

			st := testdrivers.Open(t, "embedded", nil)
			ob := orders{t, st}
			o := ob.create("POVERLAP", store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			clk := newClock()
			r := newRelay(t, st, srv.URL, clk.Now, func(o *webhook.Options) { o.Timeout = time.Second })
			drain(t, r) // the first copy: the relay stops waiting after its timeout
			h, pending := head(t, st, webhook.QueuePrefix+o.OrderNo)
			if !pending || h.Attempts != 1 {
				t.Fatalf("head %+v (pending %v); want one attempt that timed out", h, pending)
			}
			clk.Advance(2 * time.Second) // its retry is due
			drain(t, r)
			if h, pending := head(t, st, webhook.QueuePrefix+o.OrderNo); pending {
				t.Fatalf("still pending after the copy was answered: %+v", h)
			}
			srv.Close() // waits for the first copy's handler
			if stuck.Load() {
				t.Fatal("the copy never reached the receiver while the first was handled")
			}
			if n := arrivals.Load(); n != 2 || !overlapped.Load() {
				t.Fatalf("%d arrivals (overlapping: %v); want the copy while the first was still handled", n, overlapped.Load())
			}
			if got := acted.Load(); got != tc.wantActed {
				t.Errorf("acted %d times on one order.paid; want %d", got, tc.wantActed)
			}
		})
	}
}
