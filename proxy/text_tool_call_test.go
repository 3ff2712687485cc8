package proxy

import (
	"net/http"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonstr"
)

// TestToolCallWrittenAsTextIsNotRun: when a server's tool parser misses a
// call, the model's call reaches the answer as text: Hermes-style
// <tool_call>{"name": …}</tool_call> (NousResearch/hermes-agent#742), or
// Qwen3-Coder's XML with "tool_calls": [] beside it and finish_reason
// "stop" (vLLM's hermes parser, vllm-project/vllm#21571). Such text names
// create_order, but it is words, not a call: nothing runs, no second round
// is asked for, and the bot gets the text as the provider wrote it. Fails
// if paygate ever reads payment calls out of content.
func TestToolCallWrittenAsTextIsNotRun(t *testing.T) {
	for _, tc := range []struct{ name, text, calls string }{
		{"hermes json", "<tool_call>\n{\"name\": \"create_order\", \"arguments\": {\"sku\": \"premium-monthly\"}}\n</tool_call>", ""},
		{"qwen3-coder xml, empty tool_calls", "<tool_call>\n<function=create_order>\n<parameter=sku>\npremium-monthly\n</parameter>\n</function>\n</tool_call>", `,"tool_calls":[]`},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				q := string(jsonstr.Append(nil, tc.text))
				var h http.HandlerFunc
				if stream {
					h = sseHandler(
						roundChunk+`[{"index":0,"delta":{"role":"assistant","content":`+q+tc.calls+`},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")
				} else {
					h = jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":`+q+tc.calls+`},"finish_reason":"stop"}]}`)
				}
				fp := newFakeProvider(t, roundByRound(h, textRound(stream, "Done.")))
				tools := &recordingTools{}
				body := postTurn(t, toolsProxy(t, fp.URL, tools, nil), stream, "")
				if got := tools.executed(); len(got) != 0 {
					t.Errorf("executed %q; want nothing: a call written as text is not a call", got)
				}
				if n := len(fp.requests()); n != 1 {
					t.Errorf("%d upstream requests; want 1", n)
				}
				got := gjson.Get(body, "choices.0.message.content").Str
				if stream {
					got = streamText(body)
				}
				if got != tc.text {
					t.Errorf("the bot got the text %q; want %q", got, tc.text)
				}
			})
		}
	}
}
