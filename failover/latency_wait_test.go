package failover

import (
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestLowestLatencyCountsTheWaitOnATarget: the lowest-latency strategy's
// sample of a target is what the round spent on it until its answer came:
// its refused attempts and the Retry-After waited out before the retry
// that answered, not the retry alone. a refuses every request with a 429
// and "Retry-After: 3", waited out on the same target (at most
// retry_after_max_wait, 5s), then answers at once; b's first token comes
// 300ms late. Each round a leads costs its bot 3s; b's costs 300ms.
func TestLowestLatencyCountsTheWaitOnATarget(t *testing.T) {
	limited := func(c *fconn, n int) {
		if n%2 == 0 {
			c.status(429, errBody("rate_limit_error", "rate_limit_exceeded", "slow down"), "Retry-After: 3")
			return
		}
		okStream(c, "from a")
	}
	slow := func(c *fconn, _ int) {
		c.sse()
		c.event(roleChunk())
		c.pause(300 * time.Millisecond)
		c.event(contentChunk("from b"))
		c.event(finishChunk())
		c.done()
	}
	e := newEnv(t, map[string]func(*fconn, int){"a": limited, "b": slow}, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
		c.Providers[1].Timeouts.FirstToken = config.Duration(3 * time.Second)
		c.Providers[1].Timeouts.Idle = config.Duration(3 * time.Second)
	})
	var got []string
	for i := range 6 {
		a := e.open(t.Context(), true)
		if a.openErr != nil || !a.complete() {
			t.Fatalf("round %d: %v, %v", i+1, a.openErr, a.end)
		}
		got = append(got, a.provider)
	}
	// The first round measures a (3s and its answer), the second b, and
	// b leads from then on.
	if n := len(e.fakes["a"].hits()); n != 2 {
		t.Errorf("a asked %d times in 6 rounds (served by %v); want 2: in the first round, its 429 and the retry that answered after 3s, then b leads (300ms)", n, got)
	}
}
