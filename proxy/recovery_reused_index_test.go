package proxy

import (
	"slices"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestRecoveryReusedIndexKeepsCallsApart: a provider that gives every call
// index 0 and no id (or one id for every call, without an index) streams a
// mixed round: a payment call, then the bot's own call, cut inside the
// bot's call. The fresh answer another provider gives repeats the round;
// its bot call, under the payment call's index or id, is the call the bot
// already has, as the capture tells calls apart (a different name is
// another call). Read as the next piece of the payment call, the bot got
// its call a second time under index 1, and the stream then ended
// "diverged": the payment never ran and the bot never got its call whole.
func TestRecoveryReusedIndexKeepsCallsApart(t *testing.T) {
	const cut = `data: {"id":"p1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	const fresh = `data: {"id":"f1","object":"chat.completion.chunk","created":2,"model":"m","choices":`
	chunk := func(head, delta string) string {
		return head + `[{"index":0,"delta":` + delta + `,"finish_reason":null}]}` + "\n\n"
	}
	for _, tc := range []struct {
		name string
		ref  string // how an entry names its call: index or id
	}{
		{"index 0 for every call, no id", `"index":0`},
		{"one id for every call, no index", `"id":"call_x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pay := chunk("", `{"tool_calls":[{`+tc.ref+`,"type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"a\"}"}}]}`)
			bot := chunk("", `{"tool_calls":[{`+tc.ref+`,"type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}`)
			first := newFakeProvider(t, sseHandler(
				chunk(cut, `{"role":"assistant","content":"Let me see. "}`), cut+pay, cut+bot))
			other := newFakeProvider(t, sseHandler(
				chunk(fresh, `{"role":"assistant","content":"Let me see. "}`), fresh+pay, fresh+bot,
				chunk(fresh, `{"tool_calls":[{`+tc.ref+`,"function":{"arguments":"\"Paris\"}"}}]}`),
				fresh+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n"))
			tools := &recordingTools{}
			url := toolsProxy(t, first.URL, tools, func(cfg *config.Config) {
				withSecondProvider(other.URL)(cfg)
				cfg.Providers[1].Continuation = "none"
			})
			resp := post(t, url, "/v1/chat/completions", chatBody(true, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if strings.Contains(body, `"error"`) || !strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]") {
				t.Errorf("the recovered stream did not end well:\n%s", body)
			}
			if got, want := botCalls(true, body), []string{`get_weather {"city":"Paris"}`}; !slices.Equal(got, want) {
				t.Errorf("the bot got the calls %q; want %q, once, under index 0:\n%s", got, want, body)
			}
			if got, want := tools.executed(), []string{`create_order {"sku":"a"}`}; !slices.Equal(got, want) {
				t.Errorf("executed %q; want %q", got, want)
			}
		})
	}
}
