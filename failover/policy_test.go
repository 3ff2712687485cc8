package failover

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// failTimes answers with fail for the first n requests, then healthy.
func failTimes(n int, name string, fail func(c *fconn)) func(c *fconn, i int) {
	h := healthy(name)
	return func(c *fconn, i int) {
		if i < n {
			fail(c)
			return
		}
		h(c, i)
	}
}

func always(fail func(c *fconn)) func(c *fconn, i int) {
	return func(c *fconn, _ int) { fail(c) }
}

func statusFn(code int, body string, extra ...string) func(c *fconn) {
	return func(c *fconn) { c.status(code, body, extra...) }
}

func firstEvent(data string) func(c *fconn) {
	return func(c *fconn) {
		c.sse()
		c.event(data)
		c.done()
	}
}

// T0 is the fake clock's start; a Retry-After date three seconds later.
var retryAfterDate = newFakeClock().Now().Add(3 * time.Second).Format(http.TimeFormat)

// TestPolicyBeforeFirstByte has one case per cause (and per non-cause) of
// SPEC 5, failing before any byte reached the caller. Each asserts what the
// caller got and what each provider saw: how many attempts, how far apart
// on the Router's clock.
func TestPolicyBeforeFirstByte(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	tests := []struct {
		name      string
		a, b      func(c *fconn, n int)
		nonStream bool
		mutate    func(*config.Config)

		wantFrom   string // provider that answered; "" when Open fails
		wantStatus int    // UpstreamError.Status
		wantCode   string // UpstreamError.Code
		wantMsg    []string
		wantHits   [2]int // requests a and b saw
		wantGapsA  []time.Duration
		maxTook    time.Duration // real time bound of the round, 0: none
		minTook    time.Duration
		after      func(t *testing.T, e *env)
	}{
		{
			name: "healthy primary answers at once", wantFrom: "a", wantHits: [2]int{1, 0},
		},
		{
			name: "healthy primary non-stream", nonStream: true, wantFrom: "a", wantHits: [2]int{1, 0},
		},
		{
			name: "reset before headers, same target retried at once",
			a:    failTimes(1, "a", (*fconn).reset), wantFrom: "a", wantHits: [2]int{2, 0}, wantGapsA: []time.Duration{0},
		},
		{
			name: "reset before headers twice, next target",
			a:    always((*fconn).reset), wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{0},
		},
		{
			name:     "500 once, same target after a jittered pause",
			a:        failTimes(1, "a", statusFn(500, errBody("server_error", "", "boom"))),
			wantFrom: "a", wantHits: [2]int{2, 0}, wantGapsA: []time.Duration{250 * ms},
		},
		{
			name: "502 twice, next target", a: always(statusFn(502, "bad gateway")),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{250 * ms},
		},
		{
			name: "504 twice, next target", a: always(statusFn(504, "")),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{250 * ms},
		},
		{
			name:     "429 Retry-After 2 seconds, waited out on the same target",
			a:        failTimes(1, "a", statusFn(429, errBody("rate_limit_error", "rate_limit_exceeded", "slow down"), "Retry-After: 2")),
			wantFrom: "a", wantHits: [2]int{2, 0}, wantGapsA: []time.Duration{2 * time.Second},
		},
		{
			name:     "503 Retry-After as an HTTP date",
			a:        failTimes(1, "a", statusFn(503, "", "Retry-After: "+retryAfterDate)),
			wantFrom: "a", wantHits: [2]int{2, 0}, wantGapsA: []time.Duration{3 * time.Second},
		},
		{
			name:     "429 Retry-After 60 seconds: cool-down and next target",
			a:        failTimes(1, "a", statusFn(429, errBody("rate_limit_error", "", "later"), "Retry-After: 60")),
			wantFrom: "b", wantHits: [2]int{1, 1},
			after: func(t *testing.T, e *env) {
				if got := e.open(t.Context(), true); got.provider != "b" || len(e.fakes["a"].hits()) != 1 {
					t.Errorf("during the cool-down: served by %q, a saw %d; want b and a untouched", got.provider, len(e.fakes["a"].hits()))
				}
				e.clock.Advance(61 * time.Second)
				if got := e.open(t.Context(), true); got.provider != "a" {
					t.Errorf("after the cool-down: served by %q; want a", got.provider)
				}
			},
		},
		{
			name:     "429 retry-after-ms (OpenAI's) waited out on the same target",
			a:        failTimes(1, "a", statusFn(429, errBody("requests", "rate_limit_exceeded", "slow down"), "retry-after-ms: 1500")),
			wantFrom: "a", wantHits: [2]int{2, 0}, wantGapsA: []time.Duration{1500 * ms},
		},
		{
			name:     "503 fractional Retry-After 1.5 seconds",
			a:        failTimes(1, "a", statusFn(503, "", "Retry-After: 1.5")),
			wantFrom: "a", wantHits: [2]int{2, 0}, wantGapsA: []time.Duration{1500 * ms},
		},
		{
			name:     "503 Retry-After as a date already past: retried at once",
			a:        failTimes(1, "a", statusFn(503, "", "Retry-After: "+newFakeClock().Now().Add(-time.Hour).Format(http.TimeFormat))),
			wantFrom: "a", wantHits: [2]int{2, 0}, wantGapsA: []time.Duration{0},
		},
		{
			name: "503 malformed or negative Retry-After: as without one",
			a:    always(statusFn(503, "", "Retry-After: -5")), wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{500 * ms},
		},
		{
			// Retry-After is read on 429, 503 and 529 only (SPEC 5): a
			// 500 keeps its own policy, and the provider no cool-down.
			name:     "500 with Retry-After 30: the 500 policy",
			a:        failTimes(1, "a", statusFn(500, errBody("server_error", "", "boom"), "Retry-After: 30")),
			wantFrom: "a", wantHits: [2]int{2, 0}, wantGapsA: []time.Duration{250 * ms},
			after: func(t *testing.T, e *env) {
				if st := statusOf(e.r, "a"); !st.CoolingUntil.IsZero() {
					t.Errorf("a cooling until %v (%s) after a 500 with Retry-After; want no cool-down", st.CoolingUntil, st.CoolingCause)
				}
			},
		},
		{
			name: "503 without Retry-After: jittered back-off then next target",
			a:    always(statusFn(503, "overloaded")), wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{500 * ms},
		},
		{
			name: "529 without Retry-After: back-off then next target",
			a:    always(statusFn(529, errBody("overloaded_error", "", "overloaded"))), wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{500 * ms},
		},
		{
			// Groq's flex tier at capacity (service_tier "flex"): an
			// overload, documented as one to try again later
			// (https://console.groq.com/docs/flex-processing). Taken for
			// the bot's bad request, it ended the round with b unasked.
			name: "498 Groq flex capacity exceeded: back-off then next target",
			a:    always(statusFn(498, groqFlexFull)), wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{500 * ms},
		},
		{
			name: "429 without Retry-After: the next round leaves the provider alone",
			a:    always(statusFn(429, errBody("rate_limit_error", "", "slow"))), wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{500 * ms},
			after: func(t *testing.T, e *env) {
				if got := e.open(t.Context(), true); got.provider != "b" || len(e.fakes["a"].hits()) != 2 {
					t.Errorf("next round: served by %q, a saw %d; want b, a still 2", got.provider, len(e.fakes["a"].hits()))
				}
			},
		},
		{
			name:     "429 insufficient_quota: out of service, next target at once",
			a:        always(statusFn(429, errBody("insufficient_quota", "insufficient_quota", "You exceeded your current quota"))),
			wantFrom: "b", wantHits: [2]int{1, 1},
			after: func(t *testing.T, e *env) {
				e.clock.Advance(10 * time.Minute)
				if got := e.open(t.Context(), true); got.provider != "b" || len(e.fakes["a"].hits()) != 1 {
					t.Errorf("10 minutes later: served by %q, a saw %d; want b, a untouched", got.provider, len(e.fakes["a"].hits()))
				}
				st := statusOf(e.r, "a")
				if st.CoolingCause != CauseInsufficientQuota {
					t.Errorf("a cooling cause %q; want %q", st.CoolingCause, CauseInsufficientQuota)
				}
				if err := e.r.ResetProvider("a"); err != nil {
					t.Fatal(err)
				}
				if got := e.open(t.Context(), true); len(e.fakes["a"].hits()) != 2 || got.provider != "b" {
					t.Errorf("after reset: a saw %d, served by %q; want a tried again (and failing over)", len(e.fakes["a"].hits()), got.provider)
				}
			},
		},
		{
			name:     "402 out of credits: out of service, next target at once",
			a:        always(statusFn(402, `{"error":{"code":402,"message":"Insufficient credits"}}`)),
			wantFrom: "b", wantHits: [2]int{1, 1},
			after: func(t *testing.T, e *env) {
				if st := statusOf(e.r, "a"); st.CoolingCause != CauseInsufficientQuota {
					t.Errorf("a cooling cause %q; want %q", st.CoolingCause, CauseInsufficientQuota)
				}
			},
		},
		{
			name: "silent socket: next target once first_byte passed, no retry",
			a:    always((*fconn).hang), wantFrom: "b", wantHits: [2]int{1, 1},
			minTook: tFirstByte, maxTook: tFirstByte + slack,
		},
		{
			name: "first token after a long delay: next target, the held role chunk is not delivered",
			a: always(func(c *fconn) {
				c.sse()
				c.event(roleChunk())
				c.comment("OPENROUTER PROCESSING")
				c.pause(10 * tFirstToken)
				c.event(contentChunk("too late"))
				c.done()
			}),
			wantFrom: "b", wantHits: [2]int{1, 1}, minTook: tFirstToken, maxTook: tFirstToken + slack,
		},
		{
			name: "reasoning_content counts as the first token",
			a: always(func(c *fconn) {
				c.sse()
				c.event(roleChunk())
				c.event(reasoningChunk("thinking "))
				c.pause(tFirstToken + 100*ms)
				c.event(contentChunk("from a"))
				c.event(finishChunk())
				c.done()
			}),
			mutate:   func(c *config.Config) { c.Providers[0].Timeouts.Idle = config.Duration(2 * time.Second) },
			wantFrom: "a", wantHits: [2]int{1, 0},
		},
		{
			name:     "first event an error object with a rate-limit code: as 429",
			a:        always(firstEvent(errBody("rate_limit_error", "rate_limit_exceeded", "slow"))),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{500 * ms},
		},
		{
			// DashScope's (Qwen's) throttle code, and Volcengine Ark's
			// (Doubao's) code and type: rate limits by their words, not
			// errors of unknown kind retried as a 500.
			name:     "first event an error object with DashScope's Throttling.RateQuota: as 429",
			a:        always(firstEvent(`{"error":{"code":"Throttling.RateQuota","message":"Requests rate limit exceeded, please try again later.","type":"Throttling.RateQuota"}}`)),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{500 * ms},
		},
		{
			name:     "first event an error object with Ark's RateLimitExceeded, TooManyRequests: as 429",
			a:        always(firstEvent(`{"error":{"code":"RateLimitExceeded.EndpointRPMExceeded","message":"The request has exceeded the RPM limit of the endpoint.","param":"","type":"TooManyRequests"}}`)),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{500 * ms},
		},
		{
			name:     "first event an error object with no known code: as 500",
			a:        always(firstEvent(`{"error":{"message":"something odd"}}`)),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{250 * ms},
		},
		{
			name:     "first event an OpenRouter error with numeric code 502",
			a:        always(firstEvent(`{"error":{"code":502,"message":"Provider returned error"}}`)),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{250 * ms},
		},
		{
			name:     "first event an error object for context length: next target",
			a:        always(firstEvent(errBody("invalid_request_error", "context_length_exceeded", "too long"))),
			wantFrom: "b", wantHits: [2]int{1, 1},
		},
		{
			name:     "[DONE] before any token: as a server error",
			a:        always(func(c *fconn) { c.sse(); c.event(roleChunk()); c.done() }),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{250 * ms},
		},
		{
			name:     "clean end after the role chunk, before any token: as a lost connection",
			a:        always(func(c *fconn) { c.sse(); c.event(roleChunk()); c.end() }),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{250 * ms},
		},
		{
			name: "one malformed event before the first token is skipped",
			a: always(func(c *fconn) {
				c.sse()
				c.event(roleChunk())
				c.event(`{"choices":[{"delta":{"content":"tru`)
				c.event(contentChunk("from a"))
				c.event(finishChunk())
				c.done()
			}),
			wantFrom: "a", wantHits: [2]int{1, 0},
		},
		{
			name:     "400 context_length_exceeded: never the same target, next target",
			a:        always(statusFn(400, errBody("invalid_request_error", "context_length_exceeded", "maximum context length is 8192 tokens"))),
			wantFrom: "b", wantHits: [2]int{1, 1},
		},
		{
			name:       "400 context length on every target: the provider's 400 reaches the client",
			a:          always(statusFn(400, errBody("invalid_request_error", "context_length_exceeded", "a: context is 8192 tokens"))),
			b:          always(statusFn(400, errBody("invalid_request_error", "context_length_exceeded", "b: context is 16384 tokens"))),
			wantStatus: 400, wantCode: "context_length_exceeded", wantMsg: []string{"b: context is 16384 tokens"}, wantHits: [2]int{1, 1},
		},
		{
			name:       "400 content filter: no retry anywhere, the reason reaches the client",
			a:          always(statusFn(400, errBody("invalid_request_error", "content_filter", "The response was filtered"))),
			wantStatus: 400, wantCode: "content_filter", wantMsg: []string{"The response was filtered"}, wantHits: [2]int{1, 0},
		},
		{
			name:       "422 unknown field: no retry anywhere",
			a:          always(statusFn(422, `{"detail":"extra fields not permitted"}`)),
			wantStatus: 422, wantHits: [2]int{1, 0},
		},
		{
			name:     "401: provider misconfigured, next target, later rounds skip it",
			a:        always(statusFn(401, errBody("invalid_request_error", "invalid_api_key", "Incorrect API key"))),
			wantFrom: "b", wantHits: [2]int{1, 1},
			after: func(t *testing.T, e *env) {
				if got := e.open(t.Context(), true); got.provider != "b" || len(e.fakes["a"].hits()) != 1 {
					t.Errorf("next round: served by %q, a saw %d; want b, a untouched", got.provider, len(e.fakes["a"].hits()))
				}
				if st := statusOf(e.r, "a"); st.CoolingCause != CauseMisconfigured {
					t.Errorf("a cooling cause %q; want %q", st.CoolingCause, CauseMisconfigured)
				}
			},
		},
		{
			name: "403: misconfigured, next target", a: always(statusFn(403, errBody("permission_error", "", "forbidden"))),
			wantFrom: "b", wantHits: [2]int{1, 1},
		},
		{
			name:     "404 model: next target",
			a:        always(statusFn(404, errBody("invalid_request_error", "model_not_found", "The model up-a does not exist"))),
			wantFrom: "b", wantHits: [2]int{1, 1},
		},
		{
			// A wrong upstream model name (a typo, a retired slug) in the
			// 400 that OpenAI-compatible servers send for it.
			name:     "400 model_not_found: next target",
			a:        always(statusFn(400, errBody("invalid_request_error", "model_not_found", "The model `up-a` does not exist or you do not have access to it."))),
			wantFrom: "b", wantHits: [2]int{1, 1},
		},
		{
			name:     "400 Model Not Exist without a code (DeepSeek): next target",
			a:        always(statusFn(400, `{"error":{"message":"Model Not Exist","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`)),
			wantFrom: "b", wantHits: [2]int{1, 1},
		},
		{
			name: "non-stream 200 carrying an error object: as its code", nonStream: true,
			a:        always(statusFn(200, `{"error":{"code":502,"message":"upstream failed"}}`)),
			wantFrom: "b", wantHits: [2]int{2, 1}, wantGapsA: []time.Duration{250 * ms},
		},
		{
			name:       "every target fails: 502 naming each provider and cause",
			a:          always(statusFn(500, "")),
			b:          always(statusFn(502, "")),
			wantStatus: 502, wantCode: CauseServerError,
			wantMsg:  []string{"a: upstream_server_error (HTTP 500) x2", "b: upstream_server_error (HTTP 502) x2"},
			wantHits: [2]int{2, 2}, wantGapsA: []time.Duration{250 * ms},
		},
		{
			name:       "every target silent: 504",
			a:          always((*fconn).hang),
			b:          always((*fconn).hang),
			wantStatus: 504, wantCode: CauseFirstByteTimeout, wantHits: [2]int{1, 1},
			minTook: 2 * tFirstByte, maxTook: 2*tFirstByte + slack,
		},
		{
			name:       "rate limited everywhere: 429 with the provider's Retry-After",
			a:          always(statusFn(429, "", "Retry-After: 30")),
			b:          always(statusFn(429, "", "Retry-After: 20")),
			wantStatus: 429, wantCode: CodeRateLimitExceeded, wantHits: [2]int{1, 1},
			after: func(t *testing.T, e *env) {
				got := e.open(t.Context(), true)
				var ue *UpstreamError
				// Still the rate limit the round before answered with a
				// 429: a 429 again, not a 503 (TestRateLimitStaysA429WhileCoolingDown).
				if !errors.As(got.openErr, &ue) || ue.Status != 429 || ue.Code != CodeRateLimitExceeded || ue.Attempts != 0 || ue.RetryAfter != 20*time.Second {
					t.Errorf("while both cool down: got %v; want 429 without attempts, RetryAfter 20s", got.openErr)
				}
			},
		},
		{
			name:     "short Retry-After that does not fit the round: cool-down, next target",
			a:        always(statusFn(429, "", "Retry-After: 4")),
			mutate:   func(c *config.Config) { c.Failover.MaxRoundTime = config.Duration(3 * time.Second) },
			wantFrom: "b", wantHits: [2]int{1, 1},
		},
		{
			name:       "round time bounds a silent provider",
			a:          always((*fconn).hang),
			mutate:     func(c *config.Config) { c.Failover.MaxRoundTime = config.Duration(150 * time.Millisecond) },
			wantStatus: 504, wantCode: CauseRoundTime, wantHits: [2]int{1, 0},
			minTook: 150 * ms, maxTook: 150*ms + slack,
		},
		{
			// The round's deadline rides on the attempt's timer: it must also cut
			// a body read whose idle allowance reaches past it.
			name: "round time bounds an answer whose body stalls",
			a: always(func(c *fconn) {
				_, _ = io.WriteString(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
				c.hang()
			}),
			mutate: func(c *config.Config) {
				c.Failover.MaxRoundTime = config.Duration(150 * time.Millisecond)
				c.Providers[0].Timeouts.Idle = config.Duration(2 * time.Second)
			},
			wantStatus: 504, wantCode: CauseRoundTime, wantHits: [2]int{1, 0},
			minTook: 150 * ms, maxTook: 150*ms + slack,
		},
		{
			// Until an answer streams, the total timeout rides on the phase
			// timer too: a body that trickles within its idle allowance must
			// still end at the total, and the next target answers. (Let
			// through, the 100 spaces would end as a's answer after 2 s.)
			name: "total timeout bounds an answer whose body trickles",
			a: always(func(c *fconn) {
				_, _ = io.WriteString(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
				for i := 0; i < 100 && !c.dead; i++ {
					_, _ = io.WriteString(c.c, " ")
					c.pause(20 * time.Millisecond)
				}
			}),
			mutate: func(c *config.Config) {
				c.Providers[0].Timeouts.Total = config.Duration(150 * time.Millisecond)
				c.Providers[0].Timeouts.Idle = config.Duration(2 * time.Second)
			},
			nonStream: true,
			wantFrom:  "b", wantHits: [2]int{1, 1},
			minTook: 150 * ms, maxTook: 150*ms + slack,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a, "b": tc.b}, []string{"a", "b"}, tc.mutate)
			got := e.open(t.Context(), !tc.nonStream)

			if tc.wantFrom != "" {
				if got.openErr != nil {
					t.Fatalf("Open: %v; want an answer from %s", got.openErr, tc.wantFrom)
				}
				if got.provider != tc.wantFrom {
					t.Errorf("answered by %q; want %q", got.provider, tc.wantFrom)
				}
				want := "from " + tc.wantFrom
				if tc.nonStream {
					if !strings.Contains(got.body, want) {
						t.Errorf("body %q; want it to contain %q", got.body, want)
					}
				} else {
					if !got.complete() {
						t.Errorf("stream ended with %v; want complete", got.end)
					}
					if !strings.HasSuffix(got.text, want) {
						t.Errorf("text %q; want it to end with %q", got.text, want)
					}
					if got.events[0] != roleChunk() {
						t.Errorf("first event %s; want the role chunk", got.events[0])
					}
				}
				if n := tc.wantHits[0] + tc.wantHits[1]; got.attempts != n {
					t.Errorf("Attempts %d; want %d", got.attempts, n)
				}
			} else {
				var ue *UpstreamError
				if !errors.As(got.openErr, &ue) {
					t.Fatalf("Open error %v; want *UpstreamError", got.openErr)
				}
				if ue.Status != tc.wantStatus || (tc.wantCode != "" && ue.Code != tc.wantCode) {
					t.Errorf("got %d %q; want %d %q (%s)", ue.Status, ue.Code, tc.wantStatus, tc.wantCode, ue.Message)
				}
				for _, m := range tc.wantMsg {
					if !strings.Contains(ue.Message, m) {
						t.Errorf("message %q; want it to contain %q", ue.Message, m)
					}
				}
				if n := tc.wantHits[0] + tc.wantHits[1]; ue.Attempts != n {
					t.Errorf("Attempts %d; want %d", ue.Attempts, n)
				}
			}
			ha, hb := len(e.fakes["a"].hits()), len(e.fakes["b"].hits())
			if [2]int{ha, hb} != tc.wantHits {
				t.Errorf("providers saw a=%d b=%d; want a=%d b=%d", ha, hb, tc.wantHits[0], tc.wantHits[1])
			}
			if gaps := e.fakes["a"].gaps(); tc.wantGapsA != nil && !slices.Equal(gaps, tc.wantGapsA) {
				t.Errorf("a's attempts apart by %v; want %v", gaps, tc.wantGapsA)
			}
			if tc.minTook > 0 && got.took < tc.minTook {
				t.Errorf("round took %v; want at least %v", got.took, tc.minTook)
			}
			if tc.maxTook > 0 && got.took > tc.maxTook {
				t.Errorf("round took %v; want at most %v", got.took, tc.maxTook)
			}
			if tc.after != nil {
				tc.after(t, e)
			}
		})
	}
}

func statusOf(r *Router, name string) ProviderStatus {
	for _, s := range r.Status() {
		if s.Name == name {
			return s
		}
	}
	return ProviderStatus{}
}

// TestPostNotResentInsideAnAttempt: a provider that reads a POST on a
// kept-alive connection and closes it without a byte of answer may have
// started (and billed) the completion. The transport does not send it again
// on its own; every send the provider sees is an attempt the policy counted.
func TestPostNotResentInsideAnAttempt(t *testing.T) {
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": func(c *fconn, n int) {
			if n == 1 {
				c.cut() // the second request: read whole, then closed unanswered
				return
			}
			okJSON(c, "from a")
		},
	}, []string{"a"}, nil)
	if a := e.open(t.Context(), false); a.openErr != nil {
		t.Fatal(a.openErr)
	}
	a := e.open(t.Context(), false)
	if sends := len(e.fakes["a"].hits()) - 1; sends != a.attempts {
		t.Fatalf("the second round: %d sends for %d attempts (error %v); want one send per attempt", sends, a.attempts, a.openErr)
	}
}

// groqFlexFull is Groq's answer when the flex service tier is at capacity:
// status 498, error capacity_exceeded.
const groqFlexFull = `{"error":{"message":"Flex tier capacity exceeded","code":"capacity_exceeded"}}`
