package webhook_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// metricValue is the value of the series name{labels} on reg; false when
// reg has none.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestRetryAfterHonoured: a merchant answering 429 or 503 with a
// Retry-After (seconds, or an HTTP date) gets that event again no earlier
// than the time it named, capped at the schedule's longest delay; the
// order's later events wait behind it, and so, the endpoint being one
// backend, do other orders' events (none is sent, and none counts an
// attempt, before that time). A Retry-After in the past, or unparsable, or
// on another status leaves the schedule as it was, and other orders go
// out at once. The log, the metrics and GET /admin/api/webhooks say that
// the merchant throttled delivery, and until when.
func TestRetryAfterHonoured(t *testing.T) {
	const maxDelay = 10 * time.Minute
	cases := []struct {
		name   string
		status int
		header func(now time.Time) string
		// want is the next attempt of the throttled event; paused whether
		// the endpoint waits until then.
		want   func(now time.Time) time.Time
		paused bool
	}{
		{name: "429 seconds", status: http.StatusTooManyRequests, header: func(time.Time) string { return "120" },
			want: func(now time.Time) time.Time { return now.Add(120 * time.Second) }, paused: true},
		{name: "503 date", status: http.StatusServiceUnavailable,
			header: func(now time.Time) string { return now.Add(90 * time.Second).UTC().Format(http.TimeFormat) },
			want: func(now time.Time) time.Time {
				at, _ := http.ParseTime(now.Add(90 * time.Second).UTC().Format(http.TimeFormat))
				return at
			}, paused: true},
		{name: "429 beyond the cap", status: http.StatusTooManyRequests, header: func(time.Time) string { return "86400" },
			want: func(now time.Time) time.Time { return now.Add(maxDelay) }, paused: true},
		{name: "503 past date", status: http.StatusServiceUnavailable,
			header: func(now time.Time) string { return now.Add(-time.Hour).UTC().Format(http.TimeFormat) },
			want:   func(now time.Time) time.Time { return now.Add(time.Second) }},
		{name: "429 unparsable", status: http.StatusTooManyRequests, header: func(time.Time) string { return "soon" },
			want: func(now time.Time) time.Time { return now.Add(time.Second) }},
		{name: "429 zero", status: http.StatusTooManyRequests, header: func(time.Time) string { return "0" },
			want: func(now time.Time) time.Time { return now.Add(time.Second) }},
		{name: "500 with a Retry-After", status: http.StatusInternalServerError, header: func(time.Time) string { return "120" },
			want: func(now time.Time) time.Time { return now.Add(time.Second) }},
	}
	for _, driver := range drivers(t) {
		for _, tc := range cases {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				clk := newClock()
				noA, noB := "PRA"+strings.ReplaceAll(tc.name, " ", "")+driver, "PRB"+strings.ReplaceAll(tc.name, " ", "")+driver
				var arrivals []time.Time // when (on clk) each arrival came
				// The merchant throttles its first POST, A's order.paid.
				rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
					arrivals = append(arrivals, clk.Now())
					if len(arrivals) == 1 {
						return tc.status
					}
					return http.StatusNoContent
				})
				inner := rc.Config.Handler
				merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					if len(rc.arrivals()) == 0 {
						w.Header().Set("Retry-After", tc.header(clk.Now()))
					}
					inner.ServeHTTP(w, req)
				}))
				defer merchant.Close()
				st := testdrivers.Open(t, driver, nil)
				ob := orders{t, st}
				reg := prometheus.NewRegistry()
				logs := &logtest.Buffer{}
				r := newRelay(t, st, merchant.URL, clk.Now, func(o *webhook.Options) {
					o.RetryBase, o.MaxDelay, o.RetryFor = time.Second, maxDelay, time.Hour
					o.Registerer = reg
					o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
				})

				a := ob.create(noA, store.StatusAwaitingPayment)
				ob.move(a, store.StatusPaid, "notification")
				drain(t, r)
				start := clk.Now()
				want := tc.want(start)
				h, ok := head(t, st, webhook.QueuePrefix+noA)
				if !ok || h.Attempts != 1 || !h.NextAt.Equal(want) {
					t.Fatalf("after a %d with Retry-After %q: head attempts %d, next at +%s, error %q (found %v); want attempt 1, next at +%s",
						tc.status, tc.header(start), h.Attempts, h.NextAt.Sub(start), h.LastError, ok, want.Sub(start))
				}
				// The order's next event, and another order's first, come
				// after the throttled answer.
				ob.refund(a, "rf_"+noA, 1000)
				b := ob.create(noB, store.StatusAwaitingPayment)
				ob.move(b, store.StatusPaid, "notification")
				drain(t, r)
				if !tc.paused {
					if got := rc.acceptedTypes(); len(got) != 1 || got[0] != webhook.TypeOrderPaid || rc.accepted()[0].orderNo != noB {
						t.Fatalf("accepted %v; want B's order.paid at once (nothing throttles the endpoint)", got)
					}
					if v, _ := metricValue(t, reg, "paygate_webhook_throttled_total", nil); v != 0 {
						t.Errorf("paygate_webhook_throttled_total %v; want 0", v)
					}
					return
				}
				if n := len(rc.arrivals()); n != 1 {
					t.Fatalf("%d arrivals right after the throttled answer; want only it (B waits until %s)", n, want)
				}
				hb, ok := head(t, st, webhook.QueuePrefix+noB)
				if !ok || hb.Attempts != 0 || !hb.NextAt.Equal(want) {
					t.Errorf("B's head while the endpoint waits: attempts %d, next at +%s (found %v); want no attempt counted, next at +%s",
						hb.Attempts, hb.NextAt.Sub(start), ok, want.Sub(start))
				}
				// Just before the named time nothing goes out.
				clk.Advance(want.Sub(clk.Now()) - time.Millisecond)
				drain(t, r)
				if n := len(rc.arrivals()); n != 1 {
					t.Fatalf("%d arrivals %s before the time the merchant named; want 1", n, time.Millisecond)
				}
				v, _ := metricValue(t, reg, "paygate_webhook_throttled_total", map[string]string{"status": strconv.Itoa(tc.status)})
				if v != 1 {
					t.Errorf("paygate_webhook_throttled_total{status=\"%d\"} %v; want 1", tc.status, v)
				}
				if v, _ := metricValue(t, reg, "paygate_webhook_paused_until_timestamp_seconds", nil); v != float64(want.Unix()) {
					t.Errorf("paygate_webhook_paused_until_timestamp_seconds %v; want %d", v, want.Unix())
				}
				var stats struct {
					PausedUntil time.Time `json:"paused_until"`
					PausedBy    string    `json:"paused_by"`
				}
				srv := httptest.NewServer(r.Handler())
				defer srv.Close()
				resp, err := http.Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				_ = json.NewDecoder(resp.Body).Decode(&stats)
				resp.Body.Close()
				if !stats.PausedUntil.Equal(want) || !strings.Contains(stats.PausedBy, "Retry-After") {
					t.Errorf("GET /admin/api/webhooks: paused_until %s, paused_by %q; want %s, naming the Retry-After", stats.PausedUntil, stats.PausedBy, want)
				}
				if l := logs.String(); !strings.Contains(l, "Retry-After") || !strings.Contains(l, `"paused_until"`) {
					t.Errorf("log %s; want it to say the merchant asked to wait (Retry-After), and until when", l)
				}
				// At the named time: A's order.paid, then its refund, and B's.
				clk.Advance(time.Millisecond)
				drainPasses(t, r, clk, 3)
				var typesA []string
				for _, x := range rc.accepted() {
					if x.orderNo == noA {
						typesA = append(typesA, x.typ)
					}
				}
				if len(typesA) != 2 || typesA[0] != webhook.TypeOrderPaid || typesA[1] != webhook.TypeRefundSucceeded || len(rc.accepted()) != 3 {
					t.Errorf("accepted %v (A's %v); want A's order.paid then refund.succeeded, and B's order.paid", rc.acceptedTypes(), typesA)
				}
				for i, at := range arrivals[1:] {
					if at.Before(want) {
						t.Errorf("arrival %d at +%s; want none before +%s", i+2, at.Sub(start), want.Sub(start))
					}
				}
				if v, _ := metricValue(t, reg, "paygate_webhook_deliveries_total", map[string]string{"type": webhook.TypeOrderPaid, "outcome": webhook.OutcomeFailed}); v != 1 {
					t.Errorf("failed order.paid attempts %v; want 1 (B's wait is no attempt)", v)
				}
			})
		}
	}
}
