package failover

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/paygate/paygate/internal/steppedclock"
)

// newSteppedClock is a clock whose wall reading a test steps.
func newSteppedClock() *steppedClock { return &steppedClock{steppedclock.New()} }

type steppedClock struct{ *steppedclock.Clock }

// Step steps the wall clock by d, failing t if it cannot.
func (c *steppedClock) Step(t *testing.T, d time.Duration) {
	t.Helper()
	if err := c.Clock.Step(d); err != nil {
		t.Fatal(err)
	}
}

// acrossWallClockSteps runs test once for a step of the wall clock back an
// hour and once for one ahead, each on a Router of its own (one provider,
// "a", and one model over it) that reads clock, closed at its end.
func acrossWallClockSteps(t *testing.T, test func(t *testing.T, step time.Duration, clock *steppedClock, r *Router)) {
	t.Helper()
	for _, step := range []time.Duration{-time.Hour, time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			clock := newSteppedClock()
			cfg := testConfig(map[string]string{"a": "http://127.0.0.1:1"}, []string{"a"})
			r, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			test(t, step, clock, r)
		})
	}
}

// TestCoolDownsLastTheirTimeAcrossAWallClockStep: a provider's cool-down
// and a target's (a Retry-After: 30 of a rate limit) last 30 s of elapsed
// time whatever the host's wall clock does meanwhile. Kept as wall-clock
// instants, a step back of an hour kept the provider out of every round
// for an hour and 30 s, and a step ahead ended the cool-down at once,
// asking a provider again that had said to wait.
func TestCoolDownsLastTheirTimeAcrossAWallClockStep(t *testing.T) {
	acrossWallClockSteps(t, func(t *testing.T, step time.Duration, clock *steppedClock, r *Router) {
		p, tg := r.providers[0], r.models[0].targets[0]
		p.coolDown(clock.Now().Add(30*time.Second), coolReason{cause: CauseRateLimited, limited: true})
		tg.coolDown(clock.Now().Add(30 * time.Second))

		clock.Step(t, step)
		clock.Advance(10 * time.Second)
		st := statusOf(r, "a")
		if st.CoolingUntil.IsZero() || len(st.CoolingTargets) != 1 {
			t.Fatalf("10 s into a 30 s cool-down, the wall clock stepped %v: provider cooling until %v, targets %+v; want both cooling 20 s more", step, st.CoolingUntil, st.CoolingTargets)
		}
		now := clock.Now()
		if left := st.CoolingUntil.Sub(now); left != 20*time.Second {
			t.Errorf("provider's cool-down shown ending in %v; want 20s", left)
		}
		if left := st.CoolingTargets[0].Until.Sub(now); left != 20*time.Second {
			t.Errorf("target's cool-down shown ending in %v; want 20s", left)
		}
		// The admin API shows cooling_until to operators as a wall
		// time (its RFC 3339 text drops the monotonic reading): it is
		// the wall clock as it now reads, plus what is left, not the
		// wall clock of before the step.
		wall := now.Round(0).Add(20 * time.Second)
		if u := st.CoolingUntil.Round(0); !u.Equal(wall) {
			t.Errorf("provider's cooling_until reads %s on the wall clock; want %s, 20 s after the wall clock's now", u.UTC().Format(time.RFC3339), wall.UTC().Format(time.RFC3339))
		}
		if u := st.CoolingTargets[0].Until.Round(0); !u.Equal(wall) {
			t.Errorf("target's cooling_until reads %s on the wall clock; want %s, 20 s after the wall clock's now", u.UTC().Format(time.RFC3339), wall.UTC().Format(time.RFC3339))
		}
		clock.Advance(20 * time.Second)
		if st := statusOf(r, "a"); !st.CoolingUntil.IsZero() || len(st.CoolingTargets) != 0 {
			t.Errorf("30 s after a 30 s cool-down began, the wall clock stepped %v: provider cooling until %v, targets %+v; want none", step, st.CoolingUntil, st.CoolingTargets)
		}
	})
}

// TestLatencyAgesAcrossAWallClockStep: the lowest-latency strategy trusts a
// target's average, and sorts a target whose last attempt failed behind
// the others, for latencyStale of elapsed time, whatever the host's wall
// clock does meanwhile. Kept as wall-clock instants, a step back of an hour
// sorted a target that failed once behind every other for an hour and a
// minute, and kept a slow average for as long; a step ahead dropped a
// fresh average at once.
func TestLatencyAgesAcrossAWallClockStep(t *testing.T) {
	acrossWallClockSteps(t, func(t *testing.T, step time.Duration, clock *steppedClock, r *Router) {
		measured, failed := r.models[0].targets[0], &target{p: r.providers[0]}
		measured.observe(clock.Now(), true, 100*time.Millisecond)
		failed.observe(clock.Now(), true, 100*time.Millisecond)
		clock.Advance(time.Second)
		failed.failedAt(latencyKind(true), clock.Now())

		clock.Step(t, step)
		clock.Advance(time.Second)
		if k := measured.latencyKey(clock.Now(), true, true); k != 100*time.Millisecond {
			t.Errorf("2 s after its sample, the wall clock stepped %v: latency key %v; want the fresh average, 100ms", step, k)
		}
		if k := failed.latencyKey(clock.Now(), true, true); k != math.MaxInt64 {
			t.Errorf("1 s after its failure, the wall clock stepped %v: latency key %v; want it sorted last", step, k)
		}
		clock.Advance(latencyStale)
		if k := measured.latencyKey(clock.Now(), true, true); k != 0 {
			t.Errorf("%v after its sample, the wall clock stepped %v: latency key %v; want 0, stale", latencyStale+2*time.Second, step, k)
		}
		if k := failed.latencyKey(clock.Now(), true, true); k != 0 {
			t.Errorf("%v after its failure, the wall clock stepped %v: latency key %v; want 0, stale and tried again", latencyStale+time.Second, step, k)
		}
	})
}

// TestBreakerWaitAcrossAWallClockStep: an open breaker's wait left, which
// the client's Retry-After and a round's count of targets it may still try
// read, is its cool-down less the elapsed time since it opened, whatever
// the host's wall clock does meanwhile, as the breaker itself lets a probe
// through after its cool-down of elapsed time. Kept as a wall-clock
// instant, a step back of an hour told the client to come back in an hour
// and 20 s while the provider took a probe 20 s on.
func TestBreakerWaitAcrossAWallClockStep(t *testing.T) {
	acrossWallClockSteps(t, func(t *testing.T, step time.Duration, clock *steppedClock, r *Router) {
		p := r.providers[0]
		p.realNow = clock.Now
		for range r.fo.Breaker.Failures {
			done, _, err := p.allow(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			p.report(t.Context(), done, errProviderFailure)
		}
		if p.breakerState() != gobreaker.StateOpen {
			t.Fatalf("breaker %v after %d failures; want open", p.breakerState(), r.fo.Breaker.Failures)
		}
		clock.Step(t, step)
		clock.Advance(10 * time.Second)
		if left := p.breakerLeft(); left != 20*time.Second {
			t.Errorf("10 s into the breaker's 30 s cool-down, the wall clock stepped %v: %v left; want 20s", step, left)
		}
	})
}

// TestSendTurnsKeepTheirSpacingAcrossAWallClockStep: rounds waiting for a
// provider after its rate limit get send turns sendSpacing apart
// (provider.claimSend), and a step of the host's wall clock while they
// wait keeps that spacing. Kept as wall-clock instants (unix ns), a step
// ahead put a round that began waiting after the step at the cool-down's
// end, the same instant as the first round already waiting (a burst into
// a provider that had just rate-limited us), and a step back did too, the
// turns handed out before it left an hour ahead of the new ones; a turn
// given back after the step stayed in the line.
func TestSendTurnsKeepTheirSpacingAcrossAWallClockStep(t *testing.T) {
	acrossWallClockSteps(t, func(t *testing.T, step time.Duration, clock *steppedClock, r *Router) {
		p := r.providers[0]
		start := clock.Now()
		p.coolDown(start.Add(10*time.Second), coolReason{cause: CauseRateLimited, limited: true})
		claim := func(now time.Time) time.Duration {
			t.Helper()
			until, _, cooling := p.cooling(now)
			if !cooling {
				t.Fatalf("provider not cooling at %v into its 10 s cool-down", now.Sub(start))
			}
			// The latest turn a round waits for, read from its now
			// (Router.sendLimit).
			slot, ok := p.claimSend(now, until, now.Add(time.Minute))
			if !ok {
				t.Fatalf("no send turn %v into the cool-down", now.Sub(start))
			}
			// The round sleeps slot.Sub(now) (waitOut): its turn, in
			// elapsed time from the rate limit.
			return now.Sub(start) + slot.Sub(now)
		}
		first, second := claim(start), claim(start)
		if first != 10*time.Second || second != 10*time.Second+sendSpacing {
			t.Fatalf("turns before the step at %v, %v; want 10s, %v", first, second, 10*time.Second+sendSpacing)
		}

		clock.Step(t, step)
		clock.Advance(time.Second)
		now := clock.Now()
		third := claim(now)
		if want := 10*time.Second + 2*sendSpacing; third != want {
			t.Errorf("the wall clock stepped %v while two rounds waited: a third round's turn %v after the rate limit; want %v, spaced after theirs (%v, %v)", step, third, want, first, second)
		}
		// The second round leaves: its turn is free again, and the next
		// round takes it, not a place after the third.
		p.releaseSend(start.Add(second))
		if fourth := claim(now); fourth != second {
			t.Errorf("after the wall clock stepped %v, a turn given back at %v was not free again: the next round got %v", step, second, fourth)
		}
	})
}
