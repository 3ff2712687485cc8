package failover

import (
	"testing"

	"github.com/paygate/paygate/config"
)

// TestLowestLatencyExcludedStaleTargetNotClaimed: a round that leaves a
// stale target out (a turn's target too small for its context, a
// recovery's broken provider) does not take that target's re-measure:
// the next round that may ask it measures it. Claimed by the round that
// left it out, the target sat behind the others for remeasureHold (30 s)
// with no round measuring it.
func TestLowestLatencyExcludedStaleTargetNotClaimed(t *testing.T) {
	e := newEnv(t, nil, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
	})
	a, _ := aStaleBFresh(e)

	left := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(true),
		Stream: true, ContentType: "application/json", Accept: "text/event-stream",
		ExcludeTargets: []TargetName{{Provider: "a", Model: a.model}}})
	if left.provider != "b" || !left.complete() {
		t.Fatalf("the round leaving a out: answered by %q (complete %v, error %v); want b", left.provider, left.complete(), left.openErr)
	}
	if got := e.open(t.Context(), true); got.provider != "a" || !got.complete() {
		t.Errorf("the next round: answered by %q (complete %v, error %v); want a, measuring its stale average again", got.provider, got.complete(), got.openErr)
	}
}
