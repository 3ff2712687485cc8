package proxy

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestNonStreamReasoningUnderBothMembers: a provider that writes a
// message's reasoning under both reasoning_content and reasoning (vLLM
// while it moves from one name to the other) gets the earlier rounds'
// reasoning before the last round's under each member, as a streaming bot
// reads every delta of both. Only reasoning_content had it: a bot reading
// reasoning lost the payment round's.
func TestNonStreamReasoningUnderBothMembers(t *testing.T) {
	const r0 = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":"The user asks about X1. ","reasoning":"The user asks about X1. ","content":"","tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`
	const last = `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":"It is paid.","reasoning":"It is paid.","content":"Yes."},"finish_reason":"stop"}]}`
	fp := newFakeProvider(t, scriptedAnswers(r0, last))
	url := statefulProxy(t, fp.URL)
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
		map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	for _, key := range []string{"reasoning_content", "reasoning"} {
		if got, want := gjson.Get(body, "choices.0.message."+key).Str, "The user asks about X1. It is paid."; got != want {
			t.Errorf("%s %q; want %q: %s", key, got, want, body)
		}
	}
}
