package proxy

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"
)

// scriptedAnswers answers the n-th request with bodies[n] (the last one
// again after that).
func scriptedAnswers(bodies ...string) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(bodies)-1)
		jsonHandler(200, bodies[i])(w, r)
	}
}

// TestNonStreamAnswerCarriesEveryRoundsText: the one chat.completion of a
// multi-round turn says what a streaming client reads: the text the model
// wrote before its payment call, then the rest; and with the bot's own
// tool call, finish_reason "tool_calls" even when the provider (Gemini)
// ends the round with "stop".
func TestNonStreamAnswerCarriesEveryRoundsText(t *testing.T) {
	const r0 = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Let me check order X1. ","tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`
	tests := []struct {
		name, last, wantContent, wantFinish string
	}{
		{"words", `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"It is paid."},"finish_reason":"stop"}]}`,
			"Let me check order X1. It is paid.", "stop"},
		{"the bot's own call, ended with stop", `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"And the weather:","tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},"finish_reason":"stop"}]}`,
			"Let me check order X1. And the weather:", "tool_calls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, scriptedAnswers(r0, tc.last))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],`+
				`"messages":[{"role":"user","content":"is X1 paid?"}]}`, map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if got := gjson.Get(body, "choices.0.message.content").Str; got != tc.wantContent {
				t.Errorf("content %q; want %q", got, tc.wantContent)
			}
			if got := gjson.Get(body, "choices.0.finish_reason").Str; got != tc.wantFinish {
				t.Errorf("finish_reason %q; want %q", got, tc.wantFinish)
			}
		})
	}
	t.Run("one round ending with stop on the bot's call", func(t *testing.T) {
		fp := newFakeProvider(t, scriptedAnswers(`{"id":"c1","object":"chat.completion","created":1,"model":"gemini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},"finish_reason":"stop"}]}`))
		url := statefulProxy(t, fp.URL)
		resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],`+
			`"messages":[{"role":"user","content":"weather?"}]}`, map[string]string{"X-WeChat-OpenID": "o-user-1"})
		body := readAll(t, resp.Body)
		if got := gjson.Get(body, "choices.0.finish_reason").Str; got != "tool_calls" {
			t.Errorf("finish_reason %q; want tool_calls: %s", got, body)
		}
		if got := gjson.Get(body, "choices.0.message.content").Raw; got != "null" {
			t.Errorf("content %s; want the provider's null", got)
		}
	})
}
