package proxy

import (
	"strings"
	"testing"
)

// TestLegacyFunctionCallOfAnotherChoiceInPieces: a legacy function_call in
// a choice other than the first whose name a provider streams in pieces
// ("create_", then "order") is held while its name may grow, as choice 0's
// is: a payment tool's is dropped (TestLegacyFunctionCallOfAnotherChoice),
// and one of the bot's own reaches it named whole. Read from its first
// piece, "create_" was taken for the bot's own and every piece went out:
// the bot's SDK joined a call of create_order, a payment tool.
func TestLegacyFunctionCallOfAnotherChoiceInPieces(t *testing.T) {
	for _, tc := range []struct {
		name, last, want string
	}{
		{"a payment tool", "order", ""},
		{"the bot's own function", "invoice", "create_invoice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, sseHandler(
				roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Premium is 49.99 CNY."},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":1,"delta":{"role":"assistant","content":null,"function_call":{"name":"create_","arguments":""}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":1,"delta":{"function_call":{"name":"`+tc.last+`"}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":1,"delta":{"function_call":{"arguments":"{\"sku\":\"premium\"}"}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":1,"delta":{},"finish_reason":"function_call"}]}`+"\n\n",
				roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
				"data: [DONE]\n\n"))
			tools := &recordingTools{}
			_, url := servePaygate(t, testConfig(t, fp.URL, nil), Options{Tools: tools, State: &memState{}}, nil)
			body := postTurn(t, url, true, weatherTool)
			if got := tools.executed(); len(got) != 0 {
				t.Errorf("executed %q; want none (choice 1's call is not the conversation's)", got)
			}
			// The name the bot's SDK joins from the pieces.
			if got := strings.Join(legacyNames(true, body), ""); got != tc.want {
				t.Errorf("the bot got a legacy function call named %q; want %q: %s", got, tc.want, body)
			}
		})
	}
}
