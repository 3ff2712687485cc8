package failover

import (
	"slices"
	"testing"
)

// TestPriorityOrderAllocatesNothing: a model tried in config order (the
// default strategy) hands each round its targets as they are, not a copy
// per request; a round told to leave a provider out (a stream's recovery)
// works on a copy, and the model's order is the same for every later round.
func TestPriorityOrderAllocatesNothing(t *testing.T) {
	e := newEnv(t, nil, []string{"a", "b"}, nil)
	m := e.r.models[0]
	if n := testing.AllocsPerRun(100, func() { _ = e.r.order(m, false, false, Affinity{}) }); n != 0 {
		t.Errorf("priority order: %v allocations per round; want 0", n)
	}
	got := e.openReq(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true,
		ExcludeProviders: []string{"a"}, Continuation: &Continuation{Text: "x"}})
	if got.openErr != nil || got.provider != "b" {
		t.Fatalf("round leaving a out: answered by %q, err %v; want b", got.provider, got.openErr)
	}
	var names []string
	for _, tg := range e.r.order(m, false, false, Affinity{}) {
		names = append(names, tg.p.name)
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("the model's order after a round that left a out: %v; want [a b]", names)
	}
}
