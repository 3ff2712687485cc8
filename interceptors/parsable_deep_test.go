package interceptors

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestParsableArgumentsDeeplyNested: a payment call's arguments nested
// deeper than MaxNesting (they come from the model over any number of
// stream events, so no event bound limits them) go back to the provider
// as "{}", decided without a parse that recurses per level: a million
// levels took 128 MB of stack, 16 M passed the runtime's 1 GB limit and
// ended the process. The test runs with a 16 MB stack limit, which such a
// parse exceeds.
func TestParsableArgumentsDeeplyNested(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(16 << 20))
	const depth = 1 << 20
	deep := `{"sku":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
	at := `{"sku":` + strings.Repeat("[", MaxNesting-1) + strings.Repeat("]", MaxNesting-1) + `}`
	got := ParsableArguments([]ToolCall{{ID: "c1", Name: "create_order", Arguments: deep}, {ID: "c2", Name: "create_order", Arguments: at}})
	if got[0].Arguments != "{}" || got[1].Arguments != at {
		t.Fatalf("arguments %.40q, %.40q; want {} for the deep ones, the others as they came", got[0].Arguments, got[1].Arguments)
	}
}
