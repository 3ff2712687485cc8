package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// A mixed round cut by max_tokens keeps "length", stream and non-stream, as
// a round of the bot's calls alone does (stopForCalls): the bot's own call
// may be cut, and the bot must not run it as if whole.
func TestMixedRoundKeepsLength(t *testing.T) {
	t.Run("stream", func(t *testing.T) {
		fp := newFakeProvider(t, sseHandler(
			roundChunk+`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_p","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Sh"}}]},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{},"finish_reason":"length"}]}`+"\n\n", "data: [DONE]\n\n"))
		url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
		body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,`+weatherTool+`"messages":[{"role":"user","content":"x"}]}`,
			map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
		fin := ""
		for _, l := range strings.Split(body, "\n") {
			if d, ok := strings.CutPrefix(l, "data: "); ok {
				if f := gjson.Get(d, "choices.0.finish_reason").Str; f != "" {
					fin = f
				}
			}
		}
		if fin != "length" {
			t.Errorf("finish_reason %q; want \"length\" (the bot's call is cut)", fin)
		}
	})
	t.Run("non-stream", func(t *testing.T) {
		fp := newFakeProvider(t, scriptedAnswers(`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}},{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Sh"}}]},"finish_reason":"length"}]}`))
		url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
		body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test",`+weatherTool+`"messages":[{"role":"user","content":"x"}]}`,
			map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
		if got := gjson.Get(body, "choices.0.finish_reason").Str; got != "length" {
			t.Errorf("finish_reason %q; want \"length\": %s", got, body)
		}
	})
}
