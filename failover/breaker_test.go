package failover

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sony/gobreaker/v2"

	"github.com/paygate/paygate/config"
)

// TestFlappingPrimary runs a steady trickle of requests while the primary
// goes down and comes back: during the outage the fallback serves every
// request and the primary sees only the few attempts that open its breaker
// plus one probe per cool-down; after recovery traffic is back on the
// primary within a cool-down.
func TestFlappingPrimary(t *testing.T) {
	const (
		cooldown = 200 * time.Millisecond
		failures = 3
		tick     = 10 * time.Millisecond
		outage   = 700 * time.Millisecond
	)
	var down atomic.Bool
	primary := healthy("a")
	e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
		if down.Load() {
			c.status(500, errBody("server_error", "", "down"))
			return
		}
		primary(c, n)
	}}, []string{"a", "b"}, func(c *config.Config) {
		c.Failover.Breaker = config.Breaker{Failures: failures, Cooldown: config.Duration(cooldown)}
	})
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	request := func() answer {
		<-ticker.C
		got := e.open(t.Context(), true)
		if got.openErr != nil || !got.complete() {
			t.Fatalf("request failed: %v %v", got.openErr, got.end)
		}
		return got
	}

	for range 10 {
		if got := request(); got.provider != "a" {
			t.Fatalf("healthy primary: served by %s", got.provider)
		}
	}

	down.Store(true)
	before := len(e.fakes["a"].hits())
	outageEnd := time.Now().Add(outage)
	served := 0
	for time.Now().Before(outageEnd) {
		if got := request(); got.provider != "b" {
			t.Fatalf("during the outage: served by %s; want b", got.provider)
		}
		served++
	}
	aDuring := len(e.fakes["a"].hits()) - before
	maxA := failures + int(outage/cooldown) + 1
	if aDuring > maxA {
		t.Errorf("primary saw %d requests during a %v outage; want at most %d (breaker open)", aDuring, outage, maxA)
	}
	if st := statusOf(e.r, "a"); st.Breaker == "closed" {
		t.Errorf("primary breaker %s during the outage; want open or half-open", st.Breaker)
	}
	t.Logf("outage: %d requests served by b, primary saw %d", served, aDuring)

	down.Store(false)
	recovered := time.Now()
	// The loop gives up at the bound it asserts: giving up earlier (it
	// did at 5×cooldown, 1 s) failed a recovery that the bound accepts.
	limit := cooldown + 2*tick + slack
	var back time.Duration
	for {
		got := request()
		if got.provider == "a" {
			back = time.Since(recovered)
			break
		}
		if time.Since(recovered) > limit {
			t.Fatalf("primary not back %v after recovery; want within %v", time.Since(recovered), limit)
		}
	}
	t.Logf("back on the primary %v after recovery (cool-down %v)", back, cooldown)
	for range 10 {
		if got := request(); got.provider != "a" {
			t.Fatalf("after recovery: served by %s; want a", got.provider)
		}
	}
	if st := statusOf(e.r, "a"); st.Breaker != "closed" {
		t.Errorf("primary breaker %s after recovery; want closed", st.Breaker)
	}
}

// TestMetrics checks the collectors a scrape shows after a failover.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	fa := newFakeProvider(t, nil, always(statusFn(502, "")))
	fb := newFakeProvider(t, nil, healthy("b"))
	cfg := testConfig(map[string]string{"a": fa.url, "b": fb.url}, []string{"a", "b"})
	cfg.Failover.Breaker.Failures = 2
	r, err := New(cfg, Options{Registerer: reg, Sleep: newFakeClock().Sleep})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := resp.Next(); err != nil {
			break
		}
	}
	resp.Close()

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string, labels map[string]string) float64 {
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if matches(m, labels) {
					switch {
					case m.Counter != nil:
						return m.Counter.GetValue()
					case m.Gauge != nil:
						return m.Gauge.GetValue()
					case m.Histogram != nil:
						return float64(m.Histogram.GetSampleCount())
					}
				}
			}
		}
		return -1
	}
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"failed attempts on a", "paygate_upstream_attempts_total", map[string]string{"provider": "a", "outcome": CauseServerError}, 2},
		{"answer from b", "paygate_upstream_attempts_total", map[string]string{"provider": "b", "outcome": "ok"}, 1},
		{"one failover", "paygate_upstream_failovers_total", map[string]string{"model": "gpt", "provider": "a", "cause": CauseServerError}, 1},
		{"a's breaker open", "paygate_upstream_breaker_state", map[string]string{"provider": "a"}, 2},
		{"b's breaker closed", "paygate_upstream_breaker_state", map[string]string{"provider": "b"}, 0},
		{"time to first byte per response", "paygate_upstream_time_to_first_byte_seconds", map[string]string{"provider": "a"}, 2},
		{"time to first token of b", "paygate_upstream_time_to_first_token_seconds", map[string]string{"provider": "b"}, 1},
		{"b's stream complete", "paygate_upstream_stream_ends_total", map[string]string{"provider": "b", "outcome": "complete"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := get(tc.metric, tc.labels); got != tc.want {
				t.Errorf("%s%v = %v; want %v", tc.metric, tc.labels, got, tc.want)
			}
		})
	}
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

// TestBreakerOpensOnStreamsCutMidway: a provider that answers every stream's
// first token and then cuts it fails every request. Its breaker must open
// after breaker.failures such streams, as it does for errors before the
// first token; a success counted at each first token would reset the count
// before every cut.
func TestBreakerOpensOnStreamsCutMidway(t *testing.T) {
	const failures = 3
	e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
		c.sse()
		c.event(roleChunk())
		c.event(contentChunk("par"))
		c.cut()
	}}, []string{"a"}, func(c *config.Config) {
		c.Failover.Breaker = config.Breaker{Failures: failures, Cooldown: config.Duration(time.Hour)}
	})
	for i := range failures {
		got := e.open(t.Context(), true)
		if got.openErr != nil || got.complete() {
			t.Fatalf("stream %d: %v, complete %v; want a cut stream", i, got.openErr, got.complete())
		}
	}
	if st := statusOf(e.r, "a"); st.Breaker != "open" {
		t.Errorf("breaker after %d cut streams: %s; want open", failures, st.Breaker)
	}
	if got := e.open(t.Context(), true); got.openErr == nil {
		t.Errorf("a request with the breaker open reached the provider")
	}
	if n := len(e.fakes["a"].hits()); n != failures {
		t.Errorf("provider saw %d requests; want %d", n, failures)
	}
}

// TestReusedConnectionLostIsNotABreakerFailure: a provider that closes a
// kept-alive connection just as a request goes out on it (its idle timeout
// crossing paygate's checkout) fails that attempt before any byte of the
// answer. The attempt is retried on a new connection, and the breaker does
// not count it: such races at every quiet spell used to add up to an open
// breaker on a healthy provider. With breaker.failures 1, one counted
// failure would have opened it and sent the retry to b.
func TestReusedConnectionLostIsNotABreakerFailure(t *testing.T) {
	e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
		if n == 1 {
			c.cut() // the second request, on the kept-alive connection
			return
		}
		okJSON(c, "from a")
	}}, []string{"a", "b"}, func(c *config.Config) {
		c.Failover.Breaker = config.Breaker{Failures: 1, Cooldown: config.Duration(time.Hour)}
	})
	if got := e.open(t.Context(), false); got.openErr != nil || got.provider != "a" {
		t.Fatalf("first round: %q, %v", got.provider, got.openErr)
	}
	got := e.open(t.Context(), false)
	if got.openErr != nil || got.provider != "a" || got.attempts != 2 {
		t.Fatalf("second round: answered by %q after %d attempts (%v); want a after 2", got.provider, got.attempts, got.openErr)
	}
	if st := statusOf(e.r, "a"); st.Breaker != "closed" {
		t.Errorf("a's breaker %s; want closed", st.Breaker)
	}
}

// waitBreaker waits until name's breaker reads state. The breaker's
// cool-down runs on the wall clock (gobreaker reads it), so the move from
// open to half-open is not an event a test can wait on: it is polled.
func waitBreaker(t *testing.T, r *Router, name, state string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for statusOf(r, name).Breaker != state {
		if time.Now().After(deadline) {
			t.Fatalf("%s's breaker %s; want %s", name, statusOf(r, name).Breaker, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// breakerMoves lists the state changes of name's breaker from the log, as
// "from>to".
func breakerMoves(e *env, name string) []string {
	var moves []string
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if !strings.Contains(l, `msg="upstream breaker" provider=`+name+" ") {
			continue
		}
		_, from, _ := strings.Cut(l, " from=")
		from, to, _ := strings.Cut(from, " to=")
		moves = append(moves, from+">"+strings.Fields(to)[0])
	}
	return moves
}

// openThenProbe drives name's breaker open with a round of two 500s
// (breaker.failures 2) while down is set, clears down, waits for the
// cool-down, and opens the probe stream. Its callers' cool-down is 500ms,
// not less: the check that the round left the breaker open comes after the
// round, and on a loaded machine 50ms had passed by then (half-open).
func openThenProbe(t *testing.T, e *env, name string, down *atomic.Bool) *Response {
	t.Helper()
	_ = e.open(t.Context(), true) // two 500s: open
	if st := statusOf(e.r, name).Breaker; st != "open" {
		t.Fatalf("%s's breaker %s after two 500s; want open", name, st)
	}
	down.Store(false)
	waitBreaker(t, e.r, name, "half-open")
	probe, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true, ContentType: "application/json"})
	if err != nil || probe.Provider != name {
		t.Fatalf("probe: %v; want a stream from %s", err, name)
	}
	return probe
}

// readFlowing reads a probe stream's role chunk, first token and the
// event after it, at which the probe's success closes the breaker.
func readFlowing(t *testing.T, probe *Response) {
	t.Helper()
	for range 3 {
		if _, err := probe.Next(); err != nil {
			t.Fatalf("probe: %v", err)
		}
	}
}

// TestStreamProbeClosesBreakerOnceItFlows: once a provider's breaker has
// cooled down, one request probes it. When the probe is a stream, the
// breaker used to hear of it only when the stream ended, and until then
// every other request passed the recovered provider over ("skipped
// (breaker probe in flight)"): for the length of a long answer, the
// fallback served them, or a single-target model answered 503. The probe's
// event after its first token shows the provider answers: other rounds
// come back to it from then on. (Its first token alone does not:
// TestStalledStreamProbeLetsNoFloodThrough.)
func TestStreamProbeClosesBreakerOnceItFlows(t *testing.T) {
	for _, targets := range [][]string{{"a", "b"}, {"a"}} {
		t.Run(strings.Join(targets, ","), func(t *testing.T) {
			var down atomic.Bool
			down.Store(true)
			var up atomic.Int32
			e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
				switch {
				case down.Load():
					c.status(500, errBody("server_error", "", "down"))
				case up.Add(1) == 1:
					// The probe: a long answer, still being generated
					// until the client leaves.
					c.sse()
					c.event(roleChunk())
					c.event(contentChunk("a long answer"))
					c.event(contentChunk(" goes on"))
					c.hang()
				default:
					okStream(c, "from a")
				}
			}}, targets, func(c *config.Config) {
				c.Failover.Breaker = config.Breaker{Failures: 2, Cooldown: config.Duration(500 * time.Millisecond)}
			})
			probe := openThenProbe(t, e, "a", &down)
			defer probe.Close()
			readFlowing(t, probe)
			if st := statusOf(e.r, "a").Breaker; st != "closed" {
				t.Errorf("a's breaker %s once the probe's answer flows; want closed", st)
			}
			got := e.open(t.Context(), true)
			if got.openErr != nil || got.provider != "a" || !got.complete() {
				t.Fatalf("while the probe streams: answered by %q (err %v); want a complete answer from a", got.provider, got.openErr)
			}
		})
	}
}

// TestStreamProbeOutcome: a stream probe's success counts from its event
// after the first token, and its stream's end still counts. A probe whose
// stream breaks before that failed: the breaker opens again, as for a
// probe that fails before its first token; one that breaks after it
// failed after all and opens it again at once, so a provider that cuts
// every stream after a few tokens is never taken for healthy for longer
// than its probe's stream (and, closed, its breaker still opens after
// breaker.failures cut streams: TestBreakerOpensOnStreamsCutMidway). A
// probe that completes or that a content filter ends closes it; one the
// client leaves before it flows says nothing, and the next round probes.
func TestStreamProbeOutcome(t *testing.T) {
	tests := []struct {
		name      string
		flows     bool // a second token after the first
		end       func(c *fconn)
		wantMoves []string // the breaker's moves after open>half-open
	}{
		{"cut after the first token", false, (*fconn).cut, []string{"half-open>open"}},
		{"idle past the idle timeout", false, (*fconn).hang, []string{"half-open>open"}},
		{"an overload error event", false, func(c *fconn) { c.event(errBody("overloaded_error", "", "overloaded")); c.end() }, []string{"half-open>open"}},
		{"cut after a few tokens", true, (*fconn).cut, []string{"half-open>closed", "closed>open"}},
		{"idle after a few tokens", true, (*fconn).hang, []string{"half-open>closed", "closed>open"}},
		{"complete", false, func(c *fconn) { c.event(finishChunk()); c.done() }, []string{"half-open>closed"}},
		{"a content filter's error event", false, func(c *fconn) { c.event(errBody("", "content_filter", "filtered")); c.end() }, []string{"half-open>closed"}},
		{"the client leaves", false, nil, nil},
		{"the client leaves once it flows", true, nil, []string{"half-open>closed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var down atomic.Bool
			down.Store(true)
			e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
				if down.Load() {
					c.status(500, errBody("server_error", "", "down"))
					return
				}
				c.sse()
				c.event(roleChunk())
				c.event(contentChunk("par"))
				if tc.flows {
					c.event(contentChunk("tial"))
				}
				if tc.end == nil {
					c.hang()
					return
				}
				tc.end(c)
			}}, []string{"a"}, func(c *config.Config) {
				c.Failover.Breaker = config.Breaker{Failures: 2, Cooldown: config.Duration(500 * time.Millisecond)}
			})
			probe := openThenProbe(t, e, "a", &down)
			switch {
			case tc.end != nil:
				for {
					if _, err := probe.Next(); err != nil {
						break
					}
				}
			case tc.flows:
				readFlowing(t, probe)
			}
			probe.Close()
			want := append([]string{"closed>open", "open>half-open"}, tc.wantMoves...)
			if got := breakerMoves(e, "a"); !slices.Equal(got, want) {
				t.Errorf("breaker moves %v; want %v", got, want)
			}
		})
	}
}

// TestFailoverCountedWhenATargetIsSkipped: a round that leaves a target
// without asking it (its breaker open, its provider cooling down) moves on
// to the next target as much as one that left after a failed attempt, and
// is counted on paygate_upstream_failovers_total: the counter went flat
// during an outage just when all traffic had moved to the fallback.
func TestFailoverCountedWhenATargetIsSkipped(t *testing.T) {
	tests := []struct {
		name     string
		a        func(c *fconn, n int)
		failures int
		want     map[string]float64 // failovers from a by cause
	}{
		// The first failure opens the breaker: the retry a 502 earns is
		// refused by it, so even the first round leaves a unasked.
		{"breaker open", always(statusFn(502, "")), 1, map[string]float64{"breaker_open": 3}},
		{"cooling down", always(statusFn(429, errBody("rate_limit_error", "", "later"), "Retry-After: 600")), 5,
			map[string]float64{CauseRateLimited: 1, "cooling_down": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			fa := newFakeProvider(t, nil, tc.a)
			fb := newFakeProvider(t, nil, healthy("b"))
			cfg := testConfig(map[string]string{"a": fa.url, "b": fb.url}, []string{"a", "b"})
			cfg.Failover.Breaker.Failures = tc.failures
			r, err := New(cfg, Options{Registerer: reg, Sleep: newFakeClock().Sleep})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			const rounds = 3
			for range rounds {
				resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false)})
				if err != nil {
					t.Fatal(err)
				}
				if resp.Provider != "b" {
					t.Fatalf("answered by %q; want b", resp.Provider)
				}
				resp.Close()
			}
			if hits := len(fa.hits()); hits == 0 || hits >= rounds {
				t.Fatalf("a was asked %d times in %d rounds; want it asked in the first round only", hits, rounds)
			}
			if got := failovers(t, reg, "a"); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("failovers from a by cause: %v; want %v (every round left a for b)", got, tc.want)
			}
		})
	}
}

// TestGeminiRetryDelayCoolsDown: Gemini answers a rate limit with the wait
// in its body (google.rpc.RetryInfo's retryDelay) and no Retry-After. The
// provider cools down that long, as for a Retry-After, and rounds within it
// go to the next target: on paygate's own half-second back-off instead, a
// round a minute later asked it again, into the quota it had said was
// spent for ten minutes.
func TestGeminiRetryDelayCoolsDown(t *testing.T) {
	clock := newFakeClock()
	a := newFakeProvider(t, clock, always(statusFn(429, geminiRateLimited("600s"))))
	b := newFakeProvider(t, clock, healthy("b"))
	cfg := testConfig(map[string]string{"a": a.url, "b": b.url}, []string{"a", "b"})
	r, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, after := range []time.Duration{0, time.Minute, 8 * time.Minute} {
		if err := clock.Sleep(t.Context(), after); err != nil {
			t.Fatal(err)
		}
		resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if resp.Provider != "b" {
			t.Fatalf("round %d answered by %q; want b", i, resp.Provider)
		}
		resp.Close()
		if hits := len(a.hits()); hits != 1 {
			t.Fatalf("round %d: a asked %d times; want once, in the first round (it asked for 600s)", i, hits)
		}
	}
}

// openRouterDailyLimit is OpenRouter's 429 for a key's free-model
// requests of the day spent: no Retry-After, the limit's reset in the
// error's metadata.headers as X-RateLimit-Reset, Unix milliseconds.
func openRouterDailyLimit(reset time.Time, remaining string) string {
	return fmt.Sprintf(`{"error":{"message":"Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day","code":429,`+
		`"metadata":{"headers":{"X-RateLimit-Limit":"50","X-RateLimit-Remaining":%q,"X-RateLimit-Reset":"%d"},"provider_name":null}},"user_id":"user_1"}`,
		remaining, reset.UnixMilli())
}

// TestOpenRouterRateLimitResetCoolsDown: OpenRouter says when a spent
// rate limit resets only in its error body (metadata.headers'
// X-RateLimit-Reset). The provider cools down until then, as for a
// Retry-After, and rounds meanwhile go to the next target: on paygate's
// own back-off of seconds, every round asked it again, into a daily
// quota it had said was spent for hours.
func TestOpenRouterRateLimitResetCoolsDown(t *testing.T) {
	clock := newFakeClock()
	a := newFakeProvider(t, clock, always(statusFn(429, openRouterDailyLimit(clock.Now().Add(3*time.Hour), "0"))))
	b := newFakeProvider(t, clock, healthy("b"))
	cfg := testConfig(map[string]string{"a": a.url, "b": b.url}, []string{"a", "b"})
	r, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, after := range []time.Duration{0, time.Minute, 2 * time.Hour} {
		if err := clock.Sleep(t.Context(), after); err != nil {
			t.Fatal(err)
		}
		resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if resp.Provider != "b" {
			t.Fatalf("round %d answered by %q; want b", i, resp.Provider)
		}
		resp.Close()
		if hits := len(a.hits()); hits != 1 {
			t.Fatalf("round %d: a asked %d times; want once, in the first round (its limit resets in 3h)", i, hits)
		}
	}
}

// TestOpenRouterFreeModelLimitSparesItsOtherModels: OpenRouter's
// free-model limits (the X-RateLimit-Reset of its 429's metadata.headers)
// count its ":free" models' requests only: the target that met one cools
// down until the reset, its provider does not. Cooled down as a whole,
// the provider refused, for the hours to the daily reset, every bot's
// model it serves for pay, which OpenRouter would have answered.
func TestOpenRouterFreeModelLimitSparesItsOtherModels(t *testing.T) {
	clock := newFakeClock()
	reset := clock.Now().Add(3 * time.Hour)
	a := newFakeProvider(t, clock, func(c *fconn, _ int) {
		if strings.Contains(c.lastBody, `"up-free"`) {
			c.status(429, openRouterDailyLimit(reset, "0"))
			return
		}
		okJSON(c, "paid from a")
	})
	b := newFakeProvider(t, clock, healthy("b"))
	cfg := freeAndPaidConfig(a, b)
	r, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	open := func(model string) (*Response, error) {
		return r.Open(t.Context(), &Request{Model: model, Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
	}
	freeHits := func() int {
		n := 0
		for _, h := range a.hits() {
			if strings.Contains(h.body, `"up-free"`) {
				n++
			}
		}
		return n
	}
	for i, after := range []time.Duration{0, time.Minute} {
		if err := clock.Sleep(t.Context(), after); err != nil {
			t.Fatal(err)
		}
		resp, err := open("free")
		if err != nil {
			t.Fatalf("round %d, free: %v", i, err)
		}
		if resp.Provider != "b" {
			t.Errorf("round %d, free: answered by %q; want b", i, resp.Provider)
		}
		resp.Close()
		if hits := freeHits(); hits != 1 {
			t.Fatalf("round %d: a's free target asked %d times; want once, in the first round (its limit resets in 3h)", i, hits)
		}
		resp, err = open("paid")
		if err != nil {
			t.Fatalf("round %d, paid: %v; want a's answer (its free-model limit is not the paid model's)", i, err)
		}
		if resp.Provider != "a" {
			t.Errorf("round %d, paid: answered by %q; want a", i, resp.Provider)
		}
		resp.Close()
	}
	// The bot whose free model has nothing else is told to come back at
	// the reset, not in a second.
	cfg.Models[0].Targets = cfg.Models[0].Targets[:1]
	r2, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for i := range 2 {
		_, err := r2.Open(t.Context(), &Request{Model: "free", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
		var ue *UpstreamError
		if !errors.As(err, &ue) || ue.Status != http.StatusTooManyRequests || ue.RetryAfter < 2*time.Hour {
			t.Errorf("round %d, the free target alone: err %v; want a 429 with a Retry-After of hours", i, err)
		}
	}
	if hits := freeHits(); hits != 2 {
		t.Errorf("a's free target asked %d times; want 2: once by each router's first free round", hits)
	}
	// An operator's reset of the provider ends its targets' cool-downs too.
	if err := r2.ResetProvider("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Open(t.Context(), &Request{Model: "free", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"}); err == nil {
		t.Error("after the reset: answered; want a's 429 again")
	}
	if hits := freeHits(); hits != 3 {
		t.Errorf("after the reset: a's free target asked %d times; want 3 (asked again)", hits)
	}
}

// openRouterMinuteLimit is OpenRouter's 429 for the account's free-model
// requests of the minute spent, as it sends it: no Retry-After, the
// limit's reset in metadata.headers, Unix milliseconds, provider_name null.
func openRouterMinuteLimit(reset time.Time) string {
	return fmt.Sprintf(`{"error":{"message":"Rate limit exceeded: free-models-per-min. ","code":429,`+
		`"metadata":{"headers":{"X-RateLimit-Limit":"20","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"%d"},"provider_name":null}},"user_id":"user_1"}`,
		reset.UnixMilli())
}

// TestOpenRouterFreeLimitCoolsEveryFreeTarget: OpenRouter's free-model
// limits are the account's, every ":free" model's requests counted
// together (https://openrouter.ai/docs/guides/routing/model-variants/free):
// the 429 one ":free" target met cools each of the provider's ":free"
// targets, of every public model, until its reset, and none of its paid
// ones. Cooled alone, the target was followed by the provider's next
// ":free" target, refused for the same limit, in that round and in every
// round until the minute's reset.
func TestOpenRouterFreeLimitCoolsEveryFreeTarget(t *testing.T) {
	clock := newFakeClock()
	reset := clock.Now().Add(40 * time.Second)
	var limited atomic.Bool
	limited.Store(true)
	a := newFakeProvider(t, clock, func(c *fconn, _ int) {
		if limited.Load() && strings.Contains(c.lastBody, `:free"`) {
			c.status(429, openRouterMinuteLimit(reset))
			return
		}
		okJSON(c, "from a")
	})
	b := newFakeProvider(t, clock, healthy("b"))
	cfg := testConfig(map[string]string{"a": a.url, "b": b.url}, nil)
	cfg.Models = []config.Model{
		{Name: "chat", Strategy: "priority", Targets: []config.Target{
			{Provider: "a", Model: "vendor/one:free", Weight: 1}, {Provider: "a", Model: "vendor/two:free", Weight: 1}, {Provider: "b", Model: "up-b", Weight: 1}}},
		{Name: "other", Strategy: "priority", Targets: []config.Target{
			{Provider: "a", Model: "vendor/three:free", Weight: 1}, {Provider: "b", Model: "up-b", Weight: 1}}},
		{Name: "paid", Strategy: "priority", Targets: []config.Target{{Provider: "a", Model: "vendor/paid", Weight: 1}}},
	}
	r, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	open := func(model string) string {
		t.Helper()
		resp, err := r.Open(t.Context(), &Request{Model: model, Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		defer resp.Close()
		return resp.Provider
	}
	freeHits := func() int {
		n := 0
		for _, h := range a.hits() {
			if strings.Contains(h.body, `:free"`) {
				n++
			}
		}
		return n
	}
	if p := open("chat"); p != "b" {
		t.Errorf("chat answered by %q; want b", p)
	}
	if n := freeHits(); n != 1 {
		t.Fatalf("a's free targets asked %d times in the first round; want once: the account's free-model limit refuses the second as it did the first", n)
	}
	if p := open("other"); p != "b" || freeHits() != 1 {
		t.Errorf("other answered by %q, a's free targets asked %d times; want b and a's free targets left alone until the reset", p, freeHits())
	}
	if p := open("paid"); p != "a" {
		t.Errorf("paid answered by %q; want a: the free-model limit is not its paid models'", p)
	}
	if err := clock.Sleep(t.Context(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if p := open("chat"); p != "b" || freeHits() != 1 {
		t.Errorf("30 s later: chat answered by %q, a's free targets asked %d times; want b, a's left alone", p, freeHits())
	}
	limited.Store(false)
	if err := clock.Sleep(t.Context(), 11*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"chat", "other"} {
		if p := open(m); p != "a" {
			t.Errorf("after the reset: %s answered by %q; want a's free target again", m, p)
		}
	}
}

// openRouterDemandLimit is OpenRouter's 429 for one ":free" model in high
// demand, limited to a few requests a minute of its own, as it sends it:
// the same form as the account's free-model limits (metadata.headers,
// provider_name null), its words naming that model alone.
func openRouterDemandLimit(reset time.Time) string {
	return fmt.Sprintf(`{"error":{"message":"Rate limit exceeded: limit_rpm/vendor/one-0725/94248808-ba97-4e3c-be60-1cb0928db51d. `+
		`High demand for vendor/one:free on OpenRouter - limited to 8 requests per minute. Please retry shortly.","code":429,`+
		`"metadata":{"headers":{"X-RateLimit-Limit":"8","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"%d"},"provider_name":null}},"user_id":"user_1"}`,
		reset.UnixMilli())
}

// TestOpenRouterFreeModelDemandLimitCoolsThatTargetAlone: OpenRouter's
// limit on one ":free" model in high demand ("limit_rpm/…", "limited to 8
// requests per minute") is that model's, not the account's free-model
// limit: the target that met it cools down until its reset, and the
// provider's other ":free" targets, whose requests it does not count,
// keep answering. Taken for the account's limit, one busy free model put
// every other ":free" model of the provider out of every round.
func TestOpenRouterFreeModelDemandLimitCoolsThatTargetAlone(t *testing.T) {
	clock := newFakeClock()
	reset := clock.Now().Add(40 * time.Second)
	a := newFakeProvider(t, clock, func(c *fconn, _ int) {
		if strings.Contains(c.lastBody, `"vendor/one:free"`) {
			c.status(429, openRouterDemandLimit(reset))
			return
		}
		okJSON(c, "from a")
	})
	b := newFakeProvider(t, clock, healthy("b"))
	cfg := testConfig(map[string]string{"a": a.url, "b": b.url}, nil)
	cfg.Models = []config.Model{
		{Name: "chat", Strategy: "priority", Targets: []config.Target{
			{Provider: "a", Model: "vendor/one:free", Weight: 1}, {Provider: "a", Model: "vendor/two:free", Weight: 1}, {Provider: "b", Model: "up-b", Weight: 1}}},
		{Name: "other", Strategy: "priority", Targets: []config.Target{
			{Provider: "a", Model: "vendor/three:free", Weight: 1}, {Provider: "b", Model: "up-b", Weight: 1}}},
	}
	r, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	hits := func(model string) int {
		n := 0
		for _, h := range a.hits() {
			if strings.Contains(h.body, `"`+model+`"`) {
				n++
			}
		}
		return n
	}
	for i, m := range []string{"chat", "other", "chat"} {
		resp, err := r.Open(t.Context(), &Request{Model: m, Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
		if err != nil {
			t.Fatalf("round %d, %s: %v", i, m, err)
		}
		if resp.Provider != "a" {
			t.Errorf("round %d: %s answered by %q; want a's other free target: the limit is vendor/one:free's alone", i, m, resp.Provider)
		}
		resp.Close()
	}
	if n := hits("vendor/one:free"); n != 1 {
		t.Errorf("vendor/one:free asked %d times; want once: it cools down until its reset", n)
	}
	if n, m := hits("vendor/two:free"), hits("vendor/three:free"); n != 2 || m != 1 {
		t.Errorf("vendor/two:free asked %d times, vendor/three:free %d; want 2 and 1", n, m)
	}
}

// TestFreeModelLimitIsNotTheRetryAfterOfItsProvidersOtherTarget: a model
// served by an OpenRouter :free target with the same provider's paid
// model behind it. With the free target sitting out its daily limit, a
// round the paid target refuses with a short rate limit tells the bot to
// come back when the paid target takes requests again, not at the free
// limit's reset hours away: the provider's wait is that of the soonest of
// its targets, each its own cool-down or its provider's. A paid target
// that refused the conversation's length is no sooner: only the free
// target, at its reset, may take it.
func TestFreeModelLimitIsNotTheRetryAfterOfItsProvidersOtherTarget(t *testing.T) {
	for _, tc := range []struct {
		name   string
		paid   func(c *fconn)
		status int
		want   time.Duration
	}{
		{"the paid target rate limited", statusFn(429, `{"error":{"message":"Rate limit exceeded","code":429}}`, "Retry-After: 30"), http.StatusTooManyRequests, 30 * time.Second},
		{"the paid target refusing the length", statusFn(400, `{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`),
			http.StatusTooManyRequests, 3 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			reset := clock.Now().Add(3 * time.Hour)
			var paidRefuses atomic.Bool
			a := newFakeProvider(t, clock, func(c *fconn, _ int) {
				switch {
				case strings.Contains(c.lastBody, `"up-free"`):
					c.status(429, openRouterDailyLimit(reset, "0"))
				case paidRefuses.Load():
					tc.paid(c)
				default:
					okJSON(c, "paid from a")
				}
			})
			cfg := testConfig(map[string]string{"a": a.url}, nil)
			cfg.Models = []config.Model{{Name: "chat", Strategy: "priority", Targets: []config.Target{
				{Provider: "a", Model: "up-free", Weight: 1}, {Provider: "a", Model: "up-paid", Weight: 1}}}}
			r, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now, Sleep: clock.Sleep})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			open := func() (*Response, error) {
				return r.Open(t.Context(), &Request{Model: "chat", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
			}
			resp, err := open()
			if err != nil {
				t.Fatalf("first round: %v; want the paid target's answer", err)
			}
			resp.Close()
			paidRefuses.Store(true)
			_, err = open()
			var ue *UpstreamError
			if !errors.As(err, &ue) || ue.Status != tc.status {
				t.Fatalf("second round: err %v; want a %d", err, tc.status)
			}
			if ue.RetryAfter != tc.want {
				t.Errorf("second round: Retry-After %v; want %v (the free limit resets in 3h)", ue.RetryAfter, tc.want)
			}
		})
	}
}

// TestCoolingWaitedOutOnTheOnlyTargetIsNoFailover: a model with one
// target, which a round finds cooling down after a short Retry-After and
// waits out: the round is answered by the target it skipped, and no
// failover is counted, since no round went to another target.
func TestCoolingWaitedOutOnTheOnlyTargetIsNoFailover(t *testing.T) {
	clock := newFakeClock()
	reg := prometheus.NewRegistry()
	limited := statusFn(429, errBody("rate_limit_error", "rate_limit_exceeded", "slow down"), "Retry-After: 2")
	a := newFakeProvider(t, clock, failTimes(1, "a", limited))
	cfg := testConfig(map[string]string{"a": a.url}, []string{"a"})
	rounds := 0
	// Round 1's own wait passes no time (a's answer to its retry comes at
	// once); round 2's wait does.
	sleep := func(ctx context.Context, d time.Duration) error {
		if rounds == 1 {
			return nil
		}
		return clock.Sleep(ctx, d)
	}
	r, err := New(cfg, Options{Registerer: reg, Now: clock.Now, Sleep: sleep})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	open := func() string {
		rounds++
		resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Close()
		return resp.Provider
	}
	// Round 1: 429 Retry-After 2, waited out, a answers. a now cools down 2s.
	if p := open(); p != "a" {
		t.Fatalf("round 1 answered by %q", p)
	}
	// Round 2, started at once: a is cooling; skipped, waited out, a answers.
	if p := open(); p != "a" {
		t.Fatalf("round 2 answered by %q", p)
	}
	if got := failovers(t, reg, ""); len(got) != 0 {
		t.Errorf("failovers %v, though every round was answered by its only target a", got)
	}
}

// TestBothCoolingWaitedOutOnTheFirst: two targets, both cooling down when a
// round starts; the round skips both, waits out a's shorter cool-down, and a
// answers. A failover is counted from b, left for another target, and none
// from a, which the round came back to.
func TestBothCoolingWaitedOutOnTheFirst(t *testing.T) {
	clock := newFakeClock()
	reg := prometheus.NewRegistry()
	a := newFakeProvider(t, clock, healthy("a"))
	b := newFakeProvider(t, clock, healthy("b"))
	cfg := testConfig(map[string]string{"a": a.url, "b": b.url}, []string{"a", "b"})
	r, err := New(cfg, Options{Registerer: reg, Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, pr := range r.providers {
		d := time.Second
		if pr.name == "b" {
			d = 3 * time.Second
		}
		pr.coolDown(clock.Now().Add(d), coolReason{cause: CauseRateLimited})
	}
	resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Close()
	if resp.Provider != "a" {
		t.Fatalf("answered by %q; want a, once its cool-down was waited out", resp.Provider)
	}
	if got, want := failovers(t, reg, ""), map[string]float64{"b/cooling_down": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("failovers %v; want %v", got, want)
	}
}

// TestOnlyTargetWithBreakerOpenIsNoFailover: a model's only target, its
// breaker open, is skipped by every round, which then ends without an
// answer: nothing moved to another target, so no failover is counted.
func TestOnlyTargetWithBreakerOpenIsNoFailover(t *testing.T) {
	reg := prometheus.NewRegistry()
	fa := newFakeProvider(t, nil, always(statusFn(502, "")))
	cfg := testConfig(map[string]string{"a": fa.url}, []string{"a"})
	cfg.Failover.Breaker.Failures = 1
	r, err := New(cfg, Options{Registerer: reg, Sleep: newFakeClock().Sleep})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for range 3 {
		if resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false)}); err == nil {
			resp.Close()
			t.Fatal("answered; want every round to fail on a 502 and then an open breaker")
		}
	}
	if got := failovers(t, reg, ""); len(got) != 0 {
		t.Errorf("failovers %v; want none: the model has one target", got)
	}
}

// failovers reads paygate_upstream_failovers_total of model gpt: by cause
// for provider, or, with provider "", by "provider/cause".
func failovers(t *testing.T, reg *prometheus.Registry, provider string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "paygate_upstream_failovers_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			switch {
			case l["model"] != "gpt":
			case provider == "":
				got[l["provider"]+"/"+l["cause"]] = m.Counter.GetValue()
			case l["provider"] == provider:
				got[l["cause"]] = m.Counter.GetValue()
			}
		}
	}
	return got
}

// TestCooledDownFallbackCountsAsAskable: a fallback whose breaker's
// cool-down has passed while no round asked it still read "open" (the
// state mirror moves only when the breaker is asked), and the round
// counted it out: a silent primary's non-stream attempt waited
// timeouts.total instead of its share of the round, and a failing
// primary was retried with the round's last attempt instead of the
// recovered fallback being probed (a 502). Once its open period is over
// the fallback counts as a target the round can ask.
func TestCooledDownFallbackCountsAsAskable(t *testing.T) {
	t.Parallel()
	const cooldown = 50 * time.Millisecond
	tests := []struct {
		name   string
		a      func(c *fconn, n int)
		mutate func(c *config.Config)
		check  func(t *testing.T, e *env, got answer)
	}{
		{
			name: "a silent primary waits its share of the round",
			a: func(c *fconn, n int) {
				c.hang()
			},
			mutate: func(c *config.Config) { c.Failover.MaxRoundTime = config.Duration(2 * roundShare) },
			check: func(t *testing.T, e *env, got answer) {
				// Its share: the round's time / 2 targets (roundShare).
				// Counted out, b left a waiting timeouts.total (5s).
				if got.took > tTotal/2 {
					t.Errorf("the round took %v; want about %v, a's share of the %v round", got.took, roundShare, 2*roundShare)
				}
			},
		},
		{
			name: "a failing primary leaves the last attempt to the fallback",
			a:    always(statusFn(500, errBody("server_error", "", "boom"))),
			mutate: func(c *config.Config) {
				c.Failover.MaxAttempts = 2
			},
			check: func(t *testing.T, e *env, got answer) {
				if n := len(e.fakes["a"].hits()); n != 1 {
					t.Errorf("a saw %d requests; want 1, the other attempt b's probe", n)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var bDown atomic.Bool
			bDown.Store(true)
			e := newEnv(t, map[string]func(*fconn, int){
				"a": tc.a,
				"b": func(c *fconn, n int) {
					if bDown.Load() {
						c.status(500, errBody("server_error", "", "down"))
						return
					}
					okJSON(c, "from b")
				},
			}, []string{"a", "b"}, func(c *config.Config) {
				c.Failover.Breaker = config.Breaker{Failures: 2, Cooldown: config.Duration(cooldown)}
				// A model served by b alone opens b's breaker.
				c.Models = append(c.Models, config.Model{Name: "only-b", Strategy: "priority",
					Targets: []config.Target{{Provider: "b", Model: "up-b", Weight: 1}}})
				tc.mutate(c)
			})
			if got := e.openReq(t.Context(), &Request{Model: "only-b", Method: "POST", Path: "/chat/completions",
				Body: chatBody(false), ContentType: "application/json"}); got.openErr == nil {
				t.Fatal("b answered while down")
			}
			bDown.Store(false)
			b := e.r.providers[slices.IndexFunc(e.r.providers, func(p *provider) bool { return p.name == "b" })]
			// The open period passes on the wall clock (gobreaker's);
			// polled without asking the breaker, which would move it.
			deadline := time.Now().Add(5 * time.Second)
			for b.breakerLeft() > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("b's breaker still open after 5s (cool-down %v)", cooldown)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if st := gobreaker.State(b.state.Load()); st != gobreaker.StateOpen {
				t.Fatalf("b's breaker reads %s; want open still, no one having asked it", st)
			}
			got := e.open(t.Context(), false)
			if got.openErr != nil || got.provider != "b" {
				t.Fatalf("answered by %q (%v); want b, its cool-down over", got.provider, got.openErr)
			}
			tc.check(t, e, got)
		})
	}
}

// TestLastTargetFailingIsNoFailover: a round whose last target fails after
// its retry has no target to move to: it ends with the error, and no
// failover is counted from that target. Every such round counted one, so a
// single-provider model's outage read as failovers that never happened
// (and with two targets down, two moves per round where one was made), as
// a last target skipped is not counted (countSkips).
func TestLastTargetFailingIsNoFailover(t *testing.T) {
	tests := []struct {
		name     string
		targets  []string
		attempts int                // failover.max_attempts; 0: testConfig's
		want     map[string]float64 // "provider/cause"
	}{
		{"the only target", []string{"a"}, 0, map[string]float64{}},
		{"both targets", []string{"a", "b"}, 0, map[string]float64{"a/" + CauseServerError: 1}},
		// The attempts spent on a and b, c is never asked: b's failure
		// is the round's last, as a last target's is.
		{"max_attempts spent before the last target", []string{"a", "b", "c"}, 2, map[string]float64{"a/" + CauseServerError: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			urls := map[string]string{}
			for _, name := range tc.targets {
				urls[name] = newFakeProvider(t, nil, always(statusFn(500, ""))).url
			}
			cfg := testConfig(urls, tc.targets)
			if tc.attempts > 0 {
				cfg.Failover.MaxAttempts = tc.attempts
			}
			r, err := New(cfg, Options{Registerer: reg, Sleep: newFakeClock().Sleep})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false)}); err == nil {
				resp.Close()
				t.Fatal("answered; want the round to fail on 500s")
			}
			if got := failovers(t, reg, ""); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("failovers %v; want %v", got, tc.want)
			}
		})
	}
}

// TestInStreamErrorsCountAsBeforeTheFirstByte: an error event inside a 200
// stream that says the request was too long for the model, the model is
// not the key's, or the key is refused is held against the provider's
// breaker as the same error before the first byte is: not at all (a
// healthy provider; a target's model; words that may be the bot's own).
// Counted as failures, a provider that answered every other bot was shut
// out for the breaker's cool-down by a few long conversations.
func TestInStreamErrorsCountAsBeforeTheFirstByte(t *testing.T) {
	const failures = 3
	for _, tc := range []struct{ name, ev, class string }{
		{"context length", errBody("invalid_request_error", "context_length_exceeded", "This model's maximum context length is 8192 tokens"), CauseContextLength},
		{"model not found", errBody("invalid_request_error", "model_not_found", "The model `gpt-x` does not exist"), CauseModelNotFound},
		{"key refused", errBody("invalid_request_error", "invalid_api_key", "Incorrect API key provided"), CauseMisconfigured},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
				c.sse()
				c.event(roleChunk())
				c.event(contentChunk("par"))
				c.event(tc.ev)
				c.done()
			}}, []string{"a"}, func(c *config.Config) {
				c.Failover.Breaker = config.Breaker{Failures: failures, Cooldown: config.Duration(time.Hour)}
			})
			for i := range failures + 1 {
				got := e.open(t.Context(), true)
				if got.openErr != nil {
					t.Fatalf("stream %d: %v; want it opened", i, got.openErr)
				}
				var se *StreamError
				if !errors.As(got.end, &se) || se.Class != tc.class {
					t.Fatalf("stream %d ended %v; want a stream error of class %s", i, got.end, tc.class)
				}
			}
			if st := statusOf(e.r, "a"); st.Breaker != "closed" {
				t.Errorf("breaker after %d such streams: %s; want closed", failures+1, st.Breaker)
			}
		})
	}
}
