package proxy

import (
	"slices"
	"testing"
)

// TestNameAfterArgumentsIsAnotherCall: a provider that gives every call
// index 0 and no id (Ollama's OpenAI-compatible stream reused index 0 for
// every call of a round) streams a call's name, then its arguments, then a
// delta naming a call under the same index. Once arguments came, that name
// is another call, never the next piece of the first call's name: the
// stream capture (continuesName) and failover's whole-body assembler, which
// reads such a stream answering a non-stream request (nameGoesOn), both
// split them. The bot's get_time is no whole name of its tools (its
// get_time_zone starts with it), so only the arguments tell the calls
// apart: joined, the bot got "get_timeget_weather" with both calls'
// arguments run together, a call it never made; a payment call after it
// runs once with its own arguments.
func TestNameAfterArgumentsIsAnotherCall(t *testing.T) {
	const tools = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}},` +
		`{"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}},` +
		`{"type":"function","function":{"name":"get_time_zone","parameters":{"type":"object"}}}],`
	call := func(name, args string) string {
		return roundChunk + `[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"` + name + `","arguments":""}}]},"finish_reason":null}]}` + "\n\n" +
			roundChunk + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"` + args + `"}}]},"finish_reason":null}]}` + "\n\n"
	}
	for _, tc := range []struct {
		name     string
		second   string // the second call's name and arguments
		args     string
		bot, ran []string
	}{
		{"the bot's call after the bot's", "get_weather", `{\"city\":\"Paris\"}`,
			[]string{`get_time {}`, `get_weather {"city":"Paris"}`}, nil},
		{"a payment call after the bot's", "create_order", `{\"sku\":\"premium\"}`,
			[]string{`get_time {}`}, []string{`create_order {"sku":"premium"}`}},
	} {
		events := roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n" +
			call("get_time", `{}`) + call(tc.second, tc.args) +
			roundChunk + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n" + "data: [DONE]\n\n"
		for _, stream := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: ", streamed", false: ", not streamed"}[stream], func(t *testing.T) {
				tl := &recordingTools{}
				fp := newFakeProvider(t, eventsThenText(events, stream))
				url := toolsProxy(t, fp.URL, tl, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, tools), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d:\n%s", resp.StatusCode, body)
				}
				if got := botCalls(stream, body); !slices.Equal(got, tc.bot) {
					t.Errorf("the bot got the calls %q; want %q:\n%s", got, tc.bot, body)
				}
				if got := tl.executed(); !slices.Equal(got, tc.ran) {
					t.Errorf("executed %q; want %q", got, tc.ran)
				}
			})
		}
	}
}
