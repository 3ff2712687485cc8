package proxy

import (
	"slices"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestRecoveryFreshCallsByID: a stream cut inside the bot's own tool call
// is finished by a provider that names its calls by id alone, without an
// index (Gemini's OpenAI-compatible endpoint), and puts the id where it
// likes in each delta. The fresh answer's deltas of the call the bot
// already has are found by that id, and only the rest of its arguments
// reaches the bot. The id was kept as a view of the event it came in,
// whose buffer the next events reuse: when the id's place in the later
// deltas differed, the call was not found, taken for a new one before the
// sent arguments were repeated, and the stream ended "diverged", in a
// payment turn and on the plain path alike.
func TestRecoveryFreshCallsByID(t *testing.T) {
	const cut = `data: {"id":"p1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	const fresh = `data: {"id":"f1","object":"chat.completion.chunk","created":2,"model":"m","choices":`
	chunk := func(head, delta string) string {
		return head + `[{"index":0,"delta":` + delta + `,"finish_reason":null}]}` + "\n\n"
	}
	for _, path := range []string{"plain", "turn"} {
		t.Run(path, func(t *testing.T) {
			first := newFakeProvider(t, sseHandler(
				chunk(cut, `{"role":"assistant","content":"Let me see. "}`),
				chunk(cut, `{"tool_calls":[{"index":0,"id":"call_w1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}`)))
			other := newFakeProvider(t, sseHandler(
				chunk(fresh, `{"role":"assistant","content":"Let me see. "}`),
				chunk(fresh, `{"tool_calls":[{"id":"call_w2","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]}`),
				chunk(fresh, `{"tool_calls":[{"function":{"arguments":"ty\":"},"id":"call_w2"}]}`),
				chunk(fresh, `{"tool_calls":[{"type":"function","function":{"arguments":"\"Paris\"}"},"id":"call_w2"}]}`),
				fresh+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n"))
			cfg := testConfig(t, first.URL, func(cfg *config.Config) {
				withSecondProvider(other.URL)(cfg)
				cfg.Providers[1].Continuation = "none"
			})
			url, hdr := pathProxy(t, cfg, path)
			resp := post(t, url, "/v1/chat/completions", chatBody(true, weatherTool), hdr)
			body := readAll(t, resp.Body)
			if strings.Contains(body, `"error"`) || !strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]") {
				t.Errorf("the recovered stream did not end well:\n%s", body)
			}
			if got, want := botCalls(true, body), []string{`get_weather {"city":"Paris"}`}; !slices.Equal(got, want) {
				t.Errorf("the bot got the calls %q; want %q:\n%s", got, want, body)
			}
		})
	}
}
