package interceptors

import (
	"errors"
	"testing"

	"github.com/tidwall/gjson"
)

func TestReadCompletion(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		base       int
		payment    []ToolCall
		client     []ToolCall
		content    string
		finish     string
		usage      *Usage
		wantCalls  string // the client's tool_calls in the returned body (raw), "" when absent
		wantSameAs bool   // the body comes back byte for byte
	}{
		{
			name: "openai: payment and client calls",
			body: `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
				`{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Xi'an\"}"}},` +
				`{"id":"call_p","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}],"refusal":null},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12},"system_fingerprint":"fp_x"}`,
			base:      1,
			payment:   []ToolCall{{Index: 1, ID: "call_p", Name: "create_order", Arguments: `{"sku":"premium-monthly"}`}},
			client:    []ToolCall{{Index: 1, ID: "call_w", Name: "get_weather", Arguments: `{"city":"Xi'an"}`}},
			finish:    "tool_calls",
			usage:     &Usage{PromptTokens: 9, CompletionTokens: 3, TotalTokens: 12},
			wantCalls: `[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Xi'an\"}"}}]`,
		},
		{
			name: "gemini: only a payment call with a thought signature, finish stop",
			body: `{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"Ordering.","role":"assistant","tool_calls":[{"extra_content":{"google":{"thought_signature":"Ctw="}},"function":{"arguments":"{\"sku\":\"premium-monthly\"}","name":"create_order"},"id":"function-call-1","type":"function"}]}}],"created":1,"id":"g1","model":"gemini-2.5-flash","object":"chat.completion","usage":{"completion_tokens":5,"prompt_tokens":7,"total_tokens":12}}`,
			payment: []ToolCall{{Index: 0, ID: "function-call-1", Name: "create_order", Arguments: `{"sku":"premium-monthly"}`,
				Extra: []byte(`{"extra_content":{"google":{"thought_signature":"Ctw="}}}`)}},
			content: "Ordering.",
			finish:  "stop",
			usage:   &Usage{PromptTokens: 7, CompletionTokens: 5, TotalTokens: 12},
		},
		{
			name:       "text only: body unchanged",
			body:       `{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`,
			content:    "hi",
			finish:     "stop",
			wantSameAs: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, out, err := ReadCompletion([]byte(tc.body), isPaymentName, tc.base)
			if err != nil {
				t.Fatal(err)
			}
			checkCalls(t, "payment", r.PaymentCalls, tc.payment)
			checkCalls(t, "client", r.ClientCalls, tc.client)
			if r.Content != tc.content || r.FinishReason != tc.finish {
				t.Errorf("content, finish = %q, %q; want %q, %q", r.Content, r.FinishReason, tc.content, tc.finish)
			}
			if (r.Usage == nil) != (tc.usage == nil) || r.Usage != nil && *r.Usage != *tc.usage {
				t.Errorf("usage = %+v; want %+v", r.Usage, tc.usage)
			}
			if r.ToolRound() != (len(tc.payment)+len(tc.client) > 0) {
				t.Errorf("ToolRound() = %v", r.ToolRound())
			}
			if !gjson.ValidBytes(out) {
				t.Fatalf("not JSON: %s", out)
			}
			if tc.wantSameAs && string(out) != tc.body {
				t.Errorf("body changed: %s", out)
			}
			if got := gjson.GetBytes(out, "choices.0.message.tool_calls").Raw; got != tc.wantCalls {
				t.Errorf("tool_calls in the body = %s; want %s", got, tc.wantCalls)
			}
			for _, p := range tc.payment {
				if gjson.GetBytes(out, `choices.0.message.tool_calls.#(id=="`+p.ID+`")`).Exists() {
					t.Errorf("payment call %s left in the body", p.ID)
				}
			}
			if got := gjson.GetBytes(out, "usage").Raw; got != gjson.Get(tc.body, "usage").Raw {
				t.Errorf("usage changed: %s", got)
			}
		})
	}
	if _, _, err := ReadCompletion([]byte(`[1]`), isPaymentName, 0); !errors.Is(err, ErrMalformedCompletion) {
		t.Errorf("array body: err = %v; want ErrMalformedCompletion", err)
	}
}
