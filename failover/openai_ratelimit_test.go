package failover

import (
	"errors"
	"net/http"
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
	// OpenAI's message names the wait for this request; the headers say
	// when the spent limit is whole again.
	limited := errBody("requests", "rate_limit_exceeded", "Rate limit reached for gpt-4o in organization org-x on requests per day (RPD): Limit 200, Used 200, Requested 1. Please try again in 6m0s. Visit https://platform.openai.com/account/rate-limits to learn more.")
	noWait := errBody("tokens", "rate_limit_exceeded", "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM).")
	tests := []struct {
		name     string
		msg      string // the 429's body; "" is noWait
		headers  []string
		wantHits [2]int
		wantGaps []time.Duration
		// coolFor: a is left alone this long after the round (0: not checked)
		coolFor time.Duration
	}{
		{
			name:     "requests spent for 6m0s: the next target at once, a left alone 6 minutes",
			msg:      limited,
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
			headers:  []string{"x-ratelimit-remaining-requests: 0", "x-ratelimit-reset-requests: 20s", "x-ratelimit-remaining-tokens: 0", "x-ratelimit-reset-tokens: 45s"},
			wantHits: [2]int{1, 1},
			coolFor:  45 * time.Second,
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
			msg:      limited,
			headers:  []string{"Retry-After: 2", "x-ratelimit-remaining-requests: 0", "x-ratelimit-reset-requests: 6m0s"},
			wantHits: [2]int{2, 0},
			wantGaps: []time.Duration{2 * time.Second},
		},
		{
			// x-ratelimit-reset-* is when the limit is back to its full
			// initial state; tokens come back continuously, and OpenAI's
			// message names when this request's share is back.
			name:     "tokens whole again in 6m0s, the message says 1.2s: waited out on the same target",
			msg:      errBody("tokens", "rate_limit_exceeded", "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29500, Requested 1100. Please try again in 1.2s. Visit https://platform.openai.com/account/rate-limits to learn more."),
			headers:  []string{"x-ratelimit-remaining-requests: 499", "x-ratelimit-reset-requests: 120ms", "x-ratelimit-remaining-tokens: 0", "x-ratelimit-reset-tokens: 6m0s"},
			wantHits: [2]int{2, 0},
			wantGaps: []time.Duration{1200 * time.Millisecond},
		},
		{
			// A tokens-per-minute limit refuses a request larger than
			// what is left (Used 29500 of 30000, Requested 1100): no
			// remaining header is 0, and the message names the wait.
			name:     "no limit spent, the message says 1.5s: waited out on the same target",
			msg:      errBody("tokens", "rate_limit_exceeded", "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29500, Requested 1100. Please try again in 1.5s. Visit https://platform.openai.com/account/rate-limits to learn more."),
			headers:  []string{"x-ratelimit-remaining-requests: 499", "x-ratelimit-reset-requests: 120ms", "x-ratelimit-remaining-tokens: 500", "x-ratelimit-reset-tokens: 1s"},
			wantHits: [2]int{2, 0},
			wantGaps: []time.Duration{1500 * time.Millisecond},
		},
		{
			// Some of OpenAI's 429s carry no x-ratelimit-* header.
			name:     "no rate-limit headers, the message says 20ms: waited out on the same target",
			msg:      errBody("tokens", "rate_limit_exceeded", "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29990, Requested 385. Please try again in 20ms."),
			wantHits: [2]int{2, 0},
			wantGaps: []time.Duration{20 * time.Millisecond},
		},
		{
			name:     "no rate-limit headers, the message says 6m0s: the next target at once, a left alone 6 minutes",
			msg:      limited,
			wantHits: [2]int{1, 1},
			coolFor:  6 * time.Minute,
		},
		{
			// Without the message's wait, the full reset is an upper
			// bound: a left alone at most a minute, not six.
			name:     "tokens whole again in 6m0s, no wait in the message: a left alone a minute",
			headers:  []string{"x-ratelimit-remaining-tokens: 0", "x-ratelimit-reset-tokens: 6m0s"},
			wantHits: [2]int{1, 1},
			coolFor:  time.Minute,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := tc.msg
			if msg == "" {
				msg = noWait
			}
			a := failTimes(1, "a", statusFn(429, msg, tc.headers...))
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

// TestTryAgainIn: the wait OpenAI's rate-limit message names is read only
// as a Go duration right after "try again in"; anything else names none.
func TestTryAgainIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg  string
		want time.Duration
		ok   bool
	}{
		{"Limit 30000, Used 29500, Requested 1100. Please try again in 1.2s. Visit https://platform.openai.com/account/rate-limits to learn more.", 1200 * time.Millisecond, true},
		{"Please try again in 6ms.", 6 * time.Millisecond, true},
		{"please TRY AGAIN IN 7m12s, thanks", 7*time.Minute + 12*time.Second, true},
		{"Please try again in 20s", 20 * time.Second, true},
		{"Please try again in 1 minute.", 0, false},
		{"Please try again in a moment.", 0, false},
		{"Please try again later.", 0, false},
		{"Please try again in -5s.", 0, false},
		{"", 0, false},
		// Letters whose lower case is longer or shorter in UTF-8: the
		// wait is still found, and nothing is cut out of range.
		{"ȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺ try again in 3s.", 3 * time.Second, true},
		{"ẞẞẞẞ Please try again in 250ms.", 250 * time.Millisecond, true},
		{"ȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺ try again in ", 0, false},
	}
	for _, tc := range tests {
		if got, ok := tryAgainIn(tc.msg); got != tc.want || ok != tc.ok {
			t.Errorf("tryAgainIn(%q) = %v, %v; want %v, %v", tc.msg, got, ok, tc.want, tc.ok)
		}
	}
}

// TestOpenAISpentLimitBotRetryAfter: a bot whose only target is OpenAI's,
// refused for a spent limit, is told to come back when its request would
// pass, not when the limit is whole again: OpenAI's message's wait, else
// the full reset cut to a minute. It was told six minutes for a reset of
// 6m0s that a retry a second later would have passed.
func TestOpenAISpentLimitBotRetryAfter(t *testing.T) {
	t.Parallel()
	spent := []string{"x-ratelimit-remaining-tokens: 0", "x-ratelimit-reset-tokens: 6m0s"}
	tests := []struct {
		name string
		msg  string
		want time.Duration
	}{
		{"no wait in the message: a minute", "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM).", time.Minute},
		{"the message's wait", "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29500, Requested 1100. Please try again in 20s.", 20 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := always(statusFn(429, errBody("tokens", "rate_limit_exceeded", tc.msg), spent...))
			e := newEnv(t, map[string]func(*fconn, int){"a": a}, []string{"a"}, nil)
			got := e.open(t.Context(), true)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("Open: %v (answered by %q); want an *UpstreamError", got.openErr, got.provider)
			}
			if ue.Status != http.StatusTooManyRequests || ue.RetryAfter != tc.want {
				t.Errorf("got %d Retry-After %v; want 429 Retry-After %v", ue.Status, ue.RetryAfter, tc.want)
			}
		})
	}
}

// FuzzTryAgainIn: any message, whatever its letters, is read without a
// panic, and a wait found is one the message names.
func FuzzTryAgainIn(f *testing.F) {
	for _, s := range []string{"Please try again in 1.2s.", "ȺȺ try again in 3s", "try again in ", "TRY AGAIN IN 1H2M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		if d, ok := tryAgainIn(msg); ok && d < 0 {
			t.Errorf("tryAgainIn(%q) = %v; want no negative wait", msg, d)
		}
	})
}
