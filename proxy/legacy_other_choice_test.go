package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestLegacyFunctionCallOfAnotherChoice: a legacy function_call naming a
// payment tool (TestLegacyFunctionCallOfPaymentTool) in a choice other
// than the first, which a provider sent though the turn asked for one.
// paygate read the legacy shape in choice 0 only: the bot got choice 1's
// create_order as it came, a call of a function it never defined, though
// such a call in the tools shape is dropped
// (TestPaymentCallOfAnotherChoiceNeverRuns). It is now dropped the same
// way, stream or not: never run, never shown (a choice left without a call
// says "stop"), counted as not_executed; the bot's own function in another
// choice still reaches it as it came.
func TestLegacyFunctionCallOfAnotherChoice(t *testing.T) {
	twoChoices := func(stream bool, name string) http.HandlerFunc {
		if stream {
			return sseHandler(
				roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Premium is 49.99 CNY."},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":1,"delta":{"role":"assistant","content":null,"function_call":{"name":"`+name+`","arguments":""}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":1,"delta":{"function_call":{"arguments":"{\"sku\":"}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":1,"delta":{"function_call":{"arguments":"\"premium\"}"}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":1,"delta":{},"finish_reason":"function_call"}]}`+"\n\n",
				roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
				"data: [DONE]\n\n")
		}
		return jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[`+
			`{"index":0,"message":{"role":"assistant","content":"Premium is 49.99 CNY."},"finish_reason":"stop"},`+
			`{"index":1,"message":{"role":"assistant","content":null,"function_call":{"name":"`+name+`","arguments":"{\"sku\":\"premium\"}"}},"finish_reason":"function_call"}]}`)
	}
	tests := []struct {
		name, called string
		dropped      bool
	}{
		{"a payment tool", "create_order", true},
		{"the bot's own function", "get_weather", false},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, twoChoices(stream, tc.called))
				tools := &recordingTools{}
				s, url := servePaygate(t, testConfig(t, fp.URL, nil), Options{Tools: tools, State: &memState{}}, nil)
				body := postTurn(t, url, stream, weatherTool)
				if got := tools.executed(); len(got) != 0 {
					t.Errorf("executed %q; want none (choice 1's call is not the conversation's)", got)
				}
				if got := len(fp.requests()); got != 1 {
					t.Errorf("%d upstream rounds; want 1", got)
				}
				named := legacyNames(stream, body)
				if tc.dropped {
					if len(named) != 0 {
						t.Errorf("the bot got legacy function calls %q: %s", named, body)
					}
					if !stream {
						if ch := gjson.Get(body, "choices.1"); !ch.Exists() || ch.Get("finish_reason").Str != "stop" {
							t.Errorf("choice 1 %s; want it without its call, finish_reason \"stop\"", ch.Raw)
						}
					}
					if got, named := toolCallsServed(t, s, tc.called, "not_executed"); got != 1 || !named {
						t.Errorf(`/metrics paygate_tool_calls_total{tool=%q,outcome="not_executed"} = %v (named in HELP: %v); want 1, named`, tc.called, got, named)
					}
					return
				}
				if !slices.Equal(named, []string{tc.called}) {
					t.Errorf("the bot got legacy function calls %q; want %q as it came: %s", named, tc.called, body)
				}
			})
		}
	}
}

// legacyNames is every legacy function_call name the bot received, in any
// choice, stream or not.
func legacyNames(stream bool, body string) []string {
	var out []string
	path := "choices.#.message.function_call.name"
	if stream {
		path = "choices.#.delta.function_call.name"
	}
	for _, d := range strings.Split(body, "\n") {
		if stream {
			var ok bool
			if d, ok = strings.CutPrefix(d, "data: "); !ok || d == "[DONE]" {
				continue
			}
		}
		gjson.Get(d, path).ForEach(func(_, n gjson.Result) bool {
			if n.Str != "" {
				out = append(out, n.Str)
			}
			return true
		})
		if !stream {
			break
		}
	}
	return out
}
