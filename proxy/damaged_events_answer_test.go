package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestEventsAnswerWithALostEventAskedAgain: a non-stream chat request a
// provider answers with chat.completion.chunk events, one of which could
// not be read (a relay's truncated event, skipped as malformed), is no
// answer when it carries a tool call: the lost event may have held a piece
// of the call's arguments, and the pieces left can still be valid ones the
// model did not make. Without the lost `,"quantity":2` paygate bought one;
// now the round is asked again, as it is of events cut before their finish,
// and the call runs as the whole answer has it.
func TestEventsAnswerWithALostEventAskedAgain(t *testing.T) {
	const head = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	args := func(frag string) string {
		return head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + frag + `}}]},"finish_reason":null}]}` + "\n\n"
	}
	events := func(middle string) []string {
		return []string{
			head + `[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\""}}]},"finish_reason":null}]}` + "\n\n",
			middle, args(`"}"`),
			head + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n", "data: [DONE]\n\n"}
	}
	quantity := args(`",\"quantity\":2"`)
	tests := []struct {
		name   string
		middle string
		want   string
		asked  int // upstream requests: the payment round's, then the answer's
	}{
		{"a truncated event", strings.TrimSuffix(quantity, "}\n\n") + "\n\n", `create_order {"sku":"premium-monthly","quantity":2}`, 3},
		// A chunk naming a member the capture reads twice is skipped, as
		// in a stream: it too may have held a piece of the call.
		{"a chunk naming its choices twice", head + `[],"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":",\"quantity\":2"}}]},"finish_reason":null}]}` + "\n\n",
			`create_order {"sku":"premium-monthly","quantity":2}`, 3},
		// A word some servers send as a keep-alive cannot be a chunk: it
		// loses nothing, and the first answer is the answer.
		{"a word", "data: ping\n\n", `create_order {"sku":"premium-monthly"}`, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tools := &recordingTools{}
			answers := []http.HandlerFunc{rawPieces(events(tc.middle)...), textRound(false, "Done.")}
			if tc.asked == 3 { // the payment round asked again
				answers = slices.Insert(answers, 1, rawPieces(events(quantity)...))
			}
			fp := newFakeProvider(t, roundByRound(answers...))
			url := toolsProxy(t, fp.URL, tools, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(false, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d, body %s; want the answer", resp.StatusCode, body)
			}
			if got := tools.executed(); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("executed %q; want %q, once", got, tc.want)
			}
			if n := len(fp.requests()); n != tc.asked {
				t.Errorf("%d upstream requests; want %d", n, tc.asked)
			}
		})
	}
}
