package failover

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestStalledStreamProbeLetsNoFloodThrough: a provider that sends a
// stream's first token and then stalls (an overloaded server) is probed,
// once its breaker cooled down, by one stream; that stream's first token
// does not close the breaker, so the rounds that come while it stalls go
// to the fallback. Closed at the first token, every round of the next
// timeouts.idle (30 s by default) went to the stalling provider, each
// waiting out the idle timeout before its recovery, before the probe's
// stall opened the breaker again: with 32 busy bots, some 32 stalls of
// 30 s in every minute of such an outage.
func TestStalledStreamProbeLetsNoFloodThrough(t *testing.T) {
	e, down, arrived, release := stallingA(t, roleChunk(), contentChunk("par"))
	probe := openThenProbe(t, e, "a", down)
	<-arrived
	for range 2 { // the role chunk and the first token, held before Open returned
		if _, err := probe.Next(); err != nil {
			t.Fatalf("probe: %v", err)
		}
	}

	const rounds = 6
	done := make(chan answer, rounds)
	for range rounds {
		go func() { done <- e.open(t.Context(), true) }()
	}
	toA, toB := roundsAtAOrB(t, arrived, done, rounds, true)
	release()
	if toA != 0 {
		t.Errorf("while the probe stalled after its first token, %d of %d rounds went to a (%d to b); want 0: the breaker still half-open", toA, rounds, toB)
	}
	if _, err := probe.Next(); err == nil {
		t.Fatal("the probe's stream went on after its cut")
	}
	probe.Close()
	if st := statusOf(e.r, "a").Breaker; st != "open" {
		t.Errorf("a's breaker %s after its probe stalled and was cut; want open", st)
	}
	for range rounds - toB {
		<-done
	}
}

// stallingA is an env over a and b whose a answers 500 while down (true
// at first), and else sends its number on arrived, writes events as an
// event stream and stalls until release, to cut the stream then; a's
// breaker opens at 2 failures and cools down in 500ms, its idle timeout
// a minute. release may be called more than once; the test's end calls
// it too.
func stallingA(t *testing.T, events ...string) (e *env, down *atomic.Bool, arrived <-chan int, release func()) {
	t.Helper()
	down = new(atomic.Bool)
	down.Store(true)
	came := make(chan int, 64)
	held := make(chan struct{})
	e = newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
		if down.Load() {
			c.status(500, errBody("server_error", "", "down"))
			return
		}
		came <- n
		c.sse()
		for _, ev := range events {
			c.event(ev)
		}
		<-held // the stall
		c.cut()
	}}, []string{"a", "b"}, func(c *config.Config) {
		c.Failover.Breaker = config.Breaker{Failures: 2, Cooldown: config.Duration(500 * time.Millisecond)}
		c.Providers[0].Timeouts.Idle = config.Duration(time.Minute)
	})
	var once sync.Once
	release = func() { once.Do(func() { close(held) }) }
	t.Cleanup(release)
	return e, down, came, release
}

// roundsAtAOrB counts n rounds out at once as each arrives at a (whose
// handler sends on arrived and then holds it) or is answered by b, and
// fails the test on a round answered by another, or one incomplete when
// complete is set: the stall and re-measure tests ask how many rounds a
// held-up target drew while it held them.
func roundsAtAOrB(t *testing.T, arrived <-chan int, done <-chan answer, n int, complete bool) (toA, toB int) {
	t.Helper()
	for toA+toB < n {
		select {
		case <-arrived:
			toA++
		case ans := <-done:
			if ans.provider != "b" || complete && !ans.complete() {
				t.Fatalf("a round answered by %q (complete %v, open error %v); want b", ans.provider, ans.complete(), ans.openErr)
			}
			toB++
		case <-time.After(30 * time.Second):
			t.Fatalf("rounds still out after 30s: %d at a, %d answered by b", toA, toB)
		}
	}
	return toA, toB
}
