package proxy

import (
	"slices"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestRecoveryFreshAnswerWithNullCallMembers: a stream cut after its first
// byte is finished by a fresh answer (continuation: none) from a server
// that writes every delta's call members out empty, "tool_calls": null and
// "function_call": null (LiteLLM's proxy), or "tool_calls": [], beside its
// text. Such a delta carries no call: it repeats the text the bot already
// has, and only the rest reaches the bot. Read as the answer turning to
// tools before repeating the text (or before repeating the bot's call),
// every such recovery ended "not recovered: the new answer diverges", on
// the plain path and in a payment turn.
func TestRecoveryFreshAnswerWithNullCallMembers(t *testing.T) {
	const cut = `data: {"id":"p1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	const fresh = `data: {"id":"f1","object":"chat.completion.chunk","created":2,"model":"m","choices":`
	chunk := func(head, delta string) string {
		return head + `[{"index":0,"delta":` + delta + `,"finish_reason":null}]}` + "\n\n"
	}
	finish := func(reason string) string {
		return fresh + `[{"index":0,"delta":{},"finish_reason":"` + reason + `"}]}` + "\n\n"
	}
	const call = `{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}`
	for _, empty := range []string{`"function_call":null,"tool_calls":null`, `"tool_calls":[]`} {
		tests := []struct {
			name        string
			first, then []string // the cut answer; the fresh one
			text        string   // the bot's text
			calls       []string // the bot's calls
		}{
			{"text",
				[]string{chunk(cut, `{"role":"assistant","content":"The answer "}`), chunk(cut, `{"content":"is forty"}`)},
				[]string{chunk(fresh, `{"role":"assistant","content":"The answer ",`+empty+`}`),
					chunk(fresh, `{"content":"is forty",`+empty+`}`), chunk(fresh, `{"content":"-two.",`+empty+`}`),
					finish("stop"), "data: [DONE]\n\n"},
				"The answer is forty-two.", nil},
			{"the bot's call",
				[]string{chunk(cut, `{"role":"assistant","content":"Checking. "}`), chunk(cut, `{"tool_calls":[`+call+`]}`)},
				[]string{chunk(fresh, `{"role":"assistant","content":"Checking. ",`+empty+`}`),
					chunk(fresh, `{"function_call":null,"tool_calls":[`+strings.Replace(call, `{\"city\":`, `{\"ci`, 1)+`]}`),
					chunk(fresh, `{"function_call":null,"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]}`),
					finish("tool_calls"), "data: [DONE]\n\n"},
				"Checking. ", []string{`get_weather {"city":"Paris"}`}},
		}
		for _, tc := range tests {
			for _, path := range []string{"plain", "turn"} {
				t.Run(empty+"/"+tc.name+"/"+path, func(t *testing.T) {
					first := newFakeProvider(t, sseHandler(tc.first...))
					other := newFakeProvider(t, sseHandler(tc.then...))
					mutate := func(cfg *config.Config) {
						withSecondProvider(other.URL)(cfg)
						cfg.Providers[1].Continuation = "none"
					}
					var url string
					var hdr map[string]string
					if path == "plain" {
						url, _ = newTestProxy(t, testConfig(t, first.URL, mutate))
					} else {
						url = toolsProxy(t, first.URL, &recordingTools{}, mutate)
						hdr = map[string]string{"X-WeChat-OpenID": "o-user-1"}
					}
					body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(true, weatherTool), hdr).Body)
					if strings.Contains(body, `"error"`) || !strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]") {
						t.Fatalf("the recovered stream did not end well:\n%s", body)
					}
					if got := streamText(body); got != tc.text {
						t.Errorf("the bot's text is %q; want %q", got, tc.text)
					}
					// botCalls reads a null tool_calls as a call; none is.
					got := botCalls(true, strings.ReplaceAll(body, `"tool_calls":null`, `"tool_calls":[]`))
					if !slices.Equal(got, tc.calls) {
						t.Errorf("the bot got the calls %q; want %q:\n%s", got, tc.calls, body)
					}
				})
			}
		}
	}
}

// TestRecoveryAfterNullCallMembers: a plain stream (no payment tools) from
// a server that writes every delta's call members out empty beside its
// text ("tool_calls": null, "function_call": null: LiteLLM's proxy) is cut
// after its first byte: the bot has text and no call, so the answer is
// continued elsewhere. Each null was read as part of a call the bot had
// received, and every such stream ended "not recovered: the client already
// received part of a tool call" (outcome partial_tool_call). A payment
// turn recovered it already; it is checked beside.
func TestRecoveryAfterNullCallMembers(t *testing.T) {
	const cut = `data: {"id":"p1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	const fresh = `data: {"id":"f1","object":"chat.completion.chunk","created":2,"model":"m","choices":`
	chunk := func(head, delta string) string {
		return head + `[{"index":0,"delta":` + delta + `,"finish_reason":null}]}` + "\n\n"
	}
	for _, empty := range []string{`"function_call":null,"tool_calls":null`, `"tool_calls":null`, `"function_call":null`} {
		for _, path := range []string{"plain", "turn"} {
			t.Run(empty+"/"+path, func(t *testing.T) {
				first := newFakeProvider(t, sseHandler(
					chunk(cut, `{"role":"assistant","content":"The answer ",`+empty+`}`),
					chunk(cut, `{"content":"is forty",`+empty+`}`)))
				other := newFakeProvider(t, sseHandler(
					chunk(fresh, `{"role":"assistant","content":"-two.",`+empty+`}`),
					fresh+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n"))
				mutate := func(cfg *config.Config) {
					withSecondProvider(other.URL)(cfg)
					cfg.Providers[1].Continuation = "prefill"
				}
				var url string
				var hdr map[string]string
				if path == "plain" {
					url, _ = newTestProxy(t, testConfig(t, first.URL, mutate))
				} else {
					url = toolsProxy(t, first.URL, &recordingTools{}, mutate)
					hdr = map[string]string{"X-WeChat-OpenID": "o-user-1"}
				}
				body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(true, ""), hdr).Body)
				if strings.Contains(body, `"error"`) || !strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]") {
					t.Fatalf("the stream was not recovered:\n%s", body)
				}
				if got, want := streamText(body), "The answer is forty-two."; got != want {
					t.Errorf("the bot's text is %q; want %q", got, want)
				}
				if n := len(other.requests()); n != 1 {
					t.Errorf("the other provider was asked %d times; want 1", n)
				}
			})
		}
	}
}
