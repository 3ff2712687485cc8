package failover

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestRVLateProbeFailureReopens: the probe stream closes the breaker at
// its first token and other rounds come back to the provider, which serves
// them all. When the probe's own long stream later breaks, probeFailed
// opens the breaker at once although every request since succeeded.
// TestLateProbeBreakAfterSuccessesIsOneFailure: a half-open probe's stream
// closes the breaker once it flows (its event after the first token); if that long stream breaks only
// after other rounds were answered by the provider, the break is one
// failure among successes, not a failed probe: the breaker stays closed.
// (TestStreamProbeOutcome covers a probe that breaks before any other
// answer: the breaker opens again.)
func TestLateProbeBreakAfterSuccessesIsOneFailure(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var up atomic.Int32
	release := make(chan struct{})
	e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
		switch {
		case down.Load():
			c.status(500, errBody("server_error", "", "down"))
		case up.Add(1) == 1:
			c.sse()
			c.event(roleChunk())
			c.event(contentChunk("a long answer"))
			c.event(contentChunk(" goes on"))
			<-release
			c.cut()
		default:
			okStream(c, "from a")
		}
	}}, []string{"a", "b"}, func(c *config.Config) {
		c.Failover.Breaker = config.Breaker{Failures: 2, Cooldown: config.Duration(500 * time.Millisecond)}
	})
	probe := openThenProbe(t, e, "a", &down)
	defer probe.Close()
	readFlowing(t, probe)
	for i := 0; i < 5; i++ {
		got := e.open(t.Context(), true)
		if got.openErr != nil || got.provider != "a" || !got.complete() {
			t.Fatalf("round %d after recovery: %q %v", i, got.provider, got.openErr)
		}
	}
	close(release)
	readUntilCut(t, probe)
	if st := statusOf(e.r, "a").Breaker; st != "closed" {
		t.Errorf("a's breaker %s after 5 successful answers since the probe and one late cut of the probe's stream; want closed (one cut is one failure toward breaker.failures=2)", st)
	}
}

// readUntilCut reads the probe's stream to its end and fails the test
// when it completes: the late probes these tests release must be cut.
func readUntilCut(t *testing.T, probe *Response) {
	t.Helper()
	for {
		if _, err := probe.Next(); err != nil {
			if err == io.EOF {
				t.Fatal("the probe's stream completed; want it cut")
			}
			return
		}
	}
}
