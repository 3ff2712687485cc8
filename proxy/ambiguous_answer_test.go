package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// payCallArr and weatherCallArr are tool_calls arrays of one call: paygate's
// create_order, the bot's get_weather.
const (
	payCallArr     = `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
	weatherCallArr = `[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]`
)

// TestAmbiguousAnswerNotRead: an upstream answer that names a member paygate
// reads twice (two "tool_calls" in a message, two "choices"), or spells it
// in another case ("Tool_calls"), is read one way by paygate (gjson and
// its walkers take the first copy, and only the exact name) and another by
// the bot (JSON.parse and encoding/json take the last, and encoding/json
// any case): paygate ran a create_order the bot's parser never saw, or
// handed the bot a create_order paygate never held. A chat.completion so
// made is malformed, asked again (here answered plainly) and never read; a
// streamed chunk so made is skipped, as a malformed event is (SPEC 5).
// Either way nothing runs, and the bot sees no call of either copy.
func TestAmbiguousAnswerNotRead(t *testing.T) {
	const head = `{"id":"c0","object":"chat.completion","created":1,"model":"m0",`
	nonStream := []struct{ name, answer string }{
		{"tool_calls twice, the payment call first", head + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":` + payCallArr + `,"tool_calls":` + weatherCallArr + `},"finish_reason":"tool_calls"}]}`},
		{"tool_calls twice, the payment call last", head + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":` + weatherCallArr + `,"tool_calls":` + payCallArr + `},"finish_reason":"tool_calls"}]}`},
		{"choices twice", head + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":` + payCallArr + `},"finish_reason":"tool_calls"}],` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`},
		{"message twice", head + `"choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"message":{"role":"assistant","content":null,"tool_calls":` + payCallArr + `},"finish_reason":"stop"}]}`},
		{"tool_calls in another case", head + `"choices":[{"index":0,"message":{"role":"assistant","content":"Hi.","Tool_calls":` + payCallArr + `},"finish_reason":"stop"}]}`},
		{"a call's id twice", head + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`},
	}
	for _, tc := range nonStream {
		t.Run("non-stream, "+tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(jsonHandler(200, tc.answer), textRound(false, "Hello.")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			resp := post(t, url, "/v1/chat/completions", chatBodyWith(false, weatherTool, `{"role":"user","content":"buy premium"}`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusOK || gjson.Get(body, "choices.0.message.content").Str != "Hello." {
				t.Errorf("the bot got %d %s; want the answer asked again, Hello.", resp.StatusCode, body)
			}
			if got := tools.executed(); len(got) != 0 {
				t.Errorf("executed %q; want nothing", got)
			}
			if n := len(fp.requests()); n != 2 {
				t.Errorf("%d upstream requests; want the ambiguous answer's and the one asked again", n)
			}
		})
	}

	const chunk = `data: {"id":"c0","object":"chat.completion.chunk","created":1,"model":"m0",`
	role := chunk + `"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n"
	rest := chunk + `"choices":[{"index":0,"delta":{"content":"Hello."},"finish_reason":null}]}` + "\n\n" +
		chunk + `"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" + "data: [DONE]\n\n"
	streamed := []struct{ name, chunk string }{
		{"tool_calls twice in a delta", chunk + `"choices":[{"index":0,"delta":{"tool_calls":` + payCallArr + `,"tool_calls":` + weatherCallArr + `},"finish_reason":null}]}`},
		{"tool_calls twice, the payment call last", chunk + `"choices":[{"index":0,"delta":{"tool_calls":` + weatherCallArr + `,"tool_calls":` + payCallArr + `},"finish_reason":null}]}`},
		{"choices twice", chunk + `"choices":[{"index":0,"delta":{"tool_calls":` + payCallArr + `},"finish_reason":null}],"choices":[{"index":0,"delta":{"content":"Hi."},"finish_reason":null}]}`},
		{"delta twice", chunk + `"choices":[{"index":0,"delta":{"content":"Hi."},"delta":{"tool_calls":` + payCallArr + `},"finish_reason":null}]}`},
		{"tool_calls in another case", chunk + `"choices":[{"index":0,"delta":{"content":"Hi.","Tool_calls":` + payCallArr + `},"finish_reason":null}]}`},
		{"delta in another case beside text", chunk + `"choices":[{"index":0,"delta":{"content":"Hi."},"Delta":{"tool_calls":` + payCallArr + `},"finish_reason":null}]}`},
	}
	for _, tc := range streamed {
		t.Run("stream, "+tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(sseHandler(role, tc.chunk+"\n\n", rest), textRound(true, "Again.")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			resp := post(t, url, "/v1/chat/completions", chatBodyWith(true, weatherTool, `{"role":"user","content":"buy premium"}`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if got := tools.executed(); len(got) != 0 {
				t.Errorf("executed %q; want nothing", got)
			}
			if strings.Contains(body, "create_order") || strings.Contains(body, "get_weather") {
				t.Errorf("the bot got a call of the ambiguous chunk: %s", body)
			}
			if got := streamText(body); got != "Hello." {
				t.Errorf("the bot read %q; want the round's text without the skipped chunk's: %s", got, body)
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("%d upstream requests; want 1", n)
			}
		})
	}
}
