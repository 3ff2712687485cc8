package failover

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/config"
)

// TestCoolDownsInMetrics: a provider out of quota sits out every round
// for 30 minutes (or until an operator's reset) with its breaker closed,
// and an OpenRouter ":free" target until its daily reset, hours away:
// paygate_upstream_breaker_state read 0 for both, and nothing else in
// /metrics said that a provider or a target was out of service, so an SRE
// had nothing to alert on but failovers, which move only with traffic.
// paygate_upstream_cooldown_seconds{provider,cause} and
// paygate_upstream_target_cooldown_seconds{provider,model,target} give the
// seconds left of each cool-down, read at each scrape; a series of each
// provider is always there (0, cause "none"), and the reset ends them.
func TestCoolDownsInMetrics(t *testing.T) {
	clock := newFakeClock()
	reset := clock.Now().Add(3 * time.Hour)
	a := newFakeProvider(t, clock, func(c *fconn, _ int) {
		if strings.Contains(c.lastBody, `"up-free"`) {
			c.status(429, openRouterDailyLimit(reset, "0"))
			return
		}
		okJSON(c, "paid from a")
	})
	b := newFakeProvider(t, clock, healthy("b"))
	q := newFakeProvider(t, clock, always(statusFn(429, errBody("insufficient_quota", "insufficient_quota", "You exceeded your current quota"))))
	cfg := testConfig(map[string]string{"a": a.url, "b": b.url, "c": q.url}, nil)
	cfg.Models = []config.Model{
		// The free target twice (both cool down): one series of it, or
		// the scrape fails whole.
		{Name: "free", Strategy: "priority", Targets: []config.Target{{Provider: "a", Model: "up-free", Weight: 1}, {Provider: "a", Model: "up-free", Weight: 1}, {Provider: "b", Model: "up-b", Weight: 1}}},
		{Name: "quota", Strategy: "priority", Targets: []config.Target{{Provider: "c", Model: "up-c", Weight: 1}, {Provider: "b", Model: "up-b", Weight: 1}}},
	}
	reg := prometheus.NewRegistry()
	r, err := New(cfg, Options{Registerer: reg, Now: clock.Now, Sleep: clock.Sleep, QuotaCooldown: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := func(when, exp string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "paygate_upstream_cooldown_seconds", "paygate_upstream_target_cooldown_seconds"); err != nil {
			t.Errorf("%s: %v", when, err)
		}
	}
	const head = `# HELP paygate_upstream_cooldown_seconds Seconds left of each provider's cool-down (rounds skip it meanwhile; its breaker may read closed), by its cause (upstream_rate_limited, upstream_insufficient_quota, upstream_misconfigured; none: not cooling, 0). POST /admin/api/providers/{name}/reset ends it on this replica.
# TYPE paygate_upstream_cooldown_seconds gauge
`
	const targetHead = `# HELP paygate_upstream_target_cooldown_seconds Seconds left of the cool-down of a target cooling on its own while its provider serves its other models (an OpenRouter :free model until its daily limit's reset), by provider, public model and upstream model; a target not cooling has no series.
# TYPE paygate_upstream_target_cooldown_seconds gauge
`
	want("fresh", head+`paygate_upstream_cooldown_seconds{cause="none",provider="a"} 0
paygate_upstream_cooldown_seconds{cause="none",provider="b"} 0
paygate_upstream_cooldown_seconds{cause="none",provider="c"} 0
`)
	for _, m := range []string{"free", "quota"} {
		resp, err := r.Open(t.Context(), &Request{Model: m, Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		resp.Close()
	}
	if err := clock.Sleep(t.Context(), time.Minute); err != nil {
		t.Fatal(err)
	}
	want("cooling", head+`paygate_upstream_cooldown_seconds{cause="none",provider="a"} 0
paygate_upstream_cooldown_seconds{cause="none",provider="b"} 0
paygate_upstream_cooldown_seconds{cause="upstream_insufficient_quota",provider="c"} 1740
`+targetHead+`paygate_upstream_target_cooldown_seconds{model="free",provider="a",target="up-free"} 10740
`)
	for _, p := range []string{"a", "c"} {
		if err := r.ResetProvider(p); err != nil {
			t.Fatal(err)
		}
	}
	want("after the resets", head+`paygate_upstream_cooldown_seconds{cause="none",provider="a"} 0
paygate_upstream_cooldown_seconds{cause="none",provider="b"} 0
paygate_upstream_cooldown_seconds{cause="none",provider="c"} 0
`)
}
