package failover

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestConcurrentRounds runs many rounds at once against providers that fail
// in every way, so the race detector sees the shared provider state (breaker,
// cool-downs, latency) under load, and checks that every caller got either a
// whole answer or a clean error naming a cause.
func TestConcurrentRounds(t *testing.T) {
	flaky := func(name string) func(c *fconn, n int) {
		h := healthy(name)
		return func(c *fconn, n int) {
			switch n % 6 {
			case 0:
				c.reset()
			case 1:
				c.status(500, "")
			case 2:
				c.status(429, "", "Retry-After: 0")
			case 3:
				c.sse()
				c.event(contentChunk("cut"))
				c.cut()
			default:
				h(c, n)
			}
		}
	}
	e := newEnv(t, map[string]func(*fconn, int){"a": flaky("a"), "b": flaky("b"), "c": flaky("c")}, []string{"a", "b", "c"},
		func(c *config.Config) {
			c.Models[0].Strategy = StrategyLowestLatency
			c.Failover.Breaker.Failures = 50
		})
	const workers, each = 16, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for range workers {
		wg.Go(func() {
			for i := range each {
				got := e.open(t.Context(), i%3 != 0)
				var key string
				var ue *UpstreamError
				var se *StreamError
				switch {
				case got.openErr == nil && got.end == nil:
					if !strings.HasPrefix(got.body, `{"id"`) {
						t.Errorf("non-stream body %q", got.body)
					}
					key = "json"
				case got.openErr == nil && got.complete():
					if !strings.HasPrefix(got.text, "from ") {
						t.Errorf("complete stream with text %q", got.text)
					}
					key = "stream"
				case errors.As(got.end, &se):
					key = "stream error " + se.Cause
				case errors.As(got.openErr, &ue):
					key = "upstream error " + ue.Code
				default:
					t.Errorf("unexpected result: %v / %v", got.openErr, got.end)
				}
				mu.Lock()
				outcomes[key]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("outcomes: %v", outcomes)
	if outcomes["stream"]+outcomes["json"] == 0 {
		t.Errorf("no request served")
	}
}
