package failover

import (
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestMidStreamBillingAndRateLimitCoolTheProvider: an error object inside
// a stream, after its first byte, that says the provider's account is out
// of money (insufficient_quota, DashScope's Arrearage) or that it is being
// called too fast (rate_limit_exceeded, OpenRouter's numeric 429) puts the
// provider in the state the same error before the first byte would (SPEC
// 5): a billing cool-down, or the rate-limit back-off, and neither counts
// against its breaker. The next request goes to the other provider while
// the first cools; after a back-off it comes back to the first.
func TestMidStreamBillingAndRateLimitCoolTheProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		ev        string
		wantClass string
		after     time.Duration // clock advance before the third request
		backToA   bool          // the third request goes to a again
	}{
		{"openai insufficient_quota", errBody("insufficient_quota", "insufficient_quota", "You exceeded your current quota"),
			CauseInsufficientQuota, 10 * time.Minute, false},
		{"dashscope Arrearage", dashScopeArrearage,
			CauseInsufficientQuota, 10 * time.Minute, false},
		{"openrouter 402 insufficient credits", `{"error":{"code":402,"message":"Insufficient credits. Add more using https://openrouter.ai/settings/credits"}}`,
			CauseInsufficientQuota, 10 * time.Minute, false},
		{"deepseek 402 insufficient balance", `{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error","status":402}}`,
			CauseInsufficientQuota, 10 * time.Minute, false},
		{"openrouter affords 0 tokens", openRouterAfford("0"),
			CauseInsufficientQuota, 10 * time.Minute, false},
		{"rate_limit_exceeded", errBody("rate_limit_error", "rate_limit_exceeded", "slow down"),
			CauseRateLimited, 2 * time.Second, true},
		{"openrouter numeric 429", `{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min."}}`,
			CauseRateLimited, 2 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": brokenOnce(tc.ev),
			}, []string{"a", "b"}, func(cfg *config.Config) {
				// One provider failure opens the breaker: a rate limit
				// or a billing error must not count as one.
				cfg.Failover.Breaker.Failures = 1
			})
			got := e.open(t.Context(), true)
			var se *StreamError
			if got.provider != "a" || !errors.As(got.end, &se) || se.Class != tc.wantClass {
				t.Fatalf("first request: provider %q end %v; want a's stream ended by a %s error", got.provider, got.end, tc.wantClass)
			}
			st := e.r.Status()[0]
			if st.CoolingUntil.IsZero() || st.CoolingCause != tc.wantClass {
				t.Errorf("after the mid-stream error a is %+v; want a cool-down for %s", st, tc.wantClass)
			}
			if st.Breaker != "closed" {
				t.Errorf("a's breaker is %s; want closed (a %s is not a provider failure)", st.Breaker, tc.wantClass)
			}

			if got := e.open(t.Context(), true); got.provider != "b" || !got.complete() {
				t.Errorf("second request: provider %q (err %v, end %v); want b while a cools", got.provider, got.openErr, got.end)
			}
			if n := len(e.fakes["a"].hits()); n != 1 {
				t.Errorf("a saw %d requests; want 1 (cooling)", n)
			}

			e.clock.Advance(tc.after)
			want := "b"
			if tc.backToA {
				want = "a"
			}
			if got := e.open(t.Context(), true); got.provider != want || !got.complete() {
				t.Errorf("after %s: provider %q (err %v, end %v); want %s", tc.after, got.provider, got.openErr, got.end, want)
			}
		})
	}
}

// TestMidStreamRequestQuotaCoolsNothing: an error object inside a stream,
// after its first byte, that says money this request alone lacks (the
// credit for its max_tokens, OpenRouter's 402 "can only afford"), one
// model's quota (DashScope's free tier of the target's model) or the
// account's credit in words alone (Anthropic's 400, words a bot may have
// quoted) cools nothing, as the same error before the first byte does
// (decide): the provider serves the next request.
func TestMidStreamRequestQuotaCoolsNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, ev string }{
		{"openrouter affords fewer tokens", openRouterAfford("3919")},
		{"dashscope free tier of the model", dashScopeFreeTierSpent},
		{"anthropic credit in words", anthropicLowCredit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": brokenOnce(tc.ev),
			}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			var se *StreamError
			if got.provider != "a" || !errors.As(got.end, &se) || se.Class != CauseInsufficientQuota {
				t.Fatalf("first request: provider %q end %v; want a's stream ended by an insufficient-quota error", got.provider, got.end)
			}
			if st := statusOf(e.r, "a"); !st.CoolingUntil.IsZero() {
				t.Errorf("after the mid-stream error a is cooling until %v for %s; want no cool-down, as before the first byte",
					st.CoolingUntil, st.CoolingCause)
			}
			if got := e.open(t.Context(), true); got.provider != "a" || !got.complete() {
				t.Errorf("second request: provider %q (err %v, end %v); want a", got.provider, got.openErr, got.end)
			}
		})
	}
}

// TestMidStreamRateLimitsBackOffLonger: a provider that begins every
// stream and then ends it with a rate limit is backed off longer at each
// (0.5 s, 1 s, 2 s), as consecutive 429s before the first byte are: the
// first token of a stream it then broke is no answer that ends the
// back-off's doubling.
func TestMidStreamRateLimitsBackOffLonger(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": always(func(c *fconn) { brokenStream(c, errBody("rate_limit_error", "rate_limit_exceeded", "slow down")) }),
	}, []string{"a"}, nil)
	var got []time.Duration
	for range 3 {
		if a := e.open(t.Context(), true); a.provider != "a" {
			t.Fatalf("served by %q (err %v); want a", a.provider, a.openErr)
		}
		until := statusOf(e.r, "a").CoolingUntil
		got = append(got, until.Sub(e.clock.Now()))
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("back-offs after each broken stream: %v; want %v", got, want)
	}
}

// TestAnswerEndsTheBackOffDoubling: an answer ends the doubling of the
// rate-limit back-off, whatever its form: a JSON answer at its head, a
// stream or a piped event stream at its end, a stream whose caller left
// before its end, a stream that something other than a rate limit broke
// after its first token (the provider took the request within its
// limits). A rate limit after it is backed off 0.5 s again, not 1 s: a
// provider limited now and then is not kept out longer each time.
func TestAnswerEndsTheBackOffDoubling(t *testing.T) {
	t.Parallel()
	chat := func(stream bool) *Request {
		return &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(stream), Stream: stream,
			ContentType: "application/json"}
	}
	for _, tc := range []struct {
		name   string
		req    *Request
		answer func(c *fconn)
		events int // Next calls before Close; -1: to the end
	}{
		{"a JSON answer", chat(false), func(c *fconn) { okJSON(c, "hi") }, 0},
		{"a stream read to its end", chat(true), func(c *fconn) { okStream(c, "hi") }, -1},
		{"a stream its caller left", chat(true), func(c *fconn) { okStream(c, "hi") }, 1},
		{"a stream cut after its first token", chat(true), func(c *fconn) {
			c.sse()
			c.event(contentChunk("Hel"))
			c.cut()
		}, -1},
		{"a stream a server error ended", chat(true), func(c *fconn) {
			brokenStream(c, errBody("server_error", "server_error", "The server had an error while processing your request."))
		}, -1},
		{"a piped stream read to its end", &Request{Model: "gpt", Method: "POST", Path: "/responses",
			Body: []byte(`{"model":"gpt","input":"hi","stream":true}`), ContentType: "application/json"}, func(c *fconn) {
			c.sse()
			c.event(`{"type":"response.output_text.delta","delta":"hi"}`)
			c.event(`{"type":"response.completed","response":{"id":"r1","status":"completed"}}`)
			c.end()
		}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": func(c *fconn, n int) {
					if n == 1 {
						tc.answer(c)
						return
					}
					brokenStream(c, errBody("rate_limit_error", "rate_limit_exceeded", "slow down"))
				},
			}, []string{"a"}, nil)
			limited := func() time.Duration {
				t.Helper()
				if a := e.open(t.Context(), true); a.provider != "a" {
					t.Fatalf("served by %q (err %v); want a", a.provider, a.openErr)
				}
				return statusOf(e.r, "a").CoolingUntil.Sub(e.clock.Now())
			}
			if w := limited(); w != 500*time.Millisecond {
				t.Fatalf("first back-off %v; want 500ms", w)
			}
			e.clock.Advance(time.Second)
			resp, err := e.r.Open(t.Context(), tc.req)
			if err != nil {
				t.Fatalf("the answer: %v", err)
			}
			if resp.Piped() {
				_, _ = io.Copy(io.Discard, resp)
			} else {
				for i := 0; tc.events < 0 || i < tc.events; i++ {
					if _, err := resp.Next(); err != nil {
						break
					}
				}
			}
			resp.Close()
			if w := limited(); w != 500*time.Millisecond {
				t.Errorf("back-off after the answer: %v; want 500ms, the doubling ended by the answer", w)
			}
		})
	}
}

// brokenStream answers with a stream that the error event ev ends after
// its first token.
func brokenStream(c *fconn, ev string) {
	c.sse()
	c.event(contentChunk("Hel"))
	c.event(ev)
	c.done()
}

// brokenOnce is a provider's script whose first stream ev ends after its
// first token (brokenStream), every later request answered.
func brokenOnce(ev string) func(c *fconn, n int) {
	return func(c *fconn, n int) {
		if n > 0 {
			healthy("a")(c, n)
			return
		}
		brokenStream(c, ev)
	}
}
