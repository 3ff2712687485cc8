package failover

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestContextLengthWithTheFallbackUnasked: the primary refuses the
// conversation as too long for its context and the fallback, which a
// config puts there for its larger context, is cooling down or has its
// breaker open, so the round never asks it. The client must not get the
// primary's context_length_exceeded: a bot takes that 400 as "your prompt
// is too long" and cuts its conversation (or gives up), where the model
// that fits it is only unavailable for a while. It gets a 429 or 503 with
// the Retry-After of the fallback's wait, naming both. A fallback the
// round did ask (its short cool-down waited out) that refused the length
// too is the provider's own 400 again.
func TestContextLengthWithTheFallbackUnasked(t *testing.T) {
	tooLong := errBody("invalid_request_error", "context_length_exceeded", "This model's maximum context length is 8192 tokens.")
	tests := []struct {
		name       string
		bTooSmall  bool
		sameModel  bool // b serves a's upstream model (the same context)
		prepare    func(e *env)
		wantStatus int
		wantCode   string
		wantRetry  [2]time.Duration // bounds; zero: none wanted
		wantBHits  int
	}{
		{
			name: "fallback cooling after a long Retry-After",
			prepare: func(e *env) {
				e.r.providers[1].coolDown(e.clock.Now().Add(60*time.Second), coolReason{CauseRateLimited, true})
			},
			wantStatus: http.StatusTooManyRequests, wantCode: CodeRateLimitExceeded,
			wantRetry: [2]time.Duration{60 * time.Second, 60 * time.Second},
		},
		{
			name: "fallback out of quota",
			prepare: func(e *env) {
				e.r.providers[1].coolDown(e.clock.Now().Add(30*time.Minute), coolReason{cause: CauseInsufficientQuota})
			},
			wantStatus: http.StatusServiceUnavailable, wantCode: CauseUnavailable,
			wantRetry: [2]time.Duration{30 * time.Minute, 30 * time.Minute},
		},
		{
			name: "fallback breaker open",
			prepare: func(e *env) {
				p := e.r.providers[1]
				done, _, err := p.allow(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				p.report(t.Context(), done, errProviderFailure) // failures: 1
			},
			wantStatus: http.StatusServiceUnavailable, wantCode: CauseUnavailable,
			wantRetry: [2]time.Duration{time.Second, 30 * time.Second},
		},
		{
			// The same upstream model on another provider (OpenAI's and
			// Azure's gpt-4o, the commonest failover) has the same
			// context: waiting for it only keeps the conversation from
			// being cut, for as long as its provider is out.
			name:      "fallback of the same upstream model out of quota",
			sameModel: true,
			prepare: func(e *env) {
				e.r.providers[1].coolDown(e.clock.Now().Add(30*time.Minute), coolReason{cause: CauseInsufficientQuota})
			},
			wantStatus: http.StatusBadRequest, wantCode: CauseContextLength,
		},
		{
			name:      "fallback of the same upstream model cooling after a long Retry-After",
			sameModel: true,
			prepare: func(e *env) {
				e.r.providers[1].coolDown(e.clock.Now().Add(60*time.Second), coolReason{CauseRateLimited, true})
			},
			wantStatus: http.StatusBadRequest, wantCode: CauseContextLength,
		},
		{
			name:      "fallback's short cool-down waited out, too small as well",
			bTooSmall: true,
			prepare: func(e *env) {
				e.r.providers[1].coolDown(e.clock.Now().Add(2*time.Second), coolReason{CauseRateLimited, true})
			},
			wantStatus: http.StatusBadRequest, wantCode: CauseContextLength, wantBHits: 1,
		},
		{
			name:       "fallback asked, too small as well",
			bTooSmall:  true,
			prepare:    func(*env) {},
			wantStatus: http.StatusBadRequest, wantCode: CauseContextLength, wantBHits: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scripts := map[string]func(*fconn, int){"a": always(statusFn(400, tooLong))}
			if tc.bTooSmall {
				scripts["b"] = always(statusFn(400, tooLong))
			}
			e := newEnv(t, scripts, []string{"a", "b"}, func(c *config.Config) {
				c.Failover.Breaker.Failures = 1
				if tc.sameModel {
					c.Models[0].Targets[1].Model = c.Models[0].Targets[0].Model
				}
			})
			tc.prepare(e)
			got := e.open(t.Context(), true)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("got %v (served by %q); want an UpstreamError", got.openErr, got.provider)
			}
			if ue.Status != tc.wantStatus || ue.Code != tc.wantCode {
				t.Errorf("status %d code %q; want %d %q (message %q)", ue.Status, ue.Code, tc.wantStatus, tc.wantCode, ue.Message)
			}
			if tc.wantRetry != ([2]time.Duration{}) && (ue.RetryAfter < tc.wantRetry[0] || ue.RetryAfter > tc.wantRetry[1]) {
				t.Errorf("Retry-After %v; want within %v", ue.RetryAfter, tc.wantRetry)
			}
			if tc.wantStatus != http.StatusBadRequest && (!strings.Contains(ue.Message, CauseContextLength) || !strings.Contains(ue.Message, "b: skipped")) {
				t.Errorf("message %q; want a's context length and b's skip named", ue.Message)
			}
			// The provider named is the one whose refusal the client
			// reads, or, for the wait of a fallback the round skipped,
			// the one that refused the length: never one not asked.
			if want := map[bool]string{false: "a", true: "b"}[tc.bTooSmall]; ue.Provider != want {
				t.Errorf("provider %q; want %q", ue.Provider, want)
			}
			if n := len(e.fakes["a"].hits()); n != 1 {
				t.Errorf("a saw %d requests; want 1 (never the same target again)", n)
			}
			if n := len(e.fakes["b"].hits()); n != tc.wantBHits {
				t.Errorf("b saw %d requests; want %d", n, tc.wantBHits)
			}
		})
	}
}

// TestContextLengthAfterASilentProvider: a provider silent in the round
// (no head before first_byte) has its other targets passed over, and the
// next provider refuses the conversation as too long. The skip is no
// target "only unavailable for a while": the round asked that provider
// and it did not answer, as when its larger model was the one asked. The
// client gets the provider's own 400, which it can act on, as it does
// when the silent target is the round's only one on that provider; it
// used to get a 503 with a 1 s Retry-After, and each retry waited out
// first_byte again to end the same way.
func TestContextLengthAfterASilentProvider(t *testing.T) {
	t.Parallel()
	tooLong := errBody("invalid_request_error", "context_length_exceeded", "This model's maximum context length is 8192 tokens.")
	e := newEnv(t, map[string]func(*fconn, int){"a": always((*fconn).hang), "b": always(statusFn(400, tooLong))}, []string{"a", "b"},
		func(cfg *config.Config) {
			cfg.Models[0].Targets = []config.Target{
				{Provider: "a", Model: "up-a", Weight: 1},
				{Provider: "a", Model: "up-a-large", Weight: 1},
				{Provider: "b", Model: "up-b", Weight: 1},
			}
		})
	got := e.open(t.Context(), true)
	var ue *UpstreamError
	if !errors.As(got.openErr, &ue) {
		t.Fatalf("got %v (served by %q); want an UpstreamError", got.openErr, got.provider)
	}
	if ue.Status != http.StatusBadRequest || ue.Code != CauseContextLength || ue.Message != "This model's maximum context length is 8192 tokens." {
		t.Errorf("got %d %q %q; want b's own 400 %q", ue.Status, ue.Code, ue.Message, CauseContextLength)
	}
	if n := len(e.fakes["a"].hits()); n != 1 {
		t.Errorf("silent provider a asked %d times; want 1", n)
	}
}

// TestLengthWaitNamesTheProviderThatRefusedIt: a round whose refusal of
// the length becomes a 429 for a fallback it skipped cooling down names,
// of the providers it asked, the one that refused the length, not the
// one asked last (a 500 that is not what the client reads): the skipped
// one was not asked. One that refused with a rate limit of its own is
// named ahead of the refusal of the length.
func TestLengthWaitNamesTheProviderThatRefusedIt(t *testing.T) {
	tooLong := always(statusFn(400, errBody("invalid_request_error", "context_length_exceeded", "This model's maximum context length is 8192 tokens.")))
	limited := always(statusFn(429, errBody("requests", "rate_limit_exceeded", "Rate limit reached"), "Retry-After: 60"))
	for _, tc := range []struct {
		name string
		a, b func(*fconn, int)
	}{
		{"length, then a 500", tooLong, always(statusFn(500, ""))},
		{"a rate limit, then length", limited, tooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a, "b": tc.b}, []string{"a", "b", "c"}, nil)
			e.r.providers[2].coolDown(e.clock.Now().Add(10*time.Second), coolReason{CauseRateLimited, true})
			var ue *UpstreamError
			if got := e.open(t.Context(), true); !errors.As(got.openErr, &ue) {
				t.Fatalf("got %v (served by %q); want an UpstreamError", got.openErr, got.provider)
			}
			if ue.Status != http.StatusTooManyRequests || ue.Provider != "a" {
				t.Errorf("status %d, provider %q; want 429 naming a (message %q)", ue.Status, ue.Provider, ue.Message)
			}
		})
	}
}
