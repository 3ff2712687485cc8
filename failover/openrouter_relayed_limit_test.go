package failover

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
)

// openRouterUpstreamLimited is OpenRouter's 429 for a model whose upstream
// provider (metadata.provider_name) is rate limiting it, that provider's
// words in metadata.raw and its wait in metadata.headers, as OpenRouter
// relays it (its platform's own limits name no provider_name).
const openRouterUpstreamLimited = `{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"meta-llama/llama-3.3-70b-instruct:free is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations",` +
	`"provider_name":"Venice","is_byok":false,"retry_after_seconds":17,"retry_after_seconds_raw":16.007,"headers":{"Retry-After":"17"}}},"user_id":"user_1"}`

// TestOpenRouterUpstreamLimitSparesItsOtherModels: a 429 OpenRouter
// relays from the upstream provider of one model (metadata.provider_name)
// limits that model, not OpenRouter: its other models are served by other
// upstreams. The target that met it cools down for its wait, whether
// OpenRouter puts the wait in a Retry-After header or only in the error's
// metadata.headers; OpenRouter stays in every other model's rounds.
// Cooled down as a whole, OpenRouter refused for the wait every bot's
// model it serves (a model with no other target got a 429), and with the
// wait in the body alone the limited model was asked again within a
// second, each round.
func TestOpenRouterUpstreamLimitSparesItsOtherModels(t *testing.T) {
	// Without a wait anywhere, the target backs off as a provider would.
	noWait := strings.Replace(openRouterUpstreamLimited, `,"retry_after_seconds":17,"retry_after_seconds_raw":16.007,"headers":{"Retry-After":"17"}`, "", 1)
	for _, tc := range []struct {
		name  string
		body  string
		extra []string
		wait  time.Duration // 0: a back-off of paygate's
	}{
		{"Retry-After header", openRouterUpstreamLimited, []string{"Retry-After: 17"}, 17 * time.Second},
		{"the wait in metadata.headers alone", openRouterUpstreamLimited, nil, 17 * time.Second},
		{"no wait: a back-off", noWait, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			a := newFakeProvider(t, clock, func(c *fconn, _ int) {
				if strings.Contains(c.lastBody, `"up-free"`) {
					c.status(429, tc.body, tc.extra...)
					return
				}
				okJSON(c, "paid from a")
			})
			b := newFakeProvider(t, clock, healthy("b"))
			cfg := testConfig(map[string]string{"a": a.url, "b": b.url}, nil)
			cfg.Models = []config.Model{
				{Name: "free", Strategy: "priority", Targets: []config.Target{{Provider: "a", Model: "up-free", Weight: 1}, {Provider: "b", Model: "up-b", Weight: 1}}},
				{Name: "paid", Strategy: "priority", Targets: []config.Target{{Provider: "a", Model: "up-paid", Weight: 1}}},
			}
			r, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now, Sleep: clock.Sleep})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			open := func(model string) (string, error) {
				resp, err := r.Open(t.Context(), &Request{Model: model, Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
				if err != nil {
					return "", err
				}
				defer resp.Close()
				return resp.Provider, nil
			}
			start := clock.Now()
			if p, err := open("free"); err != nil || p != "b" {
				t.Fatalf("free: answered by %q (err %v); want b", p, err)
			}
			st := statusOf(r, "a")
			if !st.CoolingUntil.IsZero() {
				t.Errorf("a cooling until %v for %q; want only its free target cooling", st.CoolingUntil, st.CoolingCause)
			}
			if len(st.CoolingTargets) != 1 || st.CoolingTargets[0].Target != "up-free" {
				t.Fatalf("a's targets cooling: %+v; want up-free", st.CoolingTargets)
			}
			if until := st.CoolingTargets[0].Until; tc.wait > 0 && !until.Equal(start.Add(tc.wait)) || tc.wait == 0 && !until.After(clock.Now()) {
				t.Errorf("up-free cooling until %v; want %v", until, start.Add(tc.wait))
			}
			before := clock.Now()
			if p, err := open("paid"); err != nil || p != "a" {
				t.Fatalf("paid: answered by %q (err %v); want a: the free model's upstream limit is not the paid model's", p, err)
			}
			if waited := clock.Now().Sub(before); waited != 0 {
				t.Errorf("paid: waited %v for a; want no wait", waited)
			}
		})
	}
}
