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

// TestMixedRoundFinishFunctionCall: a mixed round that the provider ended
// with the legacy finish_reason "function_call" (a server answering in the
// legacy shape, its payment call a function_call beside the bot's
// tool_calls, or one labelling a tool round so) handed the bot its own
// tool_calls under "function_call", stream and non-stream: an SDK that
// branches on finish_reason looked for a function_call the message no
// longer had and ran none of the bot's tools. The bot hears "tool_calls"
// (SPEC 3 step 7), and its calls.
func TestMixedRoundFinishFunctionCall(t *testing.T) {
	const weather = `{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}`
	for _, tc := range []struct{ name, message, delta1, delta2 string }{
		{"legacy payment call",
			`"tool_calls":[` + weather + `],"function_call":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}`,
			`"tool_calls":[` + weather + `]`,
			`"function_call":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}`},
		{"tool calls labelled function_call",
			`"tool_calls":[` + weather + `,` + queryCall(1, "call_q", "X1") + `]`,
			`"tool_calls":[` + weather + `]`,
			`"tool_calls":[` + queryCall(1, "call_q", "X1") + `]`},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "/non-stream", true: "/stream"}[stream], func(t *testing.T) {
				var h = jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":null,`+tc.message+`},"finish_reason":"function_call"}]}`)
				if stream {
					h = sseHandler(
						roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null,`+tc.delta1+`},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{`+tc.delta2+`},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{},"finish_reason":"function_call"}]}`+"\n\n", "data: [DONE]\n\n")
				}
				fp := newFakeProvider(t, h)
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if got := botCallIDs(stream, body); len(got) != 1 || got[0] != "call_w" {
					t.Fatalf("the bot got calls %q; want its own, call_w (%d %s)", got, resp.StatusCode, body)
				}
				if len(tools.executed()) != 1 {
					t.Errorf("executed %q; want the round's payment call", tools.executed())
				}
				if fin := answerFinish(stream, body); fin != "tool_calls" {
					t.Errorf("finish_reason %q; want \"tool_calls\": %s", fin, body)
				}
			})
		}
	}
}
