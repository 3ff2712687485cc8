package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/logging/logtest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestRetryThenDelivered: a receiver that fails the first three deliveries
// gets the event on the fourth, with the same id and body each time, a valid
// signature each time, and the retries spaced base, 2·base, 4·base.
func TestRetryThenDelivered(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc := newReceiver(t, clk.Now, func(_ arrival, nth int) int {
				if nth < 3 {
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			})
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o := ob.create("P1RETRY"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			r := newRelay(t, st, rc.URL, clk.Now, nil)
			key := webhook.QueuePrefix + o.OrderNo

			drain(t, r)
			for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
				if got := len(rc.arrivals()); got != i+1 {
					t.Fatalf("after attempt %d: %d arrivals; want %d", i+1, got, i+1)
				}
				h, ok := head(t, st, key)
				if !ok || h.Attempts != i+1 || !h.NextAt.Equal(clk.Now().Add(wait)) || !strings.Contains(h.LastError, "status 503") {
					t.Fatalf("after attempt %d: head %+v (found %v); want attempts %d, next at +%s, a 503 error", i+1, h, ok, i+1, wait)
				}
				clk.Advance(wait - time.Millisecond)
				drain(t, r)
				if got := len(rc.arrivals()); got != i+1 {
					t.Fatalf("retry %d came %s early", i+1, time.Millisecond)
				}
				clk.Advance(time.Millisecond)
				drain(t, r)
			}
			all := rc.arrivals()
			if len(all) != 4 {
				t.Fatalf("%d arrivals; want 4", len(all))
			}
			for i, a := range all {
				if a.verifyErr != nil {
					t.Errorf("arrival %d: signature: %v", i, a.verifyErr)
				}
				if a.id != all[0].id || !bytes.Equal(a.body, all[0].body) {
					t.Errorf("arrival %d: id %s body %s; want the first's %s %s", i, a.id, a.body, all[0].id, all[0].body)
				}
			}
			acc := rc.accepted()
			if len(acc) != 1 || acc[0].typ != webhook.TypeOrderPaid || acc[0].orderNo != o.OrderNo {
				t.Errorf("accepted %+v; want one order.paid for %s", acc, o.OrderNo)
			}
			s, err := st.OutboxStats(context.Background())
			if err != nil || s.Pending != 0 {
				t.Errorf("outbox after delivery: %+v %v; want empty", s, err)
			}
		})
	}
}

// TestOrderPerOrder: order.paid never reaches the receiver before the same
// order's order.approval_required was acknowledged, however often the
// latter fails; another order's events are not held back meanwhile.
func TestOrderPerOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
				if a.typ == webhook.TypeOrderApprovalRequired && nth < 3 {
					return http.StatusInternalServerError
				}
				return http.StatusNoContent
			})
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			a := ob.create("PAPPROVE"+driver, store.StatusApprovalRequired)
			ob.move(a, store.StatusCreating, "approve")
			ob.move(a, store.StatusAwaitingPayment, "prepay")
			ob.move(a, store.StatusPaid, "notification")
			b := ob.create("POTHER"+driver, store.StatusAwaitingPayment)
			ob.move(b, store.StatusPaid, "notification")

			r := newRelay(t, st, rc.URL, clk.Now, nil)
			for range 20 {
				drain(t, r)
				clk.Advance(time.Second)
			}
			var order []string
			approvalAcked := false
			for _, x := range rc.arrivals() {
				if x.orderNo == a.OrderNo && x.typ == webhook.TypeOrderPaid && !approvalAcked {
					t.Fatalf("order.paid of %s arrived before its order.approval_required was acknowledged", a.OrderNo)
				}
				if x.status/100 == 2 {
					approvalAcked = approvalAcked || (x.orderNo == a.OrderNo && x.typ == webhook.TypeOrderApprovalRequired)
					order = append(order, x.orderNo+" "+x.typ)
				}
			}
			want := []string{b.OrderNo + " order.paid", a.OrderNo + " order.approval_required", a.OrderNo + " order.paid"}
			if fmt.Sprint(order) != fmt.Sprint(want) {
				t.Errorf("acknowledged %v; want %v (the other order first: it was not held back)", order, want)
			}
			if n := len(rc.arrivals()); n != 6 {
				t.Errorf("%d arrivals; want 6 (3 failures, then 3 deliveries)", n)
			}
		})
	}
}

// TestGiveUp: an event the merchant never acknowledges is retried until its
// attempts span RetryFor, then given up loudly (log, metric, dead letter), and
// the order's next event goes out.
func TestGiveUp(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	clk, rc, r, reg, logs := givingUp(t, st, "PGIVEUP")
	if r.MaxAttempts() != 4 {
		t.Fatalf("max attempts %d; want 4 (attempts at 0s, 1s, 3s, 5s)", r.MaxAttempts())
	}
	var at []time.Duration
	start := clk.Now()
	for range 12 {
		before := len(rc.arrivals())
		drain(t, r)
		if len(rc.arrivals()) > before {
			at = append(at, clk.Now().Sub(start))
		}
		clk.Advance(500 * time.Millisecond)
	}
	fails := 0
	for _, a := range rc.arrivals() {
		if a.typ == webhook.TypeOrderApprovalRequired {
			fails++
		}
	}
	if fails != 4 {
		t.Errorf("approval_required posted %d times; want 4", fails)
	}
	if fmt.Sprint(at[:4]) != "[0s 1s 3s 5s]" {
		t.Errorf("attempts at %v; want [0s 1s 3s 5s]", at)
	}
	acc := rc.accepted()
	if len(acc) != 1 || acc[0].typ != webhook.TypeOrderClosed {
		t.Errorf("accepted %+v; want the order.closed that followed the given-up event", acc)
	}
	if got := testutil.ToFloat64(deliveries(t, reg, webhook.TypeOrderApprovalRequired, webhook.OutcomeGivenUp)); got != 1 {
		t.Errorf("given_up metric %v; want 1", got)
	}
	if got := testutil.ToFloat64(deliveries(t, reg, webhook.TypeOrderApprovalRequired, webhook.OutcomeFailed)); got != 3 {
		t.Errorf("failed metric %v; want 3", got)
	}
	if !strings.Contains(logs.String(), `"alert":true`) || !strings.Contains(logs.String(), "given up") {
		t.Errorf("no alert logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), testSecret) {
		t.Errorf("the secret is in the log")
	}
	// What is left is the given-up event, kept as a dead letter: never due.
	s, _ := st.OutboxStats(context.Background())
	if s.Pending != 1 || len(s.Heads) != 1 || !strings.HasPrefix(s.Heads[0].Key, webhook.DeadPrefix) {
		t.Errorf("outbox %+v; want only the dead letter of the approval_required", s)
	}
	if due, _ := st.DueEvents(context.Background(), clk.Now().Add(100*365*24*time.Hour), 10); len(due) != 0 {
		t.Errorf("due a century on: %+v; want nothing (a dead letter waits for an operator)", due)
	}
}

// givingUp runs a relay on st, on its own clock, against a merchant that
// refuses every order.approval_required (502) and takes the rest, with
// order no held for approval and then rejected: its approval_required is
// queued, its order.closed behind it. The relay gives an event up after 4
// attempts (0s, 1s, 3s, 5s), counts on reg and logs JSON to logs.
func givingUp(t *testing.T, st store.Store, no string) (clk *clock, rc *receiver, r *webhook.Relay, reg *prometheus.Registry, logs *logtest.Buffer) {
	t.Helper()
	clk = newClock()
	rc = newReceiver(t, clk.Now, func(a arrival, _ int) int {
		if a.typ == webhook.TypeOrderApprovalRequired {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	ob := orders{t, st}
	o := ob.create(no, store.StatusApprovalRequired)
	ob.move(o, store.StatusRejected, "reject")
	reg = prometheus.NewRegistry()
	logs = &logtest.Buffer{}
	r = newRelay(t, st, rc.URL, clk.Now, func(o *webhook.Options) {
		o.RetryBase, o.MaxDelay, o.RetryFor = time.Second, 2*time.Second, 5*time.Second
		o.Registerer = reg
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	return clk, rc, r, reg, logs
}

func deliveries(t testing.TB, reg *prometheus.Registry, typ, outcome string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "paygate_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["type"] == typ && labels["outcome"] == outcome {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no paygate_webhook_deliveries_total{type=%q,outcome=%q}", typ, outcome)
	return nil
}

// TestOtherKindsUntouched: the relay never takes another consumer's events
// (audit records share the outbox and its order keys), and a webhook being
// retried does not hold back the audit record committed after it for the
// same order.
func TestOtherKindsUntouched(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			rc := newReceiver(t, clk.Now, func(arrival, int) int { return http.StatusServiceUnavailable })
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o := ob.create("PKINDS"+driver, store.StatusAwaitingPayment)
			audit := func(id string) store.Event {
				return store.Event{ID: id, Kind: "audit", Key: o.OrderNo, Payload: []byte(`{}`)}
			}
			if err := st.EnqueueEvents(ctx, audit("aud_1")); err != nil {
				t.Fatal(err)
			}
			ob.move(o, store.StatusPaid, "notification")
			if err := st.EnqueueEvents(ctx, audit("aud_2")); err != nil {
				t.Fatal(err)
			}
			r := newRelay(t, st, rc.URL, clk.Now, nil)
			drain(t, r)
			if n := len(rc.arrivals()); n != 0 {
				t.Fatalf("%d deliveries while an audit record heads the order's queue; want 0", n)
			}
			if h, ok := head(t, st, o.OrderNo); !ok || h.ID != "aud_1" {
				t.Fatalf("order queue head %+v; want aud_1 untouched", h)
			}
			// The audit consumer takes its record.
			if err := st.AckEvent(ctx, o.OrderNo, "aud_1"); err != nil {
				t.Fatal(err)
			}
			drain(t, r)
			if n := len(rc.arrivals()); n != 1 {
				t.Fatalf("%d deliveries; want 1 (failed)", n)
			}
			// The webhook is being retried; aud_2 is due for its consumer now.
			due, err := st.DueEvents(ctx, clk.Now(), 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range due {
				if e.Key == o.OrderNo {
					got = append(got, e.ID)
				}
			}
			if fmt.Sprint(got) != "[aud_2]" {
				t.Errorf("due on the order's key: %v; want [aud_2] while its webhook is retried", got)
			}
			clk.Advance(time.Hour)
			drain(t, r)
			if h, ok := head(t, st, o.OrderNo); !ok || h.ID != "aud_2" {
				t.Errorf("order queue head %+v; want aud_2 still there", h)
			}
		})
	}
}

// TestRestartBetweenFailureAndRetry: the process dies after a failed
// delivery; a new one on the same store delivers the same event, once.
func TestRestartBetweenFailureAndRetry(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc := newReceiver(t, clk.Now, func(_ arrival, nth int) int {
				if nth == 0 {
					return http.StatusInternalServerError
				}
				return http.StatusOK
			})
			h := testdrivers.NewPlace(t, driver, nil)
			st := h.Open()
			ob := orders{t, st}
			o := ob.create("PRESTART"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			drain(t, newRelay(t, st, rc.URL, clk.Now, nil))
			if n := len(rc.arrivals()); n != 1 {
				t.Fatalf("%d arrivals before the restart; want 1", n)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}

			st2 := h.Open()
			// Past the first retry's 1 s with room to spare: a store
			// opened anew maps this clock onto the Redis server's again,
			// stamped within that read's round trip, so the retry's time
			// and now are a few milliseconds apart either way where the
			// test once advanced exactly to the retry.
			clk.Advance(2 * time.Second)
			drain(t, newRelay(t, st2, rc.URL, clk.Now, nil))
			all := rc.arrivals()
			if len(all) != 2 || all[0].id != all[1].id || all[1].status != http.StatusOK || all[1].verifyErr != nil {
				t.Fatalf("arrivals %+v; want the same event failed, then delivered after the restart", all)
			}
			if s, err := st2.OutboxStats(context.Background()); err != nil || s.Pending != 0 {
				t.Errorf("outbox %+v %v; want empty", s, err)
			}
		})
	}
}

// TestShutdownMidDelivery: a POST cut by Run's shutdown does not count as an
// attempt; the event stays pending with its lease given back, and the next
// relay (a restart, another replica) delivers it at once, not after the
// lease (30 s) runs out.
func TestShutdownMidDelivery(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	hold := make(chan struct{})
	entered := make(chan struct{}, 4)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		once.Do(func() { first = true })
		entered <- struct{}{}
		if first {
			select {
			case <-hold:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	defer close(hold)
	ob := orders{t, st}
	o := ob.create("PSHUTDOWN", store.StatusAwaitingPayment)
	ob.move(o, store.StatusPaid, "notification")

	clk := newClock()
	r := newRelay(t, st, srv.URL, clk.Now, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Wake()
	<-entered
	cancel()
	<-done
	h, ok := head(t, st, webhook.QueuePrefix+o.OrderNo)
	if !ok || h.Attempts != 0 || h.LastError != "" || h.NextAt.After(clk.Now()) {
		t.Fatalf("after shutdown: head %+v (found %v); want the event pending, no attempt counted, due now (its lease, %s, given back)", h, ok, webhook.LeaseOf(r))
	}

	results := make(chan webhook.Result, 4)
	r2 := newRelay(t, st, srv.URL, clk.Now, func(o *webhook.Options) { o.Observe = func(res webhook.Result) { results <- res } })
	if n := r2.RunOnce(context.Background()); n != 1 {
		t.Fatalf("the next relay took %d events at once; want 1", n)
	}
	res := <-results
	if res.Outcome != webhook.OutcomeDelivered || res.Attempt != 1 || res.EventID != h.ID || res.Status != http.StatusOK {
		t.Errorf("second run: %+v; want event %s delivered on attempt 1", res, h.ID)
	}
	if _, ok := head(t, st, webhook.QueuePrefix+o.OrderNo); ok {
		t.Error("the event is still pending after its delivery")
	}
}

// stopOnAnswer is a transport that stops the relay (cancels its context)
// as soon as the merchant's answer came back: a SIGTERM that lands between
// the POST's answer and the relay's record of it.
type stopOnAnswer struct{ stop context.CancelFunc }

func (s stopOnAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	s.stop()
	return resp, err
}

// TestShutdownAfterAnswerRecordsIt: the relay is stopped just after the
// merchant answered. A 2xx is recorded all the same (settle's writes
// outlive the stop): the merchant processed the event and must not get it
// again after the restart. A failed answer cut short by the stop does not
// count as an attempt, as a POST cut mid-way does not
// (TestShutdownMidDelivery): the event stays pending, leased.
func TestShutdownAfterAnswerRecordsIt(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		wantPending bool
	}{
		{"acknowledged", http.StatusOK, false},
		{"failed", http.StatusBadGateway, true},
	} {
		for _, driver := range drivers(t) {
			t.Run(tc.name+"/"+driver, func(t *testing.T) {
				clk := newClock()
				rc := newReceiver(t, clk.Now, func(arrival, int) int { return tc.status })
				st := testdrivers.Open(t, driver, nil)
				ob := orders{t, st}
				o := ob.create("PSTOPANSWER"+tc.name+driver, store.StatusAwaitingPayment)
				ob.move(o, store.StatusPaid, "notification")
				ctx, stop := context.WithCancel(context.Background())
				defer stop()
				r := newRelay(t, st, rc.URL, clk.Now, func(o *webhook.Options) {
					o.HTTPClient = &http.Client{Transport: stopOnAnswer{stop}}
				})
				r.RunOnce(context.Background()) // intake -> delivery queue
				r.RunOnce(ctx)                  // POSTed, answered, then stopped
				if n := len(rc.arrivals()); n != 1 {
					t.Fatalf("%d POSTs; want 1", n)
				}
				h, pending := head(t, st, webhook.QueuePrefix+o.OrderNo)
				switch {
				case pending != tc.wantPending:
					t.Fatalf("after a %d answered as the relay stopped: pending %v (event %s, %d attempts); want %v",
						tc.status, pending, h.ID, h.Attempts, tc.wantPending)
				case pending && (h.Attempts != 0 || h.LastError != ""):
					t.Errorf("a failed POST cut short by the stop was counted: %d attempts, last error %q; want none recorded",
						h.Attempts, h.LastError)
				}
			})
		}
	}
}

// TestDeliveryOutcomes: only a 2xx acknowledges. The POST timeout is 1s,
// which every answering merchant here beats by far on a loaded CI machine
// under -race (at 200ms a stall could turn a 200 into a timeout, and the
// event stayed pending), and which the silent one still reaches.
func TestDeliveryOutcomes(t *testing.T) {
	slow := make(chan struct{})
	defer close(slow)
	// elsewhere is another host a redirect names: it must never see the
	// signed body.
	var elsewhereHits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhereHits.Add(1) }))
	defer elsewhere.Close()
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		delivered bool
		errPart   string
	}{
		{name: "200", handler: func(w http.ResponseWriter, r *http.Request) {}, delivered: true},
		{name: "204", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, delivered: true},
		{name: "202", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) }, delivered: true},
		{name: "301 not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
		}, errPart: "status 301"},
		{name: "307 to another host not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/hook", http.StatusTemporaryRedirect)
		}, errPart: "status 307"},
		{name: "400", handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad signature", 400) }, errPart: "status 400: bad signature"},
		{name: "410 retried like any refusal", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }, errPart: "status 410"},
		{name: "200 with an endless body", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, delivered: true},
		{name: "200 with a body that stalls", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "ok, still thinking")
			w.(http.Flusher).Flush()
			select {
			case <-slow:
			case <-r.Context().Done():
			}
		}, delivered: true},
		{name: "connection reset", handler: func(w http.ResponseWriter, r *http.Request) {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				if tc, ok := c.(interface{ SetLinger(int) error }); ok {
					_ = tc.SetLinger(0) // RST, not FIN
				}
				_ = c.Close()
			}
		}, errPart: "post: "},
		{name: "500", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, errPart: "status 500"},
		{name: "timeout", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client leaving
			select {
			case <-slow:
			case <-r.Context().Done():
			}
		}, errPart: "deadline exceeded"},
		{name: "refused", errPart: "refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var url string
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				defer srv.Close()
				url = srv.URL
			} else {
				srv := httptest.NewServer(nil)
				url = srv.URL
				srv.Close()
			}
			st := testdrivers.Open(t, "embedded", nil)
			ob := orders{t, st}
			o := ob.create("POUT", store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			drain(t, newRelay(t, st, url, time.Now, func(o *webhook.Options) { o.Timeout = time.Second }))
			h, pending := head(t, st, webhook.QueuePrefix+o.OrderNo)
			if tc.delivered && pending {
				t.Errorf("still pending after a %s: %+v", tc.name, h)
			}
			if !tc.delivered && (!pending || h.Attempts != 1 || !strings.Contains(h.LastError, tc.errPart)) {
				t.Errorf("head %+v (pending %v); want one attempt with an error naming %q", h, pending, tc.errPart)
			}
			if n := elsewhereHits.Load(); n != 0 {
				t.Errorf("the host a redirect named got %d POSTs; want none", n)
			}
		})
	}
}

// TestSchedule: the default schedule is SPEC 2.6's: first retry within 10 s,
// doubling, at most an hour apart, for at least 24 h.
func TestSchedule(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	r, err := webhook.New(webhook.Options{Store: st, URL: "https://merchant.example/hook", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Delay(1); d <= 0 || d > 10*time.Second {
		t.Errorf("first retry after %s; want within 10s", d)
	}
	var span time.Duration
	for n := 1; n < r.MaxAttempts(); n++ {
		d := r.Delay(n)
		if d > time.Hour {
			t.Errorf("delay %d is %s; want at most 1h", n, d)
		}
		if n > 1 && d != min(2*r.Delay(n-1), time.Hour) {
			t.Errorf("delay %d is %s after %s; want doubling up to 1h", n, d, r.Delay(n-1))
		}
		span += d
	}
	if span < 24*time.Hour {
		t.Errorf("last attempt %s after the first; want at least 24h", span)
	}
	if span-r.Delay(r.MaxAttempts()-1) >= 24*time.Hour {
		t.Errorf("one attempt too many: the one before the last is already %s after the first", span-r.Delay(r.MaxAttempts()-1))
	}
	t.Logf("default schedule: %d attempts over %s", r.MaxAttempts(), span)
}

func TestNewValidates(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	tests := []struct {
		name string
		opts webhook.Options
		want string
	}{
		{name: "no store", opts: webhook.Options{URL: "https://m.example/h", Secret: "s"}, want: "Store"},
		{name: "no url", opts: webhook.Options{Store: st, Secret: "s"}, want: "URL"},
		{name: "ftp url", opts: webhook.Options{Store: st, URL: "ftp://m.example/h", Secret: "s"}, want: "URL"},
		{name: "no secret", opts: webhook.Options{Store: st, URL: "https://m.example/h"}, want: "Secret"},
		{name: "password not echoed", opts: webhook.Options{Store: st, URL: "gopher://u:hunter2@m.example/h", Secret: "s"}, want: "URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webhook.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("got %v; want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestStatsAndHandler: the admin view lists undelivered heads and counts.
func TestStatsAndHandler(t *testing.T) {
	clk := newClock()
	rc := newReceiver(t, clk.Now, func(a arrival, _ int) int {
		if a.orderNo == "PSTATSFAIL" {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	st := testdrivers.Open(t, "embedded", nil)
	ob := orders{t, st}
	fail := ob.create("PSTATSFAIL", store.StatusAwaitingPayment)
	ob.move(fail, store.StatusPaid, "notification")
	ok := ob.create("PSTATSOK", store.StatusAwaitingPayment)
	ob.move(ok, store.StatusPaid, "notification")
	reg := prometheus.NewRegistry()
	r := newRelay(t, st, strings.Replace(rc.URL, "http://", "http://user:pw@", 1), clk.Now, func(o *webhook.Options) { o.Registerer = reg })
	drain(t, r)
	later := ob.create("PSTATSLATER", store.StatusApprovalRequired)
	clk.Advance(10 * time.Second)

	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/api/webhooks", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
	var s webhook.Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Delivered != 1 || s.Failed != 1 || s.GivenUp != 0 || s.PendingOrders != 2 || s.Retrying != 1 || s.OutboxPending != 2 {
		t.Errorf("stats %+v; want 1 delivered, 1 failed, 2 orders pending, 1 retrying", s)
	}
	if strings.Contains(rec.Body.String(), "pw@") {
		t.Errorf("the URL's password is shown: %s", s.URL)
	}
	heads := map[string]webhook.Head{}
	for _, h := range s.Heads {
		heads[h.OrderNo] = h
	}
	if h := heads[fail.OrderNo]; h.Attempts != 1 || h.Type != webhook.TypeOrderPaid || !strings.Contains(h.LastError, "503") {
		t.Errorf("failing head %+v", h)
	}
	if h := heads[later.OrderNo]; h.Attempts != 0 || h.Type != webhook.TypeOrderApprovalRequired {
		t.Errorf("new head %+v", h)
	}
	if s.MaxAttempts != r.MaxAttempts() || s.FirstRetry != "1s" {
		t.Errorf("schedule %+v", s)
	}
	if got := testutil.ToFloat64(gauge(t, reg, "paygate_webhook_pending_orders")); got != 2 {
		t.Errorf("pending gauge %v; want 2", got)
	}
	if got := testutil.ToFloat64(gauge(t, reg, "paygate_webhook_retrying_orders")); got != 1 {
		t.Errorf("retrying gauge %v; want 1", got)
	}
	if got := testutil.ToFloat64(gauge(t, reg, "paygate_webhook_oldest_pending_seconds")); got < 9 {
		t.Errorf("oldest gauge %v; want about 10 (the clock moved 10s)", got)
	}
}

// brokenStats is a store whose outbox stats fail, or come back with a head
// no JSON can hold (a year past 9999), so the relay's answer cannot be
// encoded.
type brokenStats struct {
	store.Store
	unencodable bool
}

func (s brokenStats) OutboxStatsApart(ctx context.Context, apart ...string) (store.OutboxStats, int, error) {
	if !s.unencodable {
		return store.OutboxStats{}, 0, errors.New("outbox unreachable")
	}
	ob, n, err := s.Store.OutboxStatsApart(ctx, apart...)
	for i := range ob.Heads {
		ob.Heads[i].CreatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return ob, n, err
}

// TestHandlerFailuresInTheAdminShape: GET /admin/api/webhooks is an admin
// API route, so a failure answers as the admin API does everywhere,
// {"error":"…"} (not the chat API's {"error":{"message":…}}, not an empty
// body), with a status that says whose fault it is.
func TestHandlerFailuresInTheAdminShape(t *testing.T) {
	for _, tc := range []struct {
		name        string
		unencodable bool
		status      int
	}{
		{"store fails", false, http.StatusServiceUnavailable},
		{"answer cannot be encoded", true, http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := testdrivers.Open(t, "embedded", nil)
			orders{t, st}.create("PSTATSBROKEN", store.StatusApprovalRequired)
			r := newRelay(t, brokenStats{Store: st, unencodable: tc.unencodable}, "http://127.0.0.1:1/hook", time.Now, nil)
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/api/webhooks", nil))
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
				t.Errorf("body %q (%v); want {\"error\":\"…\"}", rec.Body, err)
			}
			if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("status %d, %s; want %d, application/json", rec.Code, rec.Header().Get("Content-Type"), tc.status)
			}
		})
	}
}

func gauge(t testing.TB, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			v := mf.GetMetric()[0].GetGauge().GetValue()
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return v })
		}
	}
	t.Fatalf("no gauge %s", name)
	return nil
}

// TestConcurrentOrders: many orders committing transitions while the relay
// runs, a receiver that fails at random: every event is acknowledged once
// per id, in commit order per order.
func TestConcurrentOrders(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			const nOrders = 30
			rc := newReceiver(t, time.Now, func(a arrival, nth int) int {
				h := fnv.New32a()
				h.Write([]byte(a.id))
				if nth < int(h.Sum32()%3) {
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			})
			st := testdrivers.Open(t, driver, nil)
			r := newRelay(t, st, rc.URL, time.Now, func(o *webhook.Options) {
				o.RetryBase, o.MaxDelay, o.RetryFor, o.PollInterval, o.Concurrency = time.Millisecond, 4*time.Millisecond, time.Hour, 5*time.Millisecond, 4
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { r.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			ob := orders{t, st}
			var wg sync.WaitGroup
			for i := range nOrders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					o := ob.create(fmt.Sprintf("PC%s%03d", driver, i), store.StatusApprovalRequired)
					r.Wake()
					ob.move(o, store.StatusCreating, "approve")
					ob.move(o, store.StatusAwaitingPayment, "prepay")
					ob.move(o, store.StatusPaid, "notification")
					r.Wake()
					ob.move(o, store.StatusNeedsReview, "notification")
					r.Wake()
				}()
			}
			wg.Wait()
			timeout := time.After(60 * time.Second)
			for len(rc.accepted()) < 3*nOrders {
				select {
				case <-rc.ch:
				case <-timeout:
					t.Fatalf("%d of %d events acknowledged in 60s", len(rc.accepted()), 3*nOrders)
				}
			}
			per := map[string][]string{}
			for _, a := range rc.accepted() {
				if a.verifyErr != nil {
					t.Errorf("%s: %v", a.id, a.verifyErr)
				}
				per[a.orderNo] = append(per[a.orderNo], a.typ)
			}
			want := fmt.Sprint([]string{webhook.TypeOrderApprovalRequired, webhook.TypeOrderPaid, webhook.TypeOrderNeedsReview})
			for no, types := range per {
				if fmt.Sprint(types) != want {
					t.Errorf("%s acknowledged %v; want %s", no, types, want)
				}
			}
			if len(per) != nOrders {
				t.Errorf("%d orders delivered; want %d", len(per), nOrders)
			}
			// No event after its successor: the first 2xx of each order's
			// events are in order, and no later event was ever posted before
			// its predecessor's first 2xx.
			acked := map[string]int{}
			rank := map[string]int{webhook.TypeOrderApprovalRequired: 1, webhook.TypeOrderPaid: 2, webhook.TypeOrderNeedsReview: 3}
			for _, a := range rc.arrivals() {
				if rank[a.typ] > acked[a.orderNo]+1 {
					t.Errorf("%s: %s posted before the event ahead of it was acknowledged", a.orderNo, a.typ)
				}
				if a.status/100 == 2 && rank[a.typ] > acked[a.orderNo] {
					acked[a.orderNo] = rank[a.typ]
				}
			}
		})
	}
}

// TestProposed: a refund proposal's refund.proposed, written with the
// proposal on its queue (ProposalEvents), is delivered in the order's
// sequence, after the order's earlier events. No other step of a proposal
// adds a webhook.
func TestProposed(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc := newReceiver(t, clk.Now, nil)
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o := ob.create("PPROPOSE"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			r := newRelay(t, st, rc.URL, clk.Now, nil)
			p := &store.RefundProposal{RefundID: "rf_p1", OrderNo: o.OrderNo, Client: o.Client, User: o.User, AmountFen: 4999, OutRefundNo: "RFp1"}
			cur, err := st.GetOrder(context.Background(), o.OrderNo)
			if err != nil {
				t.Fatal(err)
			}
			for _, step := range []payments.ProposalStep{payments.ProposalCancelled, payments.ProposalConfirmed} {
				if evs := webhook.ProposalEvents(context.Background(), step, *p, cur); len(evs) != 0 {
					t.Errorf("%s: %d events; want none", step, len(evs))
				}
			}
			if err := st.PutRefundProposal(context.Background(), p, 15*time.Minute,
				webhook.ProposalEvents(context.Background(), payments.ProposalMade, *p, cur)...); err != nil {
				t.Fatal(err)
			}
			// Both queues are due at once (the relay was down since the
			// payment): the proposal's waits for the order's earlier one.
			drain(t, r)
			clk.Advance(time.Minute)
			drain(t, r)
			acc := rc.accepted()
			if len(acc) != 2 || acc[0].typ != webhook.TypeOrderPaid || acc[1].typ != webhook.TypeRefundProposed {
				t.Fatalf("accepted %+v; want order.paid then refund.proposed", acc)
			}
			var env webhook.Envelope
			_ = json.Unmarshal(acc[1].body, &env)
			if env.Data.Refund["refund_id"] != "rf_p1" || env.Data.Refund["confirm_url"] != "/v1/paygate/refunds/rf_p1/confirm" || env.Data.Order["status"] != "paid" {
				t.Errorf("refund.proposed data %+v", env.Data)
			}
		})
	}
}

// TestEventClaimedWhileItsKeyIsBusy: the relay claims an order's next
// event while the worker of the one ahead of it has acknowledged it but not
// yet let go of the key. The claim leased the event to this relay, so that
// worker must deliver it next, at once (the clock stands still: were it left
// to the lease, it would never come due again), and every event is POSTed
// once.
func TestEventClaimedWhileItsKeyIsBusy(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc := newReceiver(t, clk.Now, nil)
			st := testdrivers.Open(t, driver, nil)
			key, first, second := twoQueued(t, st, clk, "PBUSY"+driver)
			results := make(chan webhook.Result, 4)
			bs := &busyAck{Store: st, key: key, id: first.ID}
			r := newRelay(t, bs, rc.URL, clk.Now, func(o *webhook.Options) {
				o.PollInterval = time.Hour // only Wake and finished keys make it claim
				o.Observe = func(res webhook.Result) { results <- res }
			})
			bs.relay = r
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { r.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			r.Wake()
			for _, want := range []string{first.ID, second.ID} {
				select {
				case res := <-results:
					if res.EventID != want || res.Outcome != webhook.OutcomeDelivered {
						t.Fatalf("result %+v; want %s delivered", res, want)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("%s not delivered within 20s", want)
				}
			}
			if !bs.claimedBehind.Load() {
				t.Error("the second event was not claimed while the key was busy; the test proved nothing")
			}
			for i, a := range rc.arrivals() {
				if i > 1 || a.id != []string{first.ID, second.ID}[i] {
					t.Errorf("arrival %d: %s; want %s then %s, once each", i, a.id, first.ID, second.ID)
				}
			}
		})
	}
}

// twoQueued creates order no (awaiting payment: no event of its own) and
// queues two events for delivery on its queue key, which it returns.
func twoQueued(t *testing.T, st store.Store, clk *clock, no string) (key string, first, second store.Event) {
	t.Helper()
	o := orders{t, st}.create(no, store.StatusAwaitingPayment)
	key = webhook.QueuePrefix + o.OrderNo
	first = webhook.NewEvent(webhook.TypeOrderPaid, o, nil, clk.Now())
	second = webhook.NewEvent(webhook.TypeOrderNeedsReview, o, nil, clk.Now())
	first.Key, second.Key = key, key
	if err := st.EnqueueEvents(context.Background(), first, second); err != nil {
		t.Fatal(err)
	}
	return key, first, second
}

// busyAck holds the acknowledgement of event id on key until the relay has
// claimed the key's next event (and kept it for the key's worker).
type busyAck struct {
	store.Store
	relay         *webhook.Relay
	key, id       string
	claimedBehind atomic.Bool
}

func (s *busyAck) AckEvent(ctx context.Context, key, id string) error {
	err := s.Store.AckEvent(ctx, key, id)
	if err != nil || key != s.key || id != s.id {
		return err
	}
	s.relay.Wake()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); runtime.Gosched() {
		if webhook.Queued(s.relay, key) {
			s.claimedBehind.Store(true)
			break
		}
	}
	return nil
}

// TestProposedBeforeItsRefund: a refund.proposed held back (its relay was
// down, it waited a poll for the order's earlier events) still reaches the
// merchant before what its confirmation did to the order: the
// refund.succeeded of the refund it proposed, committed on the order's own
// queue after the proposal, waits for the proposal's queue, so the order's
// sequence is order.paid, refund.proposed, refund.succeeded.
func TestProposedBeforeItsRefund(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc := newReceiver(t, clk.Now, nil)
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o := ob.create("PPROPREF"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			p := &store.RefundProposal{RefundID: "rf_pr1", OrderNo: o.OrderNo, Client: o.Client, User: o.User, AmountFen: o.AmountFen, OutRefundNo: "RFpr1"}
			if err := st.PutRefundProposal(context.Background(), p, 15*time.Minute,
				webhook.ProposalEvents(context.Background(), payments.ProposalMade, *p, o)...); err != nil {
				t.Fatal(err)
			}
			ob.move(o, store.StatusRefunding, "refund")
			before := *o
			o.Status, o.RefundedFen, o.UpdatedAt = store.StatusRefunded, p.AmountFen, time.Now()
			tr := payments.Transition{Before: before, After: *o, Cause: "notification", Refund: p}
			if err := st.UpdateOrder(context.Background(), o, before.Status, webhook.Events(tr)...); err != nil {
				t.Fatal(err)
			}
			r := newRelay(t, st, rc.URL, clk.Now, nil)
			drainPasses(t, r, clk, 3)
			got := rc.acceptedTypes()
			want := []string{webhook.TypeOrderPaid, webhook.TypeRefundProposed, webhook.TypeRefundSucceeded}
			if !slices.Equal(got, want) {
				t.Fatalf("accepted %v; want %v", got, want)
			}
		})
	}
}

// TestProposedByAnEarlierVersionStillDelivered: a refund.proposed that an
// earlier version enqueued on its order's own queue, after the proposal
// and its audit record were written, is still delivered after an upgrade,
// in the order's sequence, though its proposal's queue holds that earlier
// audit record (no audit worker drains it here): it waits for nothing.
func TestProposedByAnEarlierVersionStillDelivered(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc := newReceiver(t, clk.Now, nil)
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o := ob.create("PUPGRADE"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			rec := store.Event{ID: "aud_up1", Kind: "audit", Payload: []byte(`{}`), CreatedAt: time.Now()}
			p := store.RefundProposal{RefundID: "rf_up1", OrderNo: o.OrderNo, Client: o.Client, User: o.User, AmountFen: 4999, OutRefundNo: "RFup1"}
			if err := st.PutRefundProposal(context.Background(), &p, 15*time.Minute, rec); err != nil {
				t.Fatal(err)
			}
			ev := webhook.ProposalEvent(p, o) // keyed by the order, as the earlier Relay.Proposed enqueued it
			if ev.Key != o.OrderNo || !rec.CreatedAt.Before(ev.CreatedAt) {
				t.Fatalf("event keyed %q at %v; want the order's queue, after the audit record at %v", ev.Key, ev.CreatedAt, rec.CreatedAt)
			}
			if err := st.EnqueueEvents(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			r := newRelay(t, st, rc.URL, clk.Now, nil)
			drainPasses(t, r, clk, 3)
			got := rc.acceptedTypes()
			if want := []string{webhook.TypeOrderPaid, webhook.TypeRefundProposed}; !slices.Equal(got, want) {
				t.Fatalf("accepted %v; want %v", got, want)
			}
		})
	}
}

// TestSetAsideKeepsTheOrdersSequence: a process with webhooks off sets
// aside the webhook events no relay took off their queues (SetAside), in
// the order its audit worker meets them as due heads, which need not be the
// order they were made in (a relay that died held some leased, due after
// others). Offered first, the proposal's refund.proposed reached the
// order's delivery queue ahead of the order.paid made before it; offered
// last, behind the refund.succeeded of its own refund; and a relay later
// delivered them so. SetAside leaves such an event where it is until the
// events it must follow have gone ahead, as the relay's move does.
func TestSetAsideKeepsTheOrdersSequence(t *testing.T) {
	tests := []struct {
		name  string
		order bool // offered the order's queue first; else the proposal's
	}{
		{"the proposal's event offered first", false},
		{"the order's events offered first", true},
	}
	for _, driver := range drivers(t) {
		for k, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				clk := newClock()
				rc := newReceiver(t, clk.Now, nil)
				st := testdrivers.Open(t, driver, nil)
				ob := orders{t, st}
				o := ob.create(fmt.Sprintf("PASIDE%d%s", k, driver), store.StatusAwaitingPayment)
				ob.move(o, store.StatusPaid, "notification")
				p := &store.RefundProposal{RefundID: fmt.Sprintf("rf_as%d", k), OrderNo: o.OrderNo, Client: o.Client, User: o.User, AmountFen: o.AmountFen, OutRefundNo: fmt.Sprintf("RFas%d", k)}
				if err := st.PutRefundProposal(ctx, p, 15*time.Minute, webhook.ProposalEvents(ctx, payments.ProposalMade, *p, o)...); err != nil {
					t.Fatal(err)
				}
				ob.move(o, store.StatusRefunding, "refund")
				before := *o
				o.Status, o.RefundedFen, o.UpdatedAt = store.StatusRefunded, p.AmountFen, time.Now()
				if err := st.UpdateOrder(ctx, o, before.Status, webhook.Events(payments.Transition{Before: before, After: *o, Cause: "notification", Refund: p})...); err != nil {
					t.Fatal(err)
				}
				// Every event is older than the wait: each one offered is
				// set aside unless it must follow another.
				aside := webhook.SetAside(st, 0, func() time.Time { return time.Now().Add(time.Hour) })
				keys := []string{store.ProposalEventKey(p.RefundID), o.OrderNo, o.OrderNo}
				if tt.order {
					keys = []string{o.OrderNo, o.OrderNo, store.ProposalEventKey(p.RefundID)}
				}
				for range 3 { // the worker's passes
					for _, key := range keys {
						hs, err := st.OutboxHeads(ctx, key)
						if err != nil {
							t.Fatal(err)
						}
						for _, h := range hs {
							if h.Key != key {
								continue
							}
							if _, err := aside(ctx, h); err != nil {
								t.Fatalf("set aside %s: %v", h.ID, err)
							}
						}
					}
				}
				drain(t, newRelay(t, st, rc.URL, clk.Now, nil))
				got := rc.acceptedTypes()
				if want := []string{webhook.TypeOrderPaid, webhook.TypeRefundProposed, webhook.TypeRefundSucceeded}; !slices.Equal(got, want) {
					t.Fatalf("accepted %v; want %v", got, want)
				}
			})
		}
	}
}

// TestProposalsKeepTheOrdersSequence: the order's events made after a
// refund.proposed never reach the merchant before it, whichever of the
// order's queues holds them: another proposal's refund.proposed (the first
// expired or was cancelled, the user asked again and confirmed), the
// outcome of that second refund, and an order event that names no refund
// (order.needs_review). The first proposal's refund.proposed is held back
// on its queue, here behind its audit record (an audit worker behind; a
// relay that died holding its lease is the same), and the rule that orders
// a refund's outcome after its own proposal ignored every other proposal
// of the order: the merchant heard of the second refund, done, and of the
// review before the first proposal, then of a refund offered on an order
// already refunded or in review.
func TestProposalsKeepTheOrdersSequence(t *testing.T) {
	tests := []struct {
		name string
		// later commits the order's events after the first proposal, at
		// base plus seconds, and returns the types the merchant must get
		// after the first refund.proposed, in order.
		later func(t *testing.T, st store.Store, ob orders, o *store.Order, base time.Time, k int) []string
	}{
		{"a second proposal confirmed and refunded", func(t *testing.T, st store.Store, ob orders, o *store.Order, base time.Time, k int) []string {
			ctx := context.Background()
			p2 := &store.RefundProposal{RefundID: fmt.Sprintf("rf_sq%d_2", k), OrderNo: o.OrderNo, Client: o.Client, User: o.User, AmountFen: o.AmountFen,
				OutRefundNo: fmt.Sprintf("RFsq%d2", k), CreatedAt: base.Add(3 * time.Second)}
			if err := st.PutRefundProposal(ctx, p2, 15*time.Minute, webhook.ProposalEvents(ctx, payments.ProposalMade, *p2, o)...); err != nil {
				t.Fatal(err)
			}
			ob.move(o, store.StatusRefunding, "refund")
			before := *o
			o.Status, o.RefundedFen, o.UpdatedAt = store.StatusRefunded, p2.AmountFen, base.Add(4*time.Second)
			if err := st.UpdateOrder(ctx, o, before.Status, webhook.Events(payments.Transition{Before: before, After: *o, Cause: "notification", Refund: p2})...); err != nil {
				t.Fatal(err)
			}
			return []string{webhook.TypeRefundProposed + " " + p2.RefundID, webhook.TypeRefundSucceeded + " " + p2.RefundID}
		}},
		{"the order goes to review", func(t *testing.T, st store.Store, ob orders, o *store.Order, base time.Time, k int) []string {
			before := *o
			o.Status, o.ReviewReason, o.UpdatedAt = store.StatusNeedsReview, "amount_mismatch", base.Add(4*time.Second)
			if err := st.UpdateOrder(context.Background(), o, before.Status, webhook.Events(payments.Transition{Before: before, After: *o, Cause: "notification"})...); err != nil {
				t.Fatal(err)
			}
			return []string{webhook.TypeOrderNeedsReview}
		}},
	}
	for _, driver := range drivers(t) {
		for k, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				clk := newClock()
				rc := newReceiver(t, clk.Now, nil)
				st := testdrivers.Open(t, driver, nil)
				ob := orders{t, st}
				o := ob.create(fmt.Sprintf("PSEQ%d%s", k, driver), store.StatusAwaitingPayment)
				ob.move(o, store.StatusPaid, "notification")
				base := time.Now()
				p1 := &store.RefundProposal{RefundID: fmt.Sprintf("rf_sq%d_1", k), OrderNo: o.OrderNo, Client: o.Client, User: o.User, AmountFen: o.AmountFen,
					OutRefundNo: fmt.Sprintf("RFsq%d1", k), CreatedAt: base.Add(2 * time.Second)}
				// The proposal's audit record rides ahead of its webhook, as
				// serve composes them; no audit worker runs yet.
				rec := store.Event{ID: fmt.Sprintf("aud_sq%d", k), Kind: "audit", CreatedAt: base.Add(time.Second),
					Payload: []byte(`{"action":{"action":"refund.proposed","order_no":"` + o.OrderNo + `","refund_id":"` + p1.RefundID + `"}}`)}
				if err := st.PutRefundProposal(ctx, p1, 15*time.Minute, append([]store.Event{rec}, webhook.ProposalEvents(ctx, payments.ProposalMade, *p1, o)...)...); err != nil {
					t.Fatal(err)
				}
				want := append([]string{webhook.TypeOrderPaid, webhook.TypeRefundProposed + " " + p1.RefundID}, tt.later(t, st, ob, o, base, k)...)
				r := newRelay(t, st, rc.URL, clk.Now, nil)
				drainPasses(t, r, clk, 3)
				// The audit worker catches up.
				if err := st.AckEvent(ctx, store.ProposalEventKey(p1.RefundID), rec.ID); err != nil {
					t.Fatal(err)
				}
				drainPasses(t, r, clk, 4)
				var got []string
				for _, a := range rc.accepted() {
					if id := gjson.GetBytes(a.body, "data.refund.refund_id").Str; id != "" {
						a.typ += " " + id
					}
					got = append(got, a.typ)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("accepted %v; want %v", got, want)
				}
			})
		}
	}
}

// TestProposalEndedUnconfirmedStillNotified: a refund.proposed is the
// merchant's notice that the user was offered a refund, with its expires_at;
// the offer's end adds no event (SPEC 2.6 has none). A proposal that
// expired, or that the user cancelled, before a relay moved its event must
// not take the event with it: the merchant still gets it, once, after the
// order's earlier events.
func TestProposalEndedUnconfirmedStillNotified(t *testing.T) {
	for _, driver := range drivers(t) {
		for k, end := range []string{"expired", "cancelled"} {
			t.Run(driver+"/"+end, func(t *testing.T) {
				ctx := context.Background()
				clk := newClock()
				rc := newReceiver(t, clk.Now, nil)
				st := testdrivers.Open(t, driver, nil)
				ob := orders{t, st}
				o := ob.create(fmt.Sprintf("PENDED%d%s", k, driver), store.StatusAwaitingPayment)
				ob.move(o, store.StatusPaid, "notification")
				p := &store.RefundProposal{RefundID: fmt.Sprintf("rf_end%d", k), OrderNo: o.OrderNo, Client: o.Client, User: o.User, AmountFen: o.AmountFen, OutRefundNo: fmt.Sprintf("RFend%d", k)}
				ttl := 15 * time.Minute
				if end == "expired" {
					ttl = time.Nanosecond // lapsed by the time it is ended
				}
				if err := st.PutRefundProposal(ctx, p, ttl, webhook.ProposalEvents(ctx, payments.ProposalMade, *p, o)...); err != nil {
					t.Fatal(err)
				}
				if end == "expired" {
					if _, state, err := st.ExpireRefundProposal(ctx, p.RefundID); err != nil || state != store.ProposalExpired {
						t.Fatalf("expire: %v %v; want it expired", state, err)
					}
				} else if _, err := st.CancelRefundProposal(ctx, p.RefundID, p.User); err != nil {
					t.Fatalf("cancel: %v", err)
				}
				r := newRelay(t, st, rc.URL, clk.Now, nil)
				drainPasses(t, r, clk, 3)
				got := rc.acceptedTypes()
				if want := []string{webhook.TypeOrderPaid, webhook.TypeRefundProposed}; !slices.Equal(got, want) {
					t.Fatalf("accepted %v; want %v", got, want)
				}
				if n := len(rc.arrivals()); n != 2 {
					t.Errorf("%d POSTs; want 2, one per event", n)
				}
			})
		}
	}
}

// TestGiveUpCountsAttemptsNotTime: the give-up comes after MaxAttempts
// failed attempts, not at the first failure made RetryFor after the first
// attempt: a relay that was down longer than RetryFor (paygate's outage,
// not the merchant's) still gives the event its remaining attempts.
func TestGiveUpCountsAttemptsNotTime(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	clk, rc, r, _, _ := givingUp(t, st, "PGIVEUPLATE")
	drain(t, r)                   // attempt 1 at 0s: refused
	clk.Advance(10 * time.Second) // the relay was down twice RetryFor (5s)
	drain(t, r)                   // attempt 2 at 10s: refused, and not given up
	if heads := queuedFor(t, st, "PGIVEUPLATE"); len(heads) == 0 {
		t.Fatalf("nothing queued after attempt 2; want the approval_required retried")
	}
	if acc := rc.accepted(); len(acc) != 0 {
		t.Fatalf("accepted %+v after attempt 2; want nothing (the order.closed waits behind the retried event)", acc)
	}
	for range r.MaxAttempts() - 2 {
		clk.Advance(2 * time.Second) // MaxDelay
		drain(t, r)
	}
	fails := 0
	for _, a := range rc.arrivals() {
		if a.typ == webhook.TypeOrderApprovalRequired {
			fails++
		}
	}
	if fails != r.MaxAttempts() {
		t.Errorf("approval_required posted %d times; want %d, then given up", fails, r.MaxAttempts())
	}
	if got := rc.acceptedTypes(); fmt.Sprint(got) != "["+webhook.TypeOrderClosed+"]" {
		t.Errorf("accepted %v; want the order.closed once the approval_required was given up", got)
	}
}

// TestFailureOfEventDeliveredMeanwhileNotRetried: a relay whose POST
// failed after another relay delivered the event (this one's lease ran
// out; the other's 2xx took it off the queue) logs that it was delivered
// meanwhile, not that it will be retried: nothing is left to retry. A
// failure whose retry the store did not record says that, not that a
// retry is scheduled at a next_at nobody wrote. One whose event another
// relay claimed once this one's lease ran out records nothing and says
// the outcome is that relay's.
func TestFailureOfEventDeliveredMeanwhileNotRetried(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, tc := range []struct {
			name, want string
			ack        bool
			retryErr   error
			claim      bool // another relay claims the event during the POST, past its lease
		}{
			{"delivered meanwhile", "acknowledged meanwhile", true, nil, false},
			{"retry not recorded", "retry not recorded", false, errors.New("store down"), false},
			{"claimed meanwhile", "another relay claimed it meanwhile", false, nil, true},
		} {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				st := testdrivers.Open(t, driver, nil)
				key := webhook.QueuePrefix + "PMEANWHILE"
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					// The other relay's 2xx, recorded before this POST's 500 is.
					if tc.ack {
						if err := st.AckEvent(req.Context(), key, req.Header.Get("X-Paygate-Event-Id")); err != nil {
							t.Error(err)
						}
					}
					if tc.claim {
						if evs, err := st.ClaimEvents(req.Context(), webhook.Kind, time.Now().Add(time.Hour), time.Minute, 10); err != nil || len(evs) != 1 {
							t.Errorf("another relay's claim: %d events, %v; want the one", len(evs), err)
						}
					}
					w.WriteHeader(http.StatusInternalServerError)
				}))
				defer srv.Close()
				o := orders{t, st}.create("PMEANWHILE", store.StatusAwaitingPayment) // no event of its own
				ev := webhook.NewEvent(webhook.TypeOrderPaid, o, nil, time.Now())
				ev.Key = key
				if err := st.EnqueueEvents(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
				logs := &logtest.Buffer{}
				drain(t, newRelay(t, retryFails{st, tc.retryErr}, srv.URL, time.Now, func(o *webhook.Options) {
					o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
				}))
				if !strings.Contains(logs.String(), tc.want) || strings.Contains(logs.String(), "will retry") {
					t.Errorf("log:\n%s\nwant %q, and no retry announced", logs, tc.want)
				}
			})
		}
	}
}

// retryFails is a store whose RetryClaimedEvent (a delivery's retry)
// fails with err, when not nil.
type retryFails struct {
	store.Store
	err error
}

func (s retryFails) RetryClaimedEvent(ctx context.Context, key, id string, leasedUntil, nextAt time.Time, attempts int, lastErr string) error {
	if s.err != nil {
		return s.err
	}
	return s.Store.RetryClaimedEvent(ctx, key, id, leasedUntil, nextAt, attempts, lastErr)
}
