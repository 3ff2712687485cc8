package webhook_test

import (
	"context"
	"fmt"
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

// TestBacklogKeepsItsConnections: a backlog (the orders paid while the
// merchant was down) goes out Concurrency POSTs at a time over as many
// kept-alive connections, not a new connection (a TCP and TLS handshake, and
// a socket left in TIME_WAIT) for most of them. The merchant here answers
// each cohort of Concurrency POSTs once all of them are in flight, so that
// every cohort runs at full concurrency, as it does behind a merchant that
// takes its time.
func TestBacklogKeepsItsConnections(t *testing.T) {
	const conc, cohorts = 8, 10
	var conns atomic.Int32
	var mu sync.Mutex
	arrived := 0
	gates := make([]chan struct{}, cohorts)
	for i := range gates {
		gates[i] = make(chan struct{})
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		cohort := arrived / conc
		arrived++
		if arrived%conc == 0 {
			close(gates[cohort])
		}
		mu.Unlock()
		select {
		case <-gates[cohort]:
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	st := testdrivers.Open(t, "embedded", nil)
	ob := orders{t, st}
	for i := range conc * cohorts {
		o := ob.create(fmt.Sprintf("PKEEP%03d", i), store.StatusAwaitingPayment)
		ob.move(o, store.StatusPaid, "notification")
	}
	results := make(chan webhook.Result, 2*conc*cohorts)
	r := newRelay(t, st, srv.URL, time.Now, func(o *webhook.Options) {
		o.Concurrency = conc
		o.PollInterval = 10 * time.Millisecond
		o.Observe = func(res webhook.Result) { results <- res }
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); r.Run(ctx) }()
	defer func() { cancel(); <-stopped }()

	deadline := time.After(30 * time.Second)
	for delivered := 0; delivered < conc*cohorts; {
		select {
		case res := <-results:
			if res.Outcome != webhook.OutcomeDelivered {
				t.Fatalf("%s: %s (%v); want delivered", res.OrderNo, res.Outcome, res.Err)
			}
			delivered++
		case <-deadline:
			t.Fatalf("%d of %d events delivered in 30s", delivered, conc*cohorts)
		}
	}
	// Go's transport may dial a spare while a connection is on its way back
	// to the pool; anything near one connection per cohort member is churn.
	if n := conns.Load(); n > 2*conc {
		t.Errorf("%d POSTs in cohorts of %d opened %d connections; want at most %d (kept alive and reused)",
			conc*cohorts, conc, n, 2*conc)
	}
}
