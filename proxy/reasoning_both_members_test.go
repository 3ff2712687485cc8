package proxy

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestNonStreamReasoningUnderBothMembers: a provider that writes a
// message's reasoning under both reasoning_content and reasoning (vLLM
// while it moves from one name to the other) gets the earlier rounds'
// reasoning, before the last round's own, under each member, as a
// streaming bot reads every delta of both: also when the last round has
// none (a Qwen3 served by vLLM often thinks nothing after a tool result).
// Only reasoning_content had it: a bot reading reasoning lost the payment
// round's.
func TestNonStreamReasoningUnderBothMembers(t *testing.T) {
	const r0 = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":"The user asks about X1. ","reasoning":"The user asks about X1. ","content":"","tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`
	for _, tc := range []struct{ name, message, want string }{
		{"its own under both", `"reasoning_content":"It is paid.","reasoning":"It is paid.","content":"Yes."`, "The user asks about X1. It is paid."},
		{"none of its own", `"content":"Yes."`, "The user asks about X1. "},
		{"null of its own", `"reasoning_content":null,"reasoning":null,"content":"Yes."`, "The user asks about X1. "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last := `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant",` + tc.message + `},"finish_reason":"stop"}]}`
			fp := newFakeProvider(t, scriptedAnswers(r0, last))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
				map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			for _, key := range []string{"reasoning_content", "reasoning"} {
				if got := gjson.Get(body, "choices.0.message."+key).Str; got != tc.want {
					t.Errorf("%s %q; want %q: %s", key, got, tc.want, body)
				}
			}
		})
	}
}

// TestNonStreamReasoningBesideNullReasoningContent: a provider that writes
// its reasoning under reasoning and leaves reasoning_content null (a
// server that serializes every field, unset ones as null) has the
// reasoning read from reasoning, as the stream capture reads a delta's
// (only a string counts): the null was taken for the round's reasoning,
// so the payment round's went back to the provider without it and the
// answer's reasoning lost it, which a streaming bot reads.
func TestNonStreamReasoningBesideNullReasoningContent(t *testing.T) {
	const r0 = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":null,"reasoning":"The user asks about X1. ","content":"","tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`
	const last = `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":null,"reasoning":"It is paid.","content":"Yes."},"finish_reason":"stop"}]}`
	fp := newFakeProvider(t, scriptedAnswers(r0, last))
	url := statefulProxy(t, fp.URL)
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
		map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	if got, want := gjson.Get(body, "choices.0.message.reasoning").Str, "The user asks about X1. It is paid."; got != want {
		t.Errorf("reasoning %q; want %q: %s", got, want, body)
	}
	if reqs := fp.requests(); len(reqs) != 2 {
		t.Fatalf("%d upstream requests; want 2", len(reqs))
	} else if got := gjson.Get(assistantToolMessage(reqs[1].Body), "reasoning").Str; got != "The user asks about X1. " {
		t.Errorf("the payment round went back with reasoning %q; want %q", got, "The user asks about X1. ")
	}
}
