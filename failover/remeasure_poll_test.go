package failover

import (
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestLowestLatencyPollClaimsNoRemeasure: a call that is no generation (a
// bot polling its batch, listing its files) says nothing of a target's
// speed (generation), so its round does not take the one re-measure of a
// stale target (claimRemeasure): taken by the poll, the re-measure went
// to a call that measures nothing, the generations after it sorted the
// stale target behind the others for remeasureHold, and a bot polling
// more often than that kept a target once slow from ever being measured
// again.
func TestLowestLatencyPollClaimsNoRemeasure(t *testing.T) {
	e := newEnv(t, nil, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
	})
	m := e.r.models[0]
	a, b := m.targets[0], m.targets[1]
	a.observe(e.clock.Now(), false, 2*time.Second) // slow once
	e.clock.Advance(latencyStale + time.Second)
	b.observe(e.clock.Now(), false, 100*time.Millisecond)
	poll := e.openReq(t.Context(), &Request{Method: "GET", Path: "/batches/batch_1", Accept: "application/json", SameUpstreamModel: true})
	if poll.openErr != nil {
		t.Fatalf("the poll: %v", poll.openErr)
	}
	got := e.open(t.Context(), false)
	if got.openErr != nil || got.provider != "a" {
		t.Errorf("the chat request after a poll (served by %s): served by %q (%v); want a, its stale average measured again by this generation", poll.provider, got.provider, got.openErr)
	}
}
