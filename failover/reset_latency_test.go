package failover

import (
	"testing"

	"github.com/paygate/paygate/config"
)

// TestResetProviderReturnsItUnderLowestLatency: an operator's reset (POST
// /admin/api/providers/{name}/reset, once the key is fixed or the account
// topped up) ends the provider's cool-down at once, and under the
// lowest-latency strategy the failure that started it no longer sorts
// its targets behind the others: they are asked again by the next round,
// as under priority, not a minute after the failure.
func TestResetProviderReturnsItUnderLowestLatency(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"a refused key", errBody("invalid_request_error", "invalid_api_key", "Incorrect API key provided"), 401},
		{"an account out of quota", errBody("insufficient_quota", "insufficient_quota", "You exceeded your current quota"), 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused := func(c *fconn, n int) {
				if n == 0 {
					c.status(tc.status, tc.body)
					return
				}
				okStream(c, "from a")
			}
			e := newEnv(t, map[string]func(*fconn, int){"a": refused}, []string{"a", "b"}, func(c *config.Config) {
				c.Models[0].Strategy = StrategyLowestLatency
			})
			if got := e.open(t.Context(), true); got.provider != "b" {
				t.Fatalf("first round: served by %q (%v); want b after a's %d", got.provider, got.openErr, tc.status)
			}
			if err := e.r.ResetProvider("a"); err != nil {
				t.Fatal(err)
			}
			if got := e.open(t.Context(), true); got.provider != "a" || !got.complete() {
				t.Errorf("after the reset: served by %q (%v); want a, unmeasured since its refusal and asked again at once", got.provider, got.openErr)
			}
		})
	}
}
