package failover

import (
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestLowestLatencyStaleTargetRemeasuredByOneRound: a target whose average
// went stale while it was passed over (a brownout: its answers began to
// take 20 s, the others took the traffic) is measured again by one round
// at a time, the others keeping its last average. Taken as unmeasured by
// every round, every bot request of the next 20 s went to it once a
// minute, each waiting out its brownout, until its first slow answer came
// back to say so.
func TestLowestLatencyStaleTargetRemeasuredByOneRound(t *testing.T) {
	e, arrived, release := brownoutEnv(t)
	aStaleBFresh(e)

	const rounds = 8
	done := make(chan answer, rounds)
	go func() { done <- e.open(t.Context(), true) }()
	<-arrived // the first round measures a again
	for range rounds - 1 {
		go func() { done <- e.open(t.Context(), true) }()
	}
	toA, toB := roundsAtAOrB(t, arrived, done, rounds-1, true)
	release()
	if toA != 0 {
		t.Errorf("while a was measured again, %d of the %d other rounds went to it as well (%d answered by b); want 0: one round measures a stale target", toA, rounds-1, toB)
	}
	for range rounds - toB {
		if ans := <-done; !ans.complete() {
			t.Errorf("round served by %q did not complete: %v %v", ans.provider, ans.openErr, ans.end)
		}
	}
}

// TestLowestLatencyWaitingTargetSortsByItsWait: a target whose attempt
// has waited for its first token longer than another target's average
// sorts behind that target, though its own average, from before, is
// lower. Ordered by its average alone, a target whose answers began to
// take 20 s (a brownout: no error, just slow) drew every round until its
// first late answer came back to say so: with 32 busy bots, each waited
// the brownout out once.
func TestLowestLatencyWaitingTargetSortsByItsWait(t *testing.T) {
	e, arrived, release := brownoutEnv(t)
	m := e.r.models[0]
	a, b := m.targets[0], m.targets[1]
	a.observe(e.clock.Now(), true, 50*time.Millisecond)
	b.observe(e.clock.Now(), true, 200*time.Millisecond)

	first := make(chan answer, 1)
	go func() { first <- e.open(t.Context(), true) }()
	<-arrived // the brownout's first round, at a
	e.clock.Advance(time.Second)
	second := make(chan answer, 1)
	go func() { second <- e.open(t.Context(), true) }()
	toA := false
	select {
	case <-arrived:
		toA = true
		t.Errorf("a round went to a while a's attempt had waited 1s for its first token (a's average 50ms, b's 200ms); want b")
	case ans := <-second:
		if ans.provider != "b" || !ans.complete() {
			t.Errorf("answered by %q (complete %v, error %v); want b", ans.provider, ans.complete(), ans.openErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the second round is still out after 30s")
	}
	release()
	if ans := <-first; ans.provider != "a" || !ans.complete() {
		t.Errorf("the first round: answered by %q (complete %v); want a", ans.provider, ans.complete())
	}
	if toA {
		<-second
	}
}

// aStaleBFresh has the first model's a lead at 50ms and then b take
// every round (a's brownout) at 200ms until a's average went stale while
// b's is fresh, and returns the two.
func aStaleBFresh(e *env) (a, b *target) {
	m := e.r.models[0]
	a, b = m.targets[0], m.targets[1]
	a.observe(e.clock.Now(), true, 50*time.Millisecond)
	e.clock.Advance(latencyStale / 2)
	b.observe(e.clock.Now(), true, 200*time.Millisecond)
	e.clock.Advance(latencyStale/2 + time.Second)
	return a, b
}

// brownoutEnv is a lowest-latency model over a and b whose a, in a
// brownout, holds each attempt (its number sent on arrived) until release
// and then streams "from a", its timeouts a minute: an answer, but late.
// release may be called more than once; the test's end calls it too.
func brownoutEnv(t *testing.T) (e *env, arrived <-chan int, release func()) {
	t.Helper()
	came := make(chan int, 64)
	held := make(chan struct{})
	slow := func(c *fconn, n int) {
		came <- n
		<-held // the brownout: an answer, but late
		okStream(c, "from a")
	}
	e = newEnv(t, map[string]func(*fconn, int){"a": slow}, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
		c.Providers[0].Timeouts.FirstByte = config.Duration(time.Minute)
		c.Providers[0].Timeouts.FirstToken = config.Duration(time.Minute)
	})
	var once sync.Once
	release = func() { once.Do(func() { close(held) }) }
	t.Cleanup(release)
	return e, came, release
}
