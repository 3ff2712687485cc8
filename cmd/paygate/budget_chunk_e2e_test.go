package main

import (
	"fmt"
	"strings"
	"testing"
)

// chunkRound renders a streamed round whose one chunk carries every call,
// as a provider sends parallel tool calls whole in one delta.
func chunkRound(id string, calls ...[2]string) scriptRound {
	head := `{"id":"` + id + `","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	var tcs []string
	for i, c := range calls {
		tcs = append(tcs, fmt.Sprintf(`{"index":%d,"id":"call_%d","type":"function","function":{"name":"%s","arguments":"%s"}}`, i, i, c[0], strings.ReplaceAll(c[1], `"`, `\"`)))
	}
	return scriptRound{chunks: []string{
		head + `{"index":0,"delta":{"role":"assistant","content":"On it. ","tool_calls":[` + strings.Join(tcs, ",") + `]},"finish_reason":null}]}`,
		head + `{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
	}}
}

// TestBudgetParallelCallsInOneChunk: parallel create_order calls that
// arrive together in one chunk run no more than max_payment_calls, the
// lowest indexes, and the rest are refused with the next round offered no
// tool; across rounds the turn's count goes on.
func TestBudgetParallelCallsInOneChunk(t *testing.T) {
	three := [][2]string{
		{"create_order", `{"sku":"premium-monthly","quantity":1}`},
		{"create_order", `{"sku":"premium-monthly","quantity":2}`},
		{"create_order", `{"sku":"premium-yearly","quantity":1}`},
	}
	tests := []struct {
		name       string
		extra      string
		rounds     [][][2]string // each round's calls; then a text round
		wantOrders int
	}{
		{name: "default budget of one", rounds: [][][2]string{three}, wantOrders: 1},
		{name: "budget of two", extra: "  budget: {max_payment_calls: 2, max_rounds: 4}\n", rounds: [][][2]string{three}, wantOrders: 2},
		{name: "budget of two across rounds", extra: "  budget: {max_payment_calls: 2, max_rounds: 4}\n",
			rounds: [][][2]string{three[:1], three[1:]}, wantOrders: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			up := newScriptedProvider(t, func(body string) scriptRound {
				defer func() { n++ }()
				if n < len(tc.rounds) {
					return chunkRound(fmt.Sprintf("c%d", n), tc.rounds[n]...)
				}
				return textRound("cz", "Done.")
			})
			url, a := paymentApp(t, up.URL, tc.extra)
			if _, err := streamText(t, userClient(url), "buy"); err != nil {
				t.Fatal(err)
			}
			if got := a.sim.OrderCount(); got != tc.wantOrders {
				t.Errorf("orders at the simulator %d; want %d", got, tc.wantOrders)
			}
			bodies := up.requests()
			last := bodies[len(bodies)-1]
			if refused := strings.Count(last, `\"status\":\"not_executed\"`); refused != 3-tc.wantOrders {
				t.Errorf("%d calls refused in the last round's request; want %d: %s", refused, 3-tc.wantOrders, last)
			}
			if !strings.Contains(last, `"tool_choice":"none"`) {
				t.Errorf("the round after a refusal must run with tool_choice none: %s", last)
			}
		})
	}
}
