package payments_test

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestToolArgumentsTooLargeAreRefusedCheaply: a payment call's arguments
// are a few members ({"sku":…,"quantity":…}), but they come from the model
// over any number of stream events, each within the event bound, so their
// size has none. Arguments of 2 MB nested a million deep were validated
// by a parse that recurses per level: 128 MB of stack, and at 16 M levels
// (four events of the provider's stream) past the runtime's 1 GB limit, a
// fatal error that ended the process. They are now refused, as arguments
// that are no object are, with a clarification and no call executed.
// The test runs with a 16 MB stack limit, which such a parse exceeds.
func TestToolArgumentsTooLargeAreRefusedCheaply(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(16 << 20))
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	const depth = 1 << 20
	for _, tc := range []struct{ name, tool, args string }{
		{"nested", "create_order", `{"sku":"premium-monthly","x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`},
		{"long", "query_order", `{"order_no":"` + strings.Repeat("a", 2<<20) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, tools, caller("oUser-args-"+tc.name), tc.tool, tc.args)
			if !got.out.Clarify || got.out.Executed || got.result["status"] != "needs_clarification" {
				t.Fatalf("outcome %+v, result %v; want a clarification, nothing executed", got.out, got.result)
			}
		})
	}
}
