package failover

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestProbeLetOutBeforeAResetDoesNotReopen: an operator's reset swaps in
// a fresh, closed breaker; an attempt let out before it reports to the
// breaker that let it out. A half-open probe's stream let out before the
// reset, which then breaks, still opened the fresh breaker at once
// (probeFailed acted on the breaker the provider holds now), taking the
// provider the operator had just put back out for the whole cool-down on
// one failure of a request older than the reset.
func TestProbeLetOutBeforeAResetDoesNotReopen(t *testing.T) {
	for _, flowedFirst := range []bool{true, false} {
		name := "reset then flow"
		if flowedFirst {
			name = "flow then reset"
		}
		t.Run(name, func(t *testing.T) {
			var down atomic.Bool
			down.Store(true)
			release := make(chan struct{})
			e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
				if down.Load() {
					c.status(500, errBody("server_error", "", "down"))
					return
				}
				c.sse()
				c.event(roleChunk())
				c.event(contentChunk("a long answer"))
				c.event(contentChunk(" goes on"))
				<-release
				c.cut()
			}}, []string{"a", "b"}, func(c *config.Config) {
				c.Failover.Breaker = config.Breaker{Failures: 2, Cooldown: config.Duration(500 * time.Millisecond)}
			})
			probe := openThenProbe(t, e, "a", &down)
			defer probe.Close()
			if flowedFirst {
				readFlowing(t, probe)
			}
			if err := e.r.ResetProvider("a"); err != nil {
				t.Fatal(err)
			}
			if !flowedFirst {
				readFlowing(t, probe)
			}
			close(release)
			readUntilCut(t, probe)
			if st := statusOf(e.r, "a").Breaker; st != "closed" {
				t.Errorf("a's breaker %s after a reset and one late cut of a probe let out before it; want closed (one failure toward breaker.failures=2)", st)
			}
		})
	}
}
