package failover

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestForbiddenModelIsTheModels: OpenAI answers a project key that is not
// allowed one model with a 403 whose code is model_not_found ("Project
// `proj_…` does not have access to model `gpt-4o`"). That is the target's
// model, as a 404 model is (SPEC 5: the next target), not a wrong key:
// taken for 401/403's misconfigured provider, it put the provider out of
// every round for the misconfigured cool-down, so the key's other models,
// which it serves, went to their fallbacks (or failed) for ten minutes,
// and the operator was told the provider refused its key.
func TestForbiddenModelIsTheModels(t *testing.T) {
	t.Parallel()
	const forbidden = `{"error":{"message":"Project ` + "`proj_abc`" + ` does not have access to model ` + "`up-a`" +
		`","type":"invalid_request_error","param":null,"code":"model_not_found"}}`
	a := func(c *fconn, n int) {
		if strings.Contains(c.lastBody, `"up-a"`) {
			c.status(403, forbidden)
			return
		}
		healthy("a")(c, n)
	}
	e := newEnv(t, map[string]func(*fconn, int){"a": a}, []string{"a", "b"}, func(cfg *config.Config) {
		// A second public model on the same key, another of its models.
		cfg.Models = append(cfg.Models, config.Model{Name: "mini", Strategy: "priority", Targets: []config.Target{
			{Provider: "a", Model: "up-a-mini", Weight: 1},
			{Provider: "b", Model: "up-b-mini", Weight: 1},
		}})
	})
	got := e.open(t.Context(), true)
	if got.openErr != nil || got.provider != "b" {
		t.Fatalf("gpt answered by %q (%v); want b", got.provider, got.openErr)
	}
	if st := statusOf(e.r, "a"); !st.CoolingUntil.IsZero() {
		t.Errorf("a cooling down until %v for %q; want no cool-down: its key is fine", st.CoolingUntil, st.CoolingCause)
	}
	mini := e.openReq(t.Context(), &Request{Model: "mini", Method: "POST", Path: "/chat/completions",
		Body: []byte(`{"model":"mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`), Stream: true,
		ContentType: "application/json", Accept: "text/event-stream"})
	if mini.openErr != nil || mini.provider != "a" {
		t.Errorf("mini answered by %q (%v); want a, whose key serves it", mini.provider, mini.openErr)
	}

	// A 403 that names no model is still a refused key.
	e2 := newEnv(t, map[string]func(*fconn, int){"a": always(statusFn(403, errBody("permission_error", "", "forbidden")))}, []string{"a", "b"}, nil)
	if got := e2.open(t.Context(), true); got.provider != "b" {
		t.Fatalf("answered by %q (%v); want b", got.provider, got.openErr)
	}
	if st := statusOf(e2.r, "a"); st.CoolingCause != CauseMisconfigured {
		t.Errorf("a cooling cause %q; want %q", st.CoolingCause, CauseMisconfigured)
	}
}
