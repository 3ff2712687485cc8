package failover

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestRoundErrorStatusAndRetryAfter: a round that every provider rate
// limited used to end as a 503 upstream_rate_limited carrying only the
// last provider's Retry-After, if it sent one. SDKs type a rate limit by
// its status (RateLimitError needs a 429) and back off by Retry-After, so
// a round whose every attempt was a 429 now ends as a 429
// rate_limit_exceeded, while an overload (503, 529) and an account out of
// money stay 503; and every 429 or 503 says when to come back: the
// shortest wait among the round's providers (each one's Retry-After,
// cool-down, back-off or breaker cool-down), at least a second. The last
// provider's own Retry-After is not the answer when another provider is
// back sooner: a bot told an hour where 10 s would do stays away an hour.
// Every provider that refused with a rate limit counts, one that asked for
// no wait (Retry-After 0, a date already past) too: it is back at once, and
// the bot is told a second, not another provider's hour.
func TestRoundErrorStatusAndRetryAfter(t *testing.T) {
	t.Parallel()
	rateLimited := errBody("requests", "rate_limit_exceeded", "Rate limit reached for requests")
	quota := errBody("insufficient_quota", "insufficient_quota", "You exceeded your current quota")
	tests := []struct {
		name     string
		a, b     func(c *fconn, n int)
		mutate   func(*config.Config)
		setup    func(t *testing.T, e *env)
		rounds   int // the round checked is the last of these; default 1
		wantCode string
		status   int
		// retryAfter is the wait wanted; with retryAfterMin, the range.
		retryAfter, retryAfterMin time.Duration
	}{
		{
			name:   "429 with Retry-After everywhere, the last one shorter: the last provider's",
			a:      always(statusFn(429, rateLimited, "Retry-After: 30")),
			b:      always(statusFn(429, rateLimited, "Retry-After: 20")),
			status: 429, wantCode: CodeRateLimitExceeded, retryAfter: 20 * time.Second,
		},
		{
			name:   "429 with Retry-After everywhere, the last one longer: the shorter",
			a:      always(statusFn(429, rateLimited, "Retry-After: 10")),
			b:      always(statusFn(429, rateLimited, "Retry-After: 3600")),
			status: 429, wantCode: CodeRateLimitExceeded, retryAfter: 10 * time.Second,
		},
		{
			// a alone: its short Retry-After is waited out, then asked
			// for again, and the attempt budget ends the round there:
			// a's word is still its wait.
			name: "a short Retry-After the round ended on",
			a:    always(statusFn(429, rateLimited, "Retry-After: 2")),
			mutate: func(c *config.Config) {
				c.Failover.MaxAttempts = 2
				c.Models[0].Targets = c.Models[0].Targets[:1]
			},
			status: 429, wantCode: CodeRateLimitExceeded, retryAfter: 2 * time.Second,
		},
		{
			// b backs off 4s (then retries), then 5s (the cap): its
			// 5s are shorter than the 60s a asked for, 4s ago.
			name:   "429 without Retry-After from the last provider: the shortest wait left",
			a:      always(statusFn(429, rateLimited, "Retry-After: 60")),
			b:      always(statusFn(429, rateLimited)),
			setup:  func(t *testing.T, e *env) { providerOf(t, e.r, "b").throttles.Store(3) },
			status: 429, wantCode: CodeRateLimitExceeded, retryAfter: 5 * time.Second,
		},
		{
			name:   "Retry-After 0: at least a second",
			a:      always(statusFn(429, rateLimited, "Retry-After: 0")),
			mutate: func(c *config.Config) { c.Failover.MaxAttempts = 1 },
			status: 429, wantCode: CodeRateLimitExceeded, retryAfter: time.Second,
		},
		{
			// b is back at once: a's hour is not the shortest wait.
			// cf53a64 counted only providers with a wait left, and so
			// told the bot an hour.
			name:   "Retry-After 3600, then Retry-After 0: at least a second, not the hour",
			a:      always(statusFn(429, rateLimited, "Retry-After: 3600")),
			b:      always(statusFn(429, rateLimited, "Retry-After: 0")),
			status: 429, wantCode: CodeRateLimitExceeded, retryAfter: time.Second,
		},
		{
			// An HTTP-date already past (a second's resolution and a
			// little clock skew make one common) asks for no wait.
			name:   "Retry-After 3600, then an HTTP-date already past: at least a second, not the hour",
			a:      always(statusFn(429, rateLimited, "Retry-After: 3600")),
			b:      always(statusFn(429, rateLimited, "Retry-After: Thu, 01 Jan 1970 00:00:00 GMT")),
			status: 429, wantCode: CodeRateLimitExceeded, retryAfter: time.Second,
		},
		{
			// Order does not matter: the provider with no wait was asked
			// first, and its word still counts at the round's end.
			name:   "Retry-After 0, then Retry-After 3600: at least a second, not the hour",
			a:      always(statusFn(429, rateLimited, "Retry-After: 0")),
			b:      always(statusFn(429, rateLimited, "Retry-After: 3600")),
			status: 429, wantCode: CodeRateLimitExceeded, retryAfter: time.Second,
		},
		{
			name:   "a rate limit as the first event on every target: as a 429",
			a:      always(firstEvent(rateLimited)),
			b:      always(firstEvent(rateLimited)),
			status: 429, wantCode: CodeRateLimitExceeded, retryAfter: time.Second,
		},
		{
			name:   "429, then 503: an overload stays 503",
			a:      always(statusFn(429, rateLimited, "Retry-After: 30")),
			b:      always(statusFn(503, "overloaded")),
			status: 503, wantCode: CauseRateLimited, retryAfter: time.Second,
		},
		{
			// a's back-off (a second at most) ends long before b's 40s.
			name:   "529 everywhere: 503",
			a:      always(statusFn(529, errBody("overloaded_error", "", "Overloaded"))),
			b:      always(statusFn(529, errBody("overloaded_error", "", "Overloaded"), "Retry-After: 40")),
			status: 503, wantCode: CauseRateLimited, retryAfter: time.Second,
		},
		{
			name:   "insufficient_quota everywhere: 503 until the quota cool-down ends",
			a:      always(statusFn(429, quota)),
			b:      always(statusFn(429, quota)),
			status: 503, wantCode: CauseInsufficientQuota, retryAfter: 30 * time.Minute,
		},
		{
			// The breaker's cool-down runs on the real clock: 30s less
			// the test's time since it opened.
			name:   "every breaker open: 503 until the first probe",
			a:      always(statusFn(500, "")),
			b:      always(statusFn(500, "")),
			mutate: func(c *config.Config) { c.Failover.Breaker.Failures = 1 },
			rounds: 2,
			status: 503, wantCode: CauseUnavailable, retryAfterMin: 20 * time.Second, retryAfter: 30 * time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a, "b": tc.b}, []string{"a", "b"}, tc.mutate)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			var got answer
			for range max(tc.rounds, 1) {
				got = e.open(t.Context(), true)
			}
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("Open: %v (answered by %q); want an *UpstreamError", got.openErr, got.provider)
			}
			if ue.Status != tc.status || ue.Code != tc.wantCode {
				t.Errorf("got %d %q; want %d %q (%s)", ue.Status, ue.Code, tc.status, tc.wantCode, ue.Message)
			}
			lo := tc.retryAfterMin
			if lo == 0 {
				lo = tc.retryAfter
			}
			if ue.RetryAfter < lo || ue.RetryAfter > tc.retryAfter {
				t.Errorf("RetryAfter %v; want %v", ue.RetryAfter, tc.retryAfter)
			}
		})
	}
}

// TestShortRetryAfterKeepsOtherRounds: a provider that answered 429 with a
// short Retry-After (up to retry_after_max_wait) asked for a pause. Only
// the round it answered waited it out; every round started meanwhile sent
// to the provider at once (SPEC 5: never more than a few attempts a second
// on one provider). The provider now cools down for the Retry-After: a
// round started during it takes the next target, a round with no other
// target waits it out (its turn spaced after the retry's, claimSend), and
// the round that got the 429 still retries the same target after its wait,
// as SPEC 5 says.
func TestShortRetryAfterKeepsOtherRounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []string
		// wantDuring answers the round started during the pause;
		// wantAt is when that round reached a, from the start.
		wantDuring string
		wantAt     time.Duration
	}{
		{"another target: taken", []string{"a", "b"}, "b", 0},
		// The round that got the 429 has the first turn after the
		// Retry-After; the one waiting it out the next, sendSpacing on.
		{"a alone: waited out", []string{"a"}, "a", 2*time.Second + sendSpacing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			start := clock.Now()
			limited := statusFn(429, errBody("rate_limit_error", "rate_limit_exceeded", "slow down"), "Retry-After: 2")
			a := newFakeProvider(t, clock, failTimes(1, "a", limited))
			b := newFakeProvider(t, clock, healthy("b"))
			cfg := testConfig(map[string]string{"a": a.url, "b": b.url}, tc.targets)
			var r *Router
			open := func(ctx context.Context) (string, int, error) {
				resp, err := r.Open(ctx, &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
				if err != nil {
					return "", 0, err
				}
				defer resp.Close()
				return resp.Provider, resp.Attempts, nil
			}
			var during string
			var duringErr error
			var aDuring []seen
			nested := false
			sleep := func(ctx context.Context, d time.Duration) error {
				if !nested {
					// The first round waits out a's Retry-After: a
					// second round starts now.
					nested = true
					aBefore := len(a.hits())
					during, _, duringErr = open(ctx)
					aDuring = a.hits()[aBefore:]
				}
				return clock.Sleep(ctx, d)
			}
			var err error
			r, err = New(cfg, Options{Now: clock.Now, Sleep: sleep, Jitter: func(d time.Duration) time.Duration { return d }})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()

			from, attempts, err := open(t.Context())
			if err != nil || from != "a" || attempts != 2 {
				t.Errorf("the round that got the 429: %q after %d attempts (err %v); want a's answer on its retry", from, attempts, err)
			}
			if duringErr != nil || during != tc.wantDuring {
				t.Errorf("a round started during a's Retry-After: 2 answered by %q (err %v); want %s", during, duringErr, tc.wantDuring)
			}
			var at []time.Duration
			for _, h := range aDuring {
				at = append(at, h.at.Sub(start))
			}
			var want []time.Duration // none
			if tc.wantAt > 0 {
				want = []time.Duration{tc.wantAt}
			}
			if !slices.Equal(at, want) {
				t.Errorf("that round sent to a at %v from the start; want %v (the Retry-After ends at 2s; the turn after it is the 429's round's)", at, want)
			}
		})
	}
}

// stepClock is a Router clock whose Sleep blocks until the test moves the
// clock to the sleeper's wake-up: rounds waiting at once are held, and
// released one instant at a time. Each Sleep announces its wake-up on
// asleep as it begins.
type stepClock struct {
	mu       sync.Mutex
	now      time.Time
	sleepers map[chan struct{}]time.Time
	asleep   chan time.Time
}

func newStepClock() *stepClock {
	return &stepClock{now: newFakeClock().Now(), sleepers: map[chan struct{}]time.Time{}, asleep: make(chan time.Time, 64)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	wake := make(chan struct{})
	c.mu.Lock()
	at := c.now.Add(d)
	c.sleepers[wake] = at
	c.mu.Unlock()
	c.asleep <- at
	select {
	case <-wake:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// advanceTo sets the clock to at and wakes the sleepers due by then.
func (c *stepClock) advanceTo(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
	for wake, due := range c.sleepers {
		if !due.After(at) {
			delete(c.sleepers, wake)
			close(wake)
		}
	}
}

// TestCoolingWaitersSendSpacedOut: rounds that found a provider cooling
// down after a rate limit each slept until the cool-down's end and then
// sent at once, without looking again: 31 requests within 50 ms on a
// provider that had just said "too many requests" (SPEC 5: never more than
// a few attempts a second on one provider), even when it had said it again
// meanwhile. The round that got the 429 retries first; each waiting round
// gets its own turn, sendSpacing after the one before; a round whose turn
// would come after failover.retry_after_max_wait ends at once with the
// 429; and a round that wakes to a new cool-down (another 429 while it
// waited) sends nothing.
func TestCoolingWaitersSendSpacedOut(t *testing.T) {
	const waiters = 6
	limited := statusFn(429, errBody("rate_limit_error", "rate_limit_exceeded", "slow down"))
	for _, tc := range []struct {
		name string
		// limitedAgain: a refuses the retry of the round that got the
		// 429 too, cooling down anew while the others wait.
		limitedAgain bool
		wantAt       []time.Duration // a's requests, from the start
	}{
		{"the rate limit is over", false, []time.Duration{0, throttleBase, throttleBase + sendSpacing, throttleBase + 2*sendSpacing}},
		{"a limits again meanwhile", true, []time.Duration{0, throttleBase}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newStepClock()
			start := clock.Now()
			var mu sync.Mutex
			var at []time.Duration
			a := newFakeProvider(t, nil, func(c *fconn, n int) {
				mu.Lock()
				at = append(at, clock.Now().Sub(start))
				mu.Unlock()
				if n == 0 || n == 1 && tc.limitedAgain {
					limited(c) // no Retry-After: a backs off throttleBase, then twice that
					return
				}
				okJSON(c, "from a")
			})
			cfg := testConfig(map[string]string{"a": a.url}, []string{"a"})
			// Turns up to 1s away: the cool-down's end (500ms) and two after it.
			cfg.Failover.RetryAfterMaxWait = config.Duration(2 * throttleBase)
			r, err := New(cfg, Options{Now: clock.Now, Sleep: clock.Sleep, Jitter: func(d time.Duration) time.Duration { return d }})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			results := make(chan error, waiters+1)
			open := func() {
				resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
				if err == nil {
					resp.Close()
				}
				results <- err
			}

			go open() // a's 429; the round backs off, to retry at the cool-down's end
			if got := (<-clock.asleep).Sub(start); got != throttleBase {
				t.Fatalf("the 429's round sleeps until %v; want %v", got, throttleBase)
			}
			for range waiters {
				go open()
			}
			var wakes []time.Duration
			var ended []error
			for len(wakes)+len(ended) < waiters {
				select {
				case w := <-clock.asleep:
					wakes = append(wakes, w.Sub(start))
				case err := <-results:
					ended = append(ended, err)
				}
			}
			slices.Sort(wakes)
			if want := []time.Duration{throttleBase + sendSpacing, throttleBase + 2*sendSpacing}; !slices.Equal(wakes, want) {
				t.Fatalf("the rounds started during a's cool-down sleep until %v; want %v, a turn each, spaced", wakes, want)
			}
			for _, err := range ended {
				if ue := (*UpstreamError)(nil); !errors.As(err, &ue) || ue.Status != 429 {
					t.Errorf("a round with no turn in time: %v; want the 429 of a provider cooling down after one", err)
				}
			}
			for _, w := range []time.Duration{throttleBase, throttleBase + sendSpacing, throttleBase + 2*sendSpacing} {
				clock.advanceTo(start.Add(w))
				err := <-results
				if tc.limitedAgain {
					if ue := (*UpstreamError)(nil); !errors.As(err, &ue) || ue.Status != 429 {
						t.Errorf("at %v: %v; want a 429, a limiting again", w, err)
					}
				} else if err != nil {
					t.Errorf("at %v: %v; want a's answer", w, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(at, tc.wantAt) {
				t.Errorf("a saw requests at %v from the start; want %v", at, tc.wantAt)
			}
		})
	}
}

// TestLeftWaitersGiveTheirTurnsBack: a round waiting out a provider's
// rate-limit cool-down holds a send turn; when its bot leaves, the turn is
// free again. Kept, turns nobody would use pushed later rounds back, and
// once they filled failover.retry_after_max_wait a round was refused with a
// 429 at once. The turn given back is in the middle of the line here (the
// round behind it still waits), and the next round takes it.
func TestLeftWaitersGiveTheirTurnsBack(t *testing.T) {
	clock := newStepClock()
	start := clock.Now()
	a := newFakeProvider(t, nil, func(c *fconn, n int) {
		if n == 0 {
			statusFn(429, errBody("rate_limit_error", "rate_limit_exceeded", "slow down"))(c)
			return
		}
		okJSON(c, "from a")
	})
	cfg := testConfig(map[string]string{"a": a.url}, []string{"a"})
	cfg.Failover.RetryAfterMaxWait = config.Duration(2 * throttleBase) // 1s: turns at 500, 750, 1000 ms
	r, err := New(cfg, Options{Now: clock.Now, Sleep: clock.Sleep, Jitter: func(d time.Duration) time.Duration { return d }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	open := func(ctx context.Context, res chan<- error) {
		resp, err := r.Open(ctx, &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
		if err == nil {
			resp.Close()
		}
		res <- err
	}
	first, leaving, staying, late := make(chan error, 1), make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go open(t.Context(), first) // the 429; its retry takes the 500 ms turn
	if at := <-clock.asleep; at.Sub(start) != throttleBase {
		t.Fatalf("the rate-limited round's retry at %v; want %v", at.Sub(start), throttleBase)
	}
	ctx, leave := context.WithCancel(t.Context())
	go open(ctx, leaving) // the 750 ms turn
	if at := <-clock.asleep; at.Sub(start) != throttleBase+sendSpacing {
		t.Fatalf("the second round's turn at %v; want %v", at.Sub(start), throttleBase+sendSpacing)
	}
	go open(t.Context(), staying) // the 1000 ms turn
	<-clock.asleep
	leave()
	if err := <-leaving; err == nil {
		t.Fatal("the round whose bot left was answered")
	}
	go open(t.Context(), late)
	select {
	case at := <-clock.asleep:
		if got := at.Sub(start); got != throttleBase+sendSpacing {
			t.Errorf("the late round's turn at %v; want %v, the turn given back", got, throttleBase+sendSpacing)
		}
	case err := <-late:
		t.Fatalf("the late round was refused at once (%v) behind a turn whose bot left", err)
	}
	clock.advanceTo(start.Add(time.Second))
	for name, ch := range map[string]chan error{"first": first, "staying": staying, "late": late} {
		if err := <-ch; err != nil {
			t.Errorf("%s round: %v", name, err)
		}
	}
}
