package failover

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// weightedEnv is an env over a, b and c with the weighted strategy,
// weights 1, 3 and 6, and a seeded draw: the counts below are the same on
// every run, so their bounds cannot flake.
func weightedEnv(t *testing.T, scripts map[string]func(*fconn, int), mutate func(*config.Config)) *env {
	t.Helper()
	e := newEnv(t, scripts, []string{"a", "b", "c"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyWeighted
		for i, w := range []int{1, 3, 6} {
			c.Models[0].Targets[i].Weight = w
		}
		if mutate != nil {
			mutate(c)
		}
	})
	e.r.opts.Rand = rand.New(rand.NewPCG(7, 11)).Float64
	return e
}

// served runs n non-stream rounds and counts who answered.
func (e *env) served(t *testing.T, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := range n {
		a := e.open(t.Context(), false)
		if a.openErr != nil {
			t.Fatalf("round %d: %v", i+1, a.openErr)
		}
		got[a.provider]++
	}
	return got
}

// near reports whether got is within a tenth of want.
func near(got, want int) bool { return got >= want-want/10 && got <= want+want/10 }

// TestWeightedShareFollowsWeightsThroughRounds: over real rounds the
// answering provider's share follows the weights; a provider cooling down
// gives its share to the others in proportion to their weights (1:3), and
// takes it back once its cool-down ends.
func TestWeightedShareFollowsWeightsThroughRounds(t *testing.T) {
	e := weightedEnv(t, nil, nil)
	const n = 2000
	got := e.served(t, n)
	for k, w := range map[string]int{"a": 200, "b": 600, "c": 1200} {
		if !near(got[k], w) {
			t.Errorf("all healthy: %s answered %d of %d; want about %d (weights 1, 3, 6)", k, got[k], n, w)
		}
	}
	var c *provider
	for _, p := range e.r.providers {
		if p.name == "c" {
			c = p
		}
	}
	c.coolDown(e.clock.Now().Add(time.Minute), coolReason{cause: CauseRateLimited})
	got = e.served(t, n)
	if got["c"] != 0 || !near(got["a"], 500) || !near(got["b"], 1500) {
		t.Errorf("c cooling down: answered %v of %d; want about a 500, b 1500 (1:3), c none", got, n)
	}
	e.clock.Advance(time.Minute + time.Second)
	got = e.served(t, n)
	for k, w := range map[string]int{"a": 200, "b": 600, "c": 1200} {
		if !near(got[k], w) {
			t.Errorf("after c's cool-down: %s answered %d of %d; want about %d", k, got[k], n, w)
		}
	}
}

// TestWeightedFailoverFollowsTheDraw: when the drawn first target fails,
// the round moves on to the others in the drawn order, not in list order,
// and never back to the failed one after its one retry: with a failing,
// b (weight 3) and c (weight 6) take over in about a 1:2 split of a's
// rounds as of every other.
func TestWeightedFailoverFollowsTheDraw(t *testing.T) {
	failing := func(c *fconn, _ int) {
		c.status(500, `{"error":{"message":"boom","type":"server_error"}}`)
	}
	e := weightedEnv(t, map[string]func(*fconn, int){"a": failing}, func(c *config.Config) {
		c.Failover.Breaker.Failures = 1 << 20 // a stays in the draw
	})
	const n = 2000
	got := map[string]int{}
	for i := range n {
		before := len(e.fakes["a"].hits())
		ans := e.open(t.Context(), false)
		if ans.openErr != nil {
			t.Fatalf("round %d: %v", i+1, ans.openErr)
		}
		got[ans.provider]++
		if asked := len(e.fakes["a"].hits()) - before; asked > 2 {
			t.Fatalf("round %d: a asked %d times; want at most 2 (once and its one retry)", i+1, asked)
		}
	}
	if got["a"] != 0 || !near(got["b"], 667) || !near(got["c"], 1333) {
		t.Errorf("a failing: answered %v of %d; want about b 667, c 1333 (3:6)", got, n)
	}
}

// TestWeightedEmbeddingsKeepTheFirstTargetsModel: a forwarded call
// (embeddings) under the weighted strategy is drawn among the targets
// serving the first target's upstream model alone (SPEC 5: vectors of two
// models never mix), in proportion to their weights: b, another upstream
// model, gets none of it however heavy.
func TestWeightedEmbeddingsKeepTheFirstTargetsModel(t *testing.T) {
	e := weightedEnv(t, nil, func(c *config.Config) {
		c.Models[0].Targets[2].Model = "up-a" // a (1) and c (6) serve up-a; b (3) another
	})
	const n = 1400
	got := map[string]int{}
	for i := range n {
		ans := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/embeddings", Body: []byte(`{"model":"gpt","input":"x"}`),
			SameUpstreamModel: true, ContentType: "application/json"})
		if ans.openErr != nil {
			t.Fatalf("round %d: %v", i+1, ans.openErr)
		}
		got[ans.provider]++
	}
	if got["b"] != 0 || !near(got["a"], 200) || !near(got["c"], 1200) {
		t.Errorf("embeddings: answered %v of %d; want about a 200, c 1200 (1:6), b none (another upstream model)", got, n)
	}
}
