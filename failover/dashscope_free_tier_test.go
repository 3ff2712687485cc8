package failover

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
)

// dashScopeFreeTierSpent is DashScope's (Model Studio's) compatible-mode
// 403 for a model whose free quota is used up while the account's "use
// free tier only" mode is on: each model has a free quota of its own
// (https://www.alibabacloud.com/help/en/model-studio/new-free-quota).
const dashScopeFreeTierSpent = `{"error":{"message":"The free tier of the model has been exhausted. If you wish to continue access the model on a paid basis, please disable the \"use free tier only\" mode in the management console.","type":"AllocationQuota.FreeTierOnly","param":null,"code":"AllocationQuota.FreeTierOnly"},"id":"chatcmpl-1","request_id":"1"}`

// TestDashScopeFreeTierSpentSparesItsOtherModels: DashScope's 403 for one
// model's free quota spent is that model's money, not a key refused: the
// round moves on, and the provider stays in service for its other models,
// whose free quotas are their own. Read as a refused key, it took every
// Qwen model out of every round for the 10-minute misconfigured
// cool-down, again after each, and told the operator to check a valid key.
func TestDashScopeFreeTierSpentSparesItsOtherModels(t *testing.T) {
	clock := newFakeClock()
	a := newFakeProvider(t, clock, func(c *fconn, _ int) {
		if strings.Contains(c.lastBody, `"up-free"`) {
			c.status(403, dashScopeFreeTierSpent)
			return
		}
		okJSON(c, "paid from a")
	})
	b := newFakeProvider(t, clock, healthy("b"))
	cfg := testConfig(map[string]string{"a": a.url, "b": b.url}, nil)
	cfg.Models = []config.Model{
		{Name: "free", Strategy: "priority", Targets: []config.Target{{Provider: "a", Model: "up-free", Weight: 1}, {Provider: "b", Model: "up-b", Weight: 1}}},
		{Name: "other", Strategy: "priority", Targets: []config.Target{{Provider: "a", Model: "up-other", Weight: 1}}},
		{Name: "alone", Strategy: "priority", Targets: []config.Target{{Provider: "a", Model: "up-free", Weight: 1}}},
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
	if p, err := open("free"); err != nil || p != "b" {
		t.Fatalf("free: answered by %q (err %v); want b", p, err)
	}
	if p, err := open("other"); err != nil || p != "a" {
		t.Fatalf("other: answered by %q (err %v); want a: one model's free quota is not another's", p, err)
	}
	if st := statusOf(r, "a"); !st.CoolingUntil.IsZero() {
		t.Errorf("a cooling until %v for %q; want none", st.CoolingUntil, st.CoolingCause)
	}
	var ue *UpstreamError
	if _, err := open("alone"); !errors.As(err, &ue) || ue.Code != CauseInsufficientQuota {
		t.Errorf("the spent model alone: err %v; want %s, the account's money, not a refused key", err, CauseInsufficientQuota)
	}
}
