package failover

import (
	"testing"

	"github.com/paygate/paygate/config"
)

// TestBreakerFailuresAboveItsCounter: failover.breaker.failures is an int
// in the config, and gobreaker counts consecutive failures in a uint32. A
// count past the counter's range, written to mean "practically never"
// (4294967296, 2^32), was cut to its low 32 bits, 0, and the breaker opened
// at the first failure, taking a provider out for the cool-down on one bad
// answer. A count the counter can never reach leaves the breaker closed.
func TestBreakerFailuresAboveItsCounter(t *testing.T) {
	for _, failures := range []string{"4294967296", "4294967297", "9223372036854775807"} {
		t.Run(failures, func(t *testing.T) {
			loaded, err := config.Parse([]byte("failover:\n  breaker: {failures: "+failures+", cooldown: 1h}\n"), "c.yaml",
				func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
				c.cut() // no answer: a provider failure, not retried on this target
			}}, []string{"a", "b"}, func(c *config.Config) {
				c.Failover.Breaker = loaded.Failover.Breaker
			})
			for i := range 3 {
				if got := e.open(t.Context(), false); got.openErr != nil || got.provider != "b" {
					t.Fatalf("request %d: %v from %q; want b's answer", i, got.openErr, got.provider)
				}
			}
			if st := statusOf(e.r, "a"); st.Breaker != "closed" {
				t.Errorf("breaker after 3 failures with failures %s: %s; want closed", failures, st.Breaker)
			}
			if n := len(e.fakes["a"].hits()); n < 3 {
				t.Errorf("a saw %d requests; want every one asked of it first (breaker closed)", n)
			}
		})
	}
}
