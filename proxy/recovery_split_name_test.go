package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestRecoveryAfterSplitName: a stream cut inside the bot's own tool call
// whose name the provider streamed in pieces ("get_", then "weather", as
// the streamed-name tests' providers do) is finished by another provider
// that names the call whole. The fresh answer repeats the call the bot
// has, so only the rest of its arguments reaches the bot, on the plain path
// as in a payment turn. The plain path kept the first piece alone as the
// name the bot has, and ended the stream "not recovered: the new answer
// diverges". A provider that gives the whole name again before the
// arguments (MiniMax through NVIDIA NIM, Fireworks, Kimi repeat it in every
// delta) is recovered as before, its name not taken for two: also where a
// tool of the bot's extends it (get_weather_forecast), which readSent
// joined into "get_weatherget_weather", a call no fresh answer repeats.
func TestRecoveryAfterSplitName(t *testing.T) {
	const cut = `data: {"id":"p1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	const fresh = `data: {"id":"f1","object":"chat.completion.chunk","created":2,"model":"m","choices":`
	chunk := func(head, delta string) string {
		return head + `[{"index":0,"delta":` + delta + `,"finish_reason":null}]}` + "\n\n"
	}
	const forecastTool = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}},` +
		`{"type":"function","function":{"name":"get_weather_forecast","parameters":{"type":"object"}}}],`
	for _, tc := range []struct{ name, first, second, tools string }{
		{"split name", "get_", "weather", weatherTool},
		{"name given twice", "get_weather", "get_weather", weatherTool},
		{"name given twice, a longer tool of the bot's", "get_weather", "get_weather", forecastTool},
	} {
		for _, path := range []string{"plain", "turn"} {
			t.Run(tc.name+", "+path, func(t *testing.T) {
				first := newFakeProvider(t, sseHandler(
					chunk(cut, `{"role":"assistant","content":null}`),
					chunk(cut, `{"tool_calls":[{"index":0,"id":"call_w1","type":"function","function":{"name":"`+tc.first+`","arguments":""}}]}`),
					chunk(cut, `{"tool_calls":[{"index":0,"function":{"name":"`+tc.second+`"}}]}`),
					chunk(cut, `{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`)))
				other := newFakeProvider(t, sseHandler(
					chunk(fresh, `{"role":"assistant","content":null}`),
					chunk(fresh, `{"tool_calls":[{"index":0,"id":"call_w2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}`),
					chunk(fresh, `{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`),
					fresh+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n"))
				cfg := testConfig(t, first.URL, func(cfg *config.Config) {
					withSecondProvider(other.URL)(cfg)
					cfg.Providers[1].Continuation = "none"
				})
				url, hdr := pathProxy(t, cfg, path)
				body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(true, tc.tools), hdr).Body)
				if strings.Contains(body, `"error"`) || !strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]") {
					t.Fatalf("the recovered stream did not end well:\n%s", body)
				}
				// The call as a client that joins a call's pieces (the
				// Python SDK's accumulate_delta) reads it: the name the
				// provider streamed (paygate's capture may join it), and
				// none from the fresh answer.
				var name, args string
				for _, l := range strings.Split(body, "\n") {
					d, ok := strings.CutPrefix(l, "data: ")
					if !ok || d == "[DONE]" {
						continue
					}
					gjson.Get(d, "choices.0.delta.tool_calls").ForEach(func(_, e gjson.Result) bool {
						name += e.Get("function.name").Str
						args += e.Get("function.arguments").Str
						return true
					})
				}
				if name != "get_weather" && name != tc.first+tc.second || args != `{"city":"Paris"}` {
					t.Errorf("the bot read the call %s %s; want get_weather {\"city\":\"Paris\"}:\n%s", name, args, body)
				}
			})
		}
	}
}
