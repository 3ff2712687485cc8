package failover

import (
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

func TestWeightedOrder(t *testing.T) {
	a, b, c := &target{model: "a", weight: 1}, &target{model: "b", weight: 3}, &target{model: "c", weight: 6}
	const n = 1000
	first := map[string]int{}
	for i := range n {
		ts := []*target{a, b, c}
		x := (float64(i) + 0.5) / n
		weightedShuffle(ts, func() float64 { return x })
		first[ts[0].model]++
		if len(ts) != 3 || ts[0] == ts[1] || ts[1] == ts[2] || ts[0] == ts[2] {
			t.Fatalf("not a permutation: %v", ts)
		}
	}
	want := map[string]int{"a": 100, "b": 300, "c": 600}
	for k, w := range want {
		if first[k] != w {
			t.Errorf("%s first %d times in %d; want %d (weight share)", k, first[k], n, w)
		}
	}
}

// TestLowestLatency: unmeasured targets are tried first so they get
// measured, then the fastest leads; a stale average is measured again.
func TestLowestLatency(t *testing.T) {
	slow := func(c *fconn, _ int) {
		c.sse()
		c.event(roleChunk())
		c.pause(100 * time.Millisecond)
		c.event(contentChunk("from a"))
		c.event(finishChunk())
		c.done()
	}
	e := newEnv(t, map[string]func(*fconn, int){"a": slow}, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
	})
	var got []string
	for range 4 {
		got = append(got, e.open(t.Context(), true).provider)
	}
	want := []string{"a", "b", "b", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("served by %v; want %v", got, want)
	}
	e.clock.Advance(latencyStale + time.Second)
	if p := e.open(t.Context(), true).provider; p != "a" {
		t.Errorf("with stale averages: served by %s; want a (config order, both re-measured)", p)
	}
}

// TestLowestLatencyOutlierForgotten: a target measured once very slow (a
// cold start, one long prompt) is tried again once its average is stale,
// and what it answers then is its latency: a stale average is no longer
// folded in. Folded in, a 10 s outlier still weighed 7.5 s after a fast
// answer, and the target went back behind the others for another minute,
// each minute's one fast sample taking off only a quarter.
func TestLowestLatencyOutlierForgotten(t *testing.T) {
	e := newEnv(t, nil, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
	})
	m := e.r.models[0]
	a, b := m.targets[0], m.targets[1]
	names := func() []string {
		var out []string
		for _, tg := range e.r.order(m, false) {
			out = append(out, tg.p.name)
		}
		return out
	}
	a.observe(e.clock.Now(), 10*time.Second) // the outlier
	b.observe(e.clock.Now(), 200*time.Millisecond)
	if got := names(); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("after a's outlier: order %v; want [b a]", got)
	}
	e.clock.Advance(latencyStale + time.Second)
	if got := names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("with both averages stale: order %v; want [a b] (config order)", got)
	}
	a.observe(e.clock.Now(), 50*time.Millisecond) // a is fast again
	b.observe(e.clock.Now(), 200*time.Millisecond)
	if got := names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("a measured again at 50ms, b at 200ms: order %v (a's average %v); want [a b]", got, a.latency.Load())
	}
	// A fresh average still smooths: one slow answer among fast ones
	// does not send a target to the back at once.
	a.observe(e.clock.Now(), 350*time.Millisecond)
	if got := a.latency.Load(); got != 125*time.Millisecond {
		t.Errorf("a's fresh average after 50ms then 350ms: %v; want 125ms (α = 1/4)", got)
	}
}
