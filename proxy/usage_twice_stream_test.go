package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestStreamedUsageCountedTwiceKeepsTheAnswer: a payment turn's last
// chunk that carries the answer's last words (or the bot's own tool call)
// with its finish and a usage that names a count twice (Gemini and others
// send all three in one chunk) reaches the bot whole: only its usage is
// read two ways, so only the usage may change. The chunk was skipped as
// ambiguous, and the bot got the answer cut short, or a "tool_calls"
// finish without its call, under a finish paygate made up, with no error.
// The bot's usage is then the counts paygate booked (the first copy),
// rendered by paygate, not the provider's object whose last copy its
// parser would read.
func TestStreamedUsageCountedTwiceKeepsTheAnswer(t *testing.T) {
	const head = `data: {"id":"u1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	const usage = `"usage":{"prompt_tokens":10,"completion_tokens":2,"completion_tokens":900,"total_tokens":12}}` + "\n\n"
	tests := []struct {
		name, last string
		tools      string
		want       func(body string) bool
	}{
		{"text", head + `[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}],` + usage, "",
			func(body string) bool { return strings.Contains(body, `" world"`) }},
		{"a choice's usage (Moonshot)", head + `[{"index":0,"delta":{"content":" world"},"finish_reason":"stop",` + strings.TrimSuffix(usage, "}\n\n") + "}]}\n\n", "",
			func(body string) bool { return strings.Contains(body, `" world"`) }},
		{"the bot's own call", head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],` + usage, weatherTool,
			func(body string) bool { return strings.Contains(body, `get_weather`) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, rawPieces(
				head+`[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`+"\n\n",
				tc.last, "data: [DONE]\n\n"))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(true, tc.tools+`"stream_options":{"include_usage":true},`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if !tc.want(body) {
				t.Fatalf("stream %s; want the last chunk's words or call", body)
			}
			var u gjson.Result
			for _, line := range strings.Split(body, "\n") {
				if d, ok := strings.CutPrefix(line, "data: "); ok && gjson.Get(d, "usage").IsObject() {
					u = gjson.Get(d, "usage")
				}
			}
			if strings.Count(u.Raw, "completion_tokens") != 1 || u.Get("completion_tokens").Int() != 2 {
				t.Errorf("usage %s; want the counts paygate read (completion_tokens 2), named once", u.Raw)
			}
		})
	}
}
