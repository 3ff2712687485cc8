package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestResumeEndsPause: an endpoint that asked paygate to wait an hour (a
// CDN's Retry-After: 3600 during a blip) is sent to again at once when an
// operator ends the pause (POST /admin/api/webhooks/resume): the throttled
// event and the other orders' events held behind it are due now, in the
// store, so a process restarted since (the pause it kept gone, the held
// times not) releases them too. An event waiting for its own retry, whose
// time the pause did not move, keeps it.
func TestResumeEndsPause(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, restarted := range []bool{false, true} {
			name := driver + "/same process"
			if restarted {
				name = driver + "/after a restart"
			}
			t.Run(name, func(t *testing.T) {
				clk := newClock()
				suffix := driver
				if restarted {
					suffix += "R"
				}
				noA, noB, noC := "PRSA"+suffix, "PRSB"+suffix, "PRSC"+suffix
				var mu sync.Mutex
				var got []string // order numbers, in arrival order
				merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					body, _ := io.ReadAll(req.Body)
					no := gjson.GetBytes(body, "data.order.order_no").Str
					mu.Lock()
					n := 0
					for _, g := range got {
						if g == no {
							n++
						}
					}
					got = append(got, no)
					mu.Unlock()
					switch {
					case no == noC && n == 0:
						w.WriteHeader(http.StatusInternalServerError) // C fails on its own
					case no == noA && n == 0:
						w.Header().Set("Retry-After", "3600")
						w.WriteHeader(http.StatusServiceUnavailable)
					default:
						w.WriteHeader(http.StatusNoContent)
					}
				}))
				defer merchant.Close()
				arrivals := func() []string {
					mu.Lock()
					defer mu.Unlock()
					return append([]string(nil), got...)
				}
				st := testdrivers.Open(t, driver, clk.Now)
				ob := orders{t, st}
				reg := prometheus.NewRegistry()
				tweak := func(o *webhook.Options) {
					o.RetryBase, o.MaxDelay, o.RetryFor = 10*time.Minute, time.Hour, 24*time.Hour
					o.Registerer = reg
				}
				r := newRelay(t, st, merchant.URL, clk.Now, tweak)

				start := clk.Now()
				c := ob.create(noC, store.StatusAwaitingPayment)
				ob.move(c, store.StatusPaid, "notification")
				drain(t, r)
				a := ob.create(noA, store.StatusAwaitingPayment)
				ob.move(a, store.StatusPaid, "notification")
				drain(t, r)
				b := ob.create(noB, store.StatusAwaitingPayment)
				ob.move(b, store.StatusPaid, "notification")
				drain(t, r)
				hc, _ := head(t, st, webhook.QueuePrefix+noC)
				if n := len(arrivals()); n != 2 || !hc.NextAt.Equal(start.Add(10*time.Minute)) {
					t.Fatalf("arrivals %v, C's next try at +%s; want C's and A's first (B held back), C's retry at +10m", arrivals(), hc.NextAt.Sub(start))
				}
				clk.Advance(time.Minute)
				resumed := clk.Now()
				if restarted {
					reg = prometheus.NewRegistry()
					r = newRelay(t, st, merchant.URL, clk.Now, tweak)
				}
				srv := httptest.NewServer(r.ResumeHandler())
				defer srv.Close()
				resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(nil))
				if err != nil {
					t.Fatal(err)
				}
				var ans struct {
					PausedUntil *time.Time `json:"paused_until"`
					Released    int        `json:"released"`
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err := json.Unmarshal(raw, &ans); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("resume answered %d %s; want 200 with what it did", resp.StatusCode, raw)
				}
				wantPaused := !restarted
				if ans.Released != 2 || (ans.PausedUntil != nil) != wantPaused ||
					(wantPaused && !ans.PausedUntil.Equal(start.Add(time.Hour))) {
					t.Errorf("resume answered %s; want released 2 (A's and B's order.paid), paused_until +1h (null after a restart)", raw)
				}
				for _, tc := range []struct {
					no       string
					attempts int
					next     time.Time
				}{{noA, 1, resumed}, {noB, 0, resumed}, {noC, 1, start.Add(10 * time.Minute)}} {
					h, ok := head(t, st, webhook.QueuePrefix+tc.no)
					if !ok || h.Attempts != tc.attempts || !h.NextAt.Equal(tc.next) {
						t.Errorf("%s after the resume: attempts %d, next try at +%s (found %v); want %d, +%s",
							tc.no, h.Attempts, h.NextAt.Sub(start), ok, tc.attempts, tc.next.Sub(start))
					}
				}
				stats, err := r.Stats(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if stats.PausedUntil.After(clk.Now()) || !restarted && !strings.Contains(stats.PausedBy, "operator") {
					t.Errorf("paused_until %s, paused_by %q after the resume; want no pause in force, ended by an operator", stats.PausedUntil, stats.PausedBy)
				}
				if v, _ := metricValue(t, reg, "paygate_webhook_paused_until_timestamp_seconds", nil); v > float64(clk.Now().Unix()) {
					t.Errorf("paygate_webhook_paused_until_timestamp_seconds %v after the resume; want none later than now (%d)", v, clk.Now().Unix())
				}
				drain(t, r)
				// A and B go out side by side, in either order.
				if g := arrivals(); len(g) != 4 || !(g[2] == noA && g[3] == noB || g[2] == noB && g[3] == noA) {
					t.Errorf("arrivals %v; want %s, %s, then A's and B's at once (C not before its own retry)", g, noC, noA)
				}
			})
		}
	}
}

// TestResumeRefusesQuery: POST /admin/api/webhooks/resume takes no query
// parameter, as the admin API's other routes: a ?dry_run=1 ends nothing,
// for real or not.
func TestResumeRefusesQuery(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	r := newRelay(t, st, "http://127.0.0.1:1/hook", nil, nil)
	srv := httptest.NewServer(r.ResumeHandler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"?dry_run=1", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(b, []byte("dry_run")) {
		t.Errorf("resume with ?dry_run=1 answered %d %s; want a 400 naming it", resp.StatusCode, b)
	}
}

// TestResumeLogsTheOperator: an operator's end of the pause is logged
// with who asked and why (the admin request's payments.Actor, from its
// optional {"operator","reason"} body), as the pause it ends was logged;
// with no pause in force it answers so: paused_until null, nothing
// released.
func TestResumeLogsTheOperator(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	logs := &logtest.Buffer{}
	r := newRelay(t, st, "http://127.0.0.1:1/hook", nil, func(o *webhook.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	actor := &payments.Actor{Kind: payments.ActorAdmin, RequestID: "req_resume1", Operator: "ann", Reason: "CDN blip"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.ResumeHandler().ServeHTTP(w, req.WithContext(payments.WithActor(req.Context(), actor)))
	}))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"paused_until":null,"released":0}` {
		t.Errorf("resume with no pause: %d %s; want 200 {\"paused_until\":null,\"released\":0}", resp.StatusCode, b)
	}
	l := logs.String()
	for _, want := range []string{`"operator":"ann"`, `"reason":"CDN blip"`, `"request_id":"req_resume1"`, "ended by an operator"} {
		if !strings.Contains(l, want) {
			t.Errorf("log %s; want %s in it", l, want)
		}
	}
}

// holdGate is a relay's store that stops the first hold of key's event (a
// RetryEvent to later than after) before it is written, until proceed is
// closed, having said so on holding: what a worker that read the pause
// just before an operator ended it does meanwhile.
type holdGate struct {
	webhook.Store
	key     string
	after   func() time.Time
	holding chan struct{}
	proceed chan struct{}
	once    sync.Once
}

func (g *holdGate) RetryEvent(ctx context.Context, key, id string, nextAt time.Time, attempts int, lastErr string) error {
	if key == g.key && nextAt.After(g.after()) {
		g.once.Do(func() {
			close(g.holding)
			<-g.proceed
		})
	}
	return g.Store.RetryEvent(ctx, key, id, nextAt, attempts, lastErr)
}

// TestResumeWhileAnEventIsHeld: an operator ends the pause while a worker
// that read it (before the resume) is holding an event back. That event,
// leased then, is not the resume's to move; the hold, written after the
// resume, must not keep it waiting for the pause that was ended: it goes
// out at once, not an hour on.
func TestResumeWhileAnEventIsHeld(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			noA, noB := "PRWA"+driver, "PRWB"+driver
			var mu sync.Mutex
			var got []string
			merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				body, _ := io.ReadAll(req.Body)
				no := gjson.GetBytes(body, "data.order.order_no").Str
				mu.Lock()
				first := !slices.Contains(got, no)
				got = append(got, no)
				mu.Unlock()
				if no == noA && first {
					w.Header().Set("Retry-After", "3600")
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer merchant.Close()
			st := testdrivers.Open(t, driver, clk.Now)
			ob := orders{t, st}
			gate := &holdGate{Store: st, key: webhook.QueuePrefix + noB, after: func() time.Time { return clk.Now().Add(time.Minute) },
				holding: make(chan struct{}), proceed: make(chan struct{})}
			r := newRelay(t, st, merchant.URL, clk.Now, func(o *webhook.Options) {
				o.RetryBase, o.MaxDelay, o.RetryFor = 10*time.Minute, time.Hour, 24*time.Hour
				o.Store = gate
			})
			a := ob.create(noA, store.StatusAwaitingPayment)
			ob.move(a, store.StatusPaid, "notification")
			drain(t, r)
			b := ob.create(noB, store.StatusAwaitingPayment)
			ob.move(b, store.StatusPaid, "notification")
			done := make(chan struct{})
			go func() { defer close(done); drain(t, r) }()
			<-gate.holding
			res, err := r.Resume(t.Context())
			close(gate.proceed)
			<-done
			if err != nil || res.PausedUntil.IsZero() {
				t.Fatalf("Resume: %+v, %v; want the pause ended", res, err)
			}
			drain(t, r) // the clock has not moved: only what is due now
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 3 || got[0] != noA || !slices.Contains(got[1:], noA) || !slices.Contains(got[1:], noB) {
				h, _ := head(t, st, webhook.QueuePrefix+noB)
				t.Errorf("arrivals %v, B's next try in %s; want A's throttled POST, then A's and B's at once",
					got, h.NextAt.Sub(clk.Now()))
			}
		})
	}
}

// TestResumeLeavesALeasedEventToItsRelay: a replica whose clock is a few
// seconds behind the one sending an event ends the pause (or any replica
// reads the heads just after that one's claim): the event's next time, the
// claimer's lease's end, is later than a lease from the resumer's now,
// which reads as a pause's hold. It stays its claimer's: the resume does
// not make it due, and no second relay POSTs it while the first one's POST
// is in flight.
func TestResumeLeavesALeasedEventToItsRelay(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			no := "PRLL" + driver
			inflight, release := make(chan struct{}), make(chan struct{})
			var mu sync.Mutex
			posts := 0
			merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				_, _ = io.Copy(io.Discard, req.Body)
				mu.Lock()
				posts++
				first := posts == 1
				mu.Unlock()
				if first {
					close(inflight)
					<-release
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer merchant.Close()
			st := testdrivers.Open(t, driver, clk.Now)
			ob := orders{t, st}
			sender := newRelay(t, st, merchant.URL, clk.Now, nil)
			behind := newRelay(t, st, merchant.URL, func() time.Time { return clk.Now().Add(-5 * time.Second) },
				func(o *webhook.Options) { o.Registerer = prometheus.NewRegistry() })
			o := ob.create(no, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			sender.RunOnce(t.Context()) // moved to its delivery queue
			done := make(chan struct{})
			go func() { defer close(done); sender.RunOnce(t.Context()) }()
			<-inflight
			res, err := behind.Resume(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			behind.RunOnce(t.Context())
			close(release)
			<-done
			mu.Lock()
			defer mu.Unlock()
			if posts != 1 || res.Released != 0 {
				t.Errorf("POSTs of the order.paid %d, resume released %d; want 1 POST (its claimer's), nothing released", posts, res.Released)
			}
		})
	}
}
