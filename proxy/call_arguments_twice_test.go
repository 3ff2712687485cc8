package proxy

import (
	"strings"
	"testing"
)

// TestPaymentCallArgumentsTwice: a tool call whose function names its
// arguments twice, or in another case, reads one way to paygate and
// another to a JSON parser (JSON.parse and Python's json take the last
// copy, Go's encoding/json the last in any case). A JSON answer so made
// was refused as malformed (README: "a call's id or arguments twice"),
// while the same call streamed ran: create_order with the last copy's
// quantity 12 (the capture's reading) or the exact name's 1 where Go read
// the other spelling's 12. A streamed chunk so made is now skipped, as
// one that names any other member paygate reads twice is, and nothing
// runs in any path; a non-stream request is answered again, as a JSON
// answer so made is, not with a finish of tool calls without a call.
func TestPaymentCallArgumentsTwice(t *testing.T) {
	const (
		one    = `"{\"sku\":\"premium-monthly\",\"quantity\":1}"`
		twelve = `"{\"sku\":\"premium-monthly\",\"quantity\":12}"`
	)
	for _, tc := range []struct{ name, fn string }{
		{"arguments twice", `{"name":"create_order","arguments":` + one + `,"arguments":` + twelve + `}`},
		{"arguments in another case", `{"name":"create_order","arguments":` + one + `,"Arguments":` + twelve + `}`},
	} {
		for _, mode := range []struct {
			name        string
			stream, sse bool
		}{{"json", false, false}, {"events to a non-stream request", false, true}, {"stream", true, true}} {
			t.Run(tc.name+", "+mode.name, func(t *testing.T) {
				first := jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":`+tc.fn+`}]},"finish_reason":"tool_calls"}]}`)
				if mode.sse {
					first = sseHandler(
						roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"c1","type":"function","function":`+tc.fn+`}]},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
				}
				body, tools := weatherBotTurn(t, roundByRound(first, textRound(mode.stream, "How many did you want?"), textRound(mode.stream, "How many did you want?")), mode.stream)
				if got := tools.executed(); len(got) != 0 {
					t.Errorf("executed %q; want nothing run of arguments read two ways\n%s", got, body)
				}
				if strings.Contains(body, "create_order") {
					t.Errorf("the bot got the payment call:\n%s", body)
				}
				if !mode.stream && !strings.Contains(body, "How many did you want?") {
					// Malformed, asked again, as a JSON answer so made is:
					// not a finish of tool calls without a call.
					t.Errorf("the bot did not get the answer asked again:\n%s", body)
				}
			})
		}
	}
}
