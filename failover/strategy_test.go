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
