package webhook_test

import (
	"bytes"
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
// POSTed the event again while it is still handling the first copy: the
// relay stopped waiting and retried. (A replica stopped mid-delivery gives
// its event back and another sends it at once, the same overlap.) What
// paygate guarantees, and the README's receiver relies on: the copy carries
// the same id (body and X-Paygate-Event-Id) and the same body bytes, only
// the signature's t new, so a receiver that checks, acts and records the id
// under one lock (Example_receiver, the README's snippet; a database
// transaction holding the id's unique key) holds the copy back, acts once,
// and answers the copy 2xx, which acknowledges the event. A relay that
// re-rendered the event on retry (a new id) had the locked receiver act
// twice. No sleeps: the first copy's action waits for the copy to arrive.
func TestCopyArrivesWhileTheFirstIsStillHandled(t *testing.T) {
	type arrival struct {
		header http.Header
		body   []byte
	}
	var (
		mu          sync.Mutex
		processed   = map[string]bool{}
		got         []arrival
		arrivals    atomic.Int32
		handling    atomic.Int32
		overlapped  atomic.Bool
		acted       atomic.Int32
		copyArrived = make(chan struct{})
		stuck       atomic.Bool
	)
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
		// The README's recipe: check, act and record under one lock.
		mu.Lock()
		defer mu.Unlock()
		got = append(got, arrival{r.Header.Clone(), body})
		if processed[evt.ID] {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		acted.Add(1)
		if nth == 1 { // the slow action, still running when the copy comes
			select {
			case <-copyArrived:
			case <-time.After(20 * time.Second): // a guard, not synchronisation
				stuck.Store(true)
			}
		}
		processed[evt.ID] = true
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
		t.Fatalf("still pending after the copy was answered 2xx: %+v", h)
	}
	srv.Close() // waits for the first copy's handler
	if stuck.Load() {
		t.Fatal("the copy never reached the receiver while the first was handled")
	}
	if n := arrivals.Load(); n != 2 || !overlapped.Load() || len(got) != 2 {
		t.Fatalf("%d arrivals (overlapping: %v); want the copy while the first was still handled", n, overlapped.Load())
	}
	first, cp := got[0], got[1]
	if !bytes.Equal(first.body, cp.body) {
		t.Errorf("the copy's body %s; want the first's bytes %s", cp.body, first.body)
	}
	if id := first.header.Get("X-Paygate-Event-Id"); id == "" || cp.header.Get("X-Paygate-Event-Id") != id {
		t.Errorf("X-Paygate-Event-Id %q then %q; want one id", id, cp.header.Get("X-Paygate-Event-Id"))
	}
	if n := acted.Load(); n != 1 {
		t.Errorf("the README's locked receiver acted %d times on one order.paid; want 1", n)
	}
}
