package proxy

import (
	"slices"
	"testing"
)

// TestLegacyFunctionCallObjectArguments: a legacy function_call naming a
// payment tool whose arguments come as a JSON object, not a string (as
// some providers send a tool call's), runs with that object in every path,
// as a tool call's do: a streamed one ran with none, so create_order asked
// which product the user meant, turn after turn, where the same answer not
// streamed (or a non-stream request answered with events) made the order.
func TestLegacyFunctionCallObjectArguments(t *testing.T) {
	const obj = `{"sku":"premium-monthly","quantity":2}`
	for _, tc := range []struct {
		name        string
		stream, sse bool // the bot's request streams; the provider answers with events
	}{
		{"non-stream", false, false},
		{"non-stream answered with events", false, true},
		{"stream", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":null,"function_call":{"name":"create_order","arguments":`+obj+`}},"finish_reason":"function_call"}]}`)
			if tc.sse {
				first = sseHandler(
					roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null,"function_call":{"name":"create_order","arguments":`+obj+`}},"finish_reason":null}]}`+"\n\n",
					roundChunk+`[{"index":0,"delta":{},"finish_reason":"function_call"}]}`+"\n\n", "data: [DONE]\n\n")
			}
			body, tools := weatherBotTurn(t, roundByRound(first, textRound(tc.stream, "Order O1 is waiting for payment.")), tc.stream)
			if got, want := tools.executed(), []string{"create_order " + obj}; !slices.Equal(got, want) {
				t.Errorf("executed %q; want %q\n%s", got, want, body)
			}
		})
	}
}
