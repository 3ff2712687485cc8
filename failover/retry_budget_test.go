package failover

import (
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestRetriesLeaveRoomForUntriedTargets: a same-target retry spends one of
// failover.max_attempts. With three targets and the default four attempts,
// a 5xx outage on the first two used to spend a×2 and b×2, and the third,
// healthy target, the operator's last line of defence, was never asked. A
// retry is now skipped when the attempts left are no more than the targets
// not yet asked (counting only those the round could ask: not cooling down,
// breaker not open); a skipped Retry-After wait becomes the provider's
// cool-down.
func TestRetriesLeaveRoomForUntriedTargets(t *testing.T) {
	t.Parallel()
	down := always(statusFn(502, "<html><body>502 Bad Gateway</body></html>", "Content-Type: text/html"))
	tests := []struct {
		name        string
		a, b, c     func(*fconn, int)
		maxAttempts int
		setup       func(t *testing.T, e *env)

		wantFrom   string
		wantHits   [3]int
		wantSleeps []time.Duration // the round's pauses, on the fake clock
		after      func(t *testing.T, e *env)
	}{
		{
			name: "two targets down: the third answers",
			a:    down, b: down, maxAttempts: 4,
			wantFrom: "c", wantHits: [3]int{2, 1, 1}, wantSleeps: []time.Duration{serverErrorPause},
		},
		{
			name: "two targets resetting: the third answers",
			a:    always((*fconn).reset), b: always((*fconn).reset), maxAttempts: 4,
			wantFrom: "c", wantHits: [3]int{2, 1, 1},
		},
		{
			name: "three attempts for three targets: no retry",
			a:    down, b: down, maxAttempts: 3,
			wantFrom: "c", wantHits: [3]int{1, 1, 1},
		},
		{
			name: "attempts to spare: the retry is kept",
			a:    failTimes(1, "a", statusFn(502, "")), maxAttempts: 4,
			wantFrom: "a", wantHits: [3]int{2, 0, 0}, wantSleeps: []time.Duration{serverErrorPause},
		},
		{
			name: "a target cooling down is not counted: the retry is kept",
			a:    failTimes(1, "a", statusFn(502, "")), maxAttempts: 3,
			setup: func(t *testing.T, e *env) {
				providerOf(t, e.r, "b").coolDown(e.clock.Now().Add(time.Hour), coolReason{cause: CauseRateLimited})
			},
			wantFrom: "a", wantHits: [3]int{2, 0, 0}, wantSleeps: []time.Duration{serverErrorPause},
		},
		{
			name: "a short Retry-After is not waited out when the last attempt is c's",
			a:    down, b: always(statusFn(429, errBody("rate_limit_error", "", "slow down"), "Retry-After: 2")), maxAttempts: 4,
			wantFrom: "c", wantHits: [3]int{2, 1, 1}, wantSleeps: []time.Duration{serverErrorPause},
			after: func(t *testing.T, e *env) {
				if st := statusOf(e.r, "b"); st.CoolingCause != CauseRateLimited {
					t.Errorf("b's cooling cause %q; want %q (its Retry-After kept)", st.CoolingCause, CauseRateLimited)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a, "b": tc.b, "c": tc.c}, []string{"a", "b", "c"},
				func(c *config.Config) { c.Failover.MaxAttempts = tc.maxAttempts })
			if tc.setup != nil {
				tc.setup(t, e)
			}
			got := e.open(t.Context(), true)
			if got.openErr != nil || got.provider != tc.wantFrom {
				t.Errorf("answered by %q (err %v); want %s", got.provider, got.openErr, tc.wantFrom)
			}
			hits := [3]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits()), len(e.fakes["c"].hits())}
			if hits != tc.wantHits {
				t.Errorf("providers saw a=%d b=%d c=%d; want %v", hits[0], hits[1], hits[2], tc.wantHits)
			}
			e.clock.mu.Lock()
			sleeps := slices.Clone(e.clock.sleeps)
			e.clock.mu.Unlock()
			if !slices.Equal(sleeps, tc.wantSleeps) {
				t.Errorf("the round paused %v; want %v", sleeps, tc.wantSleeps)
			}
			if tc.after != nil {
				tc.after(t, e)
			}
		})
	}
}

// providerOf returns the Router's provider named name.
func providerOf(t *testing.T, r *Router, name string) *provider {
	t.Helper()
	for _, p := range r.providers {
		if p.name == name {
			return p
		}
	}
	t.Fatalf("no provider %q", name)
	return nil
}
