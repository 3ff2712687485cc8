package failover

import (
	"slices"
	"testing"
	"time"
)

// TestOpenAIRateLimitResetHeaders: OpenAI answers a spent rate limit with
// a 429 rate_limit_exceeded that often carries no Retry-After, only its
// x-ratelimit-* headers: the limit spent (x-ratelimit-remaining-requests
// or -tokens 0) and when it is whole again (x-ratelimit-reset-requests,
// -tokens), as a Go duration ("6m0s", "1.5s", "120ms"). Read as a 429
// without a wait, the provider was retried after a back-off of a few
// seconds, in this round and in every round after it, each paying an
// attempt and a pause for the six minutes OpenAI had said.
func TestOpenAIRateLimitResetHeaders(t *testing.T) {
	t.Parallel()
	limited := errBody("requests", "rate_limit_exceeded", "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 6m0s.")
	tests := []struct {
		name     string
		headers  []string
		wantHits [2]int
		wantGaps []time.Duration
		// coolFor: a is left alone this long after the round (0: not checked)
		coolFor time.Duration
	}{
		{
			name:     "requests spent for 6m0s: the next target at once, a left alone 6 minutes",
			headers:  []string{"x-ratelimit-limit-requests: 500", "x-ratelimit-remaining-requests: 0", "x-ratelimit-reset-requests: 6m0s", "x-ratelimit-remaining-tokens: 29000", "x-ratelimit-reset-tokens: 2ms"},
			wantHits: [2]int{1, 1},
			coolFor:  6 * time.Minute,
		},
		{
			name:     "tokens spent for 1.5s: waited out on the same target",
			headers:  []string{"x-ratelimit-remaining-requests: 499", "x-ratelimit-reset-requests: 120ms", "x-ratelimit-remaining-tokens: 0", "x-ratelimit-reset-tokens: 1.5s"},
			wantHits: [2]int{2, 0},
			wantGaps: []time.Duration{1500 * time.Millisecond},
		},
		{
			name:     "both spent: the longer wait",
			headers:  []string{"x-ratelimit-remaining-requests: 0", "x-ratelimit-reset-requests: 20s", "x-ratelimit-remaining-tokens: 0", "x-ratelimit-reset-tokens: 1m30s"},
			wantHits: [2]int{1, 1},
			coolFor:  90 * time.Second,
		},
		{
			// Nothing says which limit is spent: the back-off of a 429
			// without a wait, as before.
			name:     "none spent: the back-off",
			headers:  []string{"x-ratelimit-remaining-requests: 3", "x-ratelimit-reset-requests: 6m0s"},
			wantHits: [2]int{2, 0},
			wantGaps: []time.Duration{500 * time.Millisecond},
		},
		{
			name:     "Retry-After wins over the reset headers",
			headers:  []string{"Retry-After: 2", "x-ratelimit-remaining-requests: 0", "x-ratelimit-reset-requests: 6m0s"},
			wantHits: [2]int{2, 0},
			wantGaps: []time.Duration{2 * time.Second},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := failTimes(1, "a", statusFn(429, limited, tc.headers...))
			e := newEnv(t, map[string]func(*fconn, int){"a": a}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			if got.openErr != nil {
				t.Fatalf("Open: %v", got.openErr)
			}
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != tc.wantHits {
				t.Errorf("providers saw a=%d b=%d; want a=%d b=%d", h[0], h[1], tc.wantHits[0], tc.wantHits[1])
			}
			if gaps := e.fakes["a"].gaps(); tc.wantGaps != nil && !slices.Equal(gaps, tc.wantGaps) {
				t.Errorf("a's attempts apart by %v; want %v", gaps, tc.wantGaps)
			}
			if tc.coolFor == 0 {
				return
			}
			e.clock.Advance(tc.coolFor - time.Second)
			before := len(e.fakes["a"].hits())
			if got := e.open(t.Context(), true); got.provider != "b" || len(e.fakes["a"].hits()) != before {
				t.Errorf("%v later: served by %q, a asked %d more times; want b, a left alone", tc.coolFor-time.Second, got.provider, len(e.fakes["a"].hits())-before)
			}
			e.clock.Advance(2 * time.Second)
			if got := e.open(t.Context(), true); got.provider != "a" {
				t.Errorf("after the reset: served by %q; want a again", got.provider)
			}
		})
	}
}
