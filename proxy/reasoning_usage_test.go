package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestReasoningOutsideCompletionTokensPriced: xAI (Grok) and Gemini's
// OpenAI-compatible API count a reasoning model's thinking in total_tokens
// but not in completion_tokens (xAI: "counted separately from
// completion_tokens, but ... in the total_tokens"), and bill it as output.
// paygate priced prompt_tokens and completion_tokens alone, so such a
// round's thinking, often most of its output, cost nothing: the LLM spend
// and the cost per completed transaction came out several times too low.
// The excess of total_tokens over prompt plus completion is now counted,
// and priced, as completion tokens, on every path that accounts usage.
func TestReasoningOutsideCompletionTokensPriced(t *testing.T) {
	// xAI's documented example: 32 prompt, 9 completion, 94 reasoning.
	xai := `{"prompt_tokens":32,"completion_tokens":9,"total_tokens":135,"completion_tokens_details":{"reasoning_tokens":94}}`
	answer := jsonHandler(http.StatusOK, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":`+xai+`}`)
	// Gemini's OpenAI-compatible stream: a usage on every chunk, the
	// thinking only in the total; the last one is the round's.
	chunk := func(delta, finish, usage string) string {
		return `data: {"id":"g1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":` +
			delta + `,"finish_reason":` + finish + `}],"usage":` + usage + "}\n\n"
	}
	gemini := sseHandler(
		chunk(`{"role":"assistant","content":"hel"}`, "null", `{"completion_tokens":1,"prompt_tokens":9,"total_tokens":103}`),
		chunk(`{"content":"lo"}`, "null", `{"completion_tokens":3,"prompt_tokens":9,"total_tokens":105}`),
		chunk(`{}`, `"stop"`, `{"completion_tokens":5,"prompt_tokens":9,"total_tokens":107}`),
		"data: [DONE]\n\n")
	legacy := jsonHandler(http.StatusOK, `{"id":"cmpl-1","object":"text_completion","created":1,"model":"vendor/upstream-model",`+
		`"choices":[{"index":0,"text":"hello","finish_reason":"stop"}],"usage":`+xai+`}`)
	user := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	tests := []struct {
		name, path, body string
		hdr              map[string]string // the end user: the turn loop; none: the plain path
		provider         http.HandlerFunc
		prompt, out      float64
		cost             string
	}{
		{"turn, non-stream", "/v1/chat/completions", chatBody(false, ""), user, answer, 32, 9 + 94, "0.001110"},
		{"turn, stream", "/v1/chat/completions", chatBody(true, ""), user, gemini, 9, 5 + 93, "0.0010025"},
		{"plain, non-stream", "/v1/chat/completions", chatBody(false, ""), nil, answer, 32, 9 + 94, "0.001110"},
		{"plain, stream", "/v1/chat/completions", chatBody(true, ""), nil, gemini, 9, 5 + 93, "0.0010025"},
		{"forwarded completion", "/v1/completions", `{"model":"gpt-test","prompt":"hi"}`, nil, legacy, 32, 9 + 94, "0.001110"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.provider)
			var tools PaymentTools
			if tc.hdr != nil {
				tools = &recordingTools{}
			}
			s, ledger, reg := ledgerProxy(t, pricedConfig(t, fp.URL), nil, tools)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := post(t, srv.URL, tc.path, tc.body, tc.hdr)
			if b := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || !strings.Contains(b, "hel") {
				t.Fatalf("the bot got %d %s", resp.StatusCode, b)
			}
			handled.Wait()
			if got := tokensCounted(t, reg, "prompt"); got != tc.prompt {
				t.Errorf("prompt tokens counted %v; want %v", got, tc.prompt)
			}
			if got := tokensCounted(t, reg, "completion"); got != tc.out {
				t.Errorf("completion tokens counted %v; want %v (the reasoning counted only in total_tokens included)", got, tc.out)
			}
			if got := ledger.Stats().LLMCost; got != tc.cost {
				t.Errorf("LLM spend %s; want %s (2.50 a million prompt tokens, 10.00 a million output tokens, reasoning included)", got, tc.cost)
			}
		})
	}
}
