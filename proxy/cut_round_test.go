package proxy

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestCutRoundRunsNoPaymentCall: a round the provider says it cut
// (finish_reason "length" at max_tokens, "content_filter" mid-answer)
// carries its tool calls as far as they got, and a server that auto-closes
// the partial JSON of a cut call (vLLM sends what its partial-JSON parser
// made of it at the end of the stream) hands on arguments that parse:
// `{"sku":"premium-monthly","quantity":1}` of a model that was writing
// 12, or of a SKU whose name went on. Such a payment call ran, an order
// made and announced, where the bot's own calls of a cut round keep the
// "length" that tells it not to run them (TestMixedRoundKeepsLength). None
// runs: the model is told the call was cut and asks the user, stream and
// non-stream.
func TestCutRoundRunsNoPaymentCall(t *testing.T) {
	const call = `[{"index":0,"id":"call_p","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"quantity\":1}"}}]`
	for _, finish := range []string{"length", "content_filter"} {
		for _, stream := range []bool{false, true} {
			t.Run(finish+map[bool]string{false: "/non-stream", true: "/stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(
					endedRound(stream, nil, `{"role":"assistant","content":null`, call, finish),
					textRound(stream, "How many months would you like?")))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				if got := tools.executed(); len(got) != 0 {
					t.Errorf("executed %q from a round cut with %q; want none", got, finish)
				}
				reqs := fp.requests()
				if len(reqs) != 2 {
					t.Fatalf("%d upstream rounds; want 2 (the model told the call was cut)", len(reqs))
				}
				result := gjson.GetBytes(reqs[1].Body, `messages.#(role=="tool").content`).Str
				if gjson.Get(result, "status").Str != "not_executed" {
					t.Errorf("the model's tool result %q; want not_executed", result)
				}
			})
		}
	}
}
