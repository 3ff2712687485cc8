package proxy

import (
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/paygate/paygate/accounting"
)

// TestErrorEnvelopeUsageCounted: a 2xx answer that is an error envelope
// (an error and no object or id, as OpenRouter sends once the model has
// started) fails over, and the usage it carries is what the provider
// billed for the work done before it failed: counted to that provider, as
// a malformed answer's usage or a failed Responses stream's is. It was
// counted nowhere, on a forwarded path or on chat completions, nor was
// the usage of a forwarded stream's first event that is such an error.
// An error's usage with an error status is no bill, as before.
func TestErrorEnvelopeUsageCounted(t *testing.T) {
	// 1000 prompt tokens at 2.50 and 5 completion tokens at 10.00 per million.
	billed := []accounting.ModelStats{{Provider: "fake", Model: "vendor/upstream-model", PromptTokens: 1000, CompletionTokens: 5, LLMCost: "0.002550"}}
	for _, tc := range []struct {
		name, path, body string
		status           int
		ctype, answer    string
		want             []accounting.ModelStats
	}{
		{"Responses API answer", "/v1/responses", `{"model":"gpt-test","input":"hi"}`, 200, "application/json",
			`{"error":{"message":"The model failed to finish.","code":"server_error"},"usage":{"input_tokens":1000,"output_tokens":5,"total_tokens":1005}}`, billed},
		{"legacy completion answer", "/v1/completions", `{"model":"gpt-test","prompt":"hi"}`, 200, "application/json",
			`{"error":{"message":"Provider returned error","code":502},"usage":{"prompt_tokens":1000,"completion_tokens":5,"total_tokens":1005}}`, billed},
		{"chat completion answer", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, 200, "application/json",
			`{"error":{"message":"Provider returned error","code":502},"usage":{"prompt_tokens":1000,"completion_tokens":5,"total_tokens":1005}}`, billed},
		{"legacy completion stream's first event", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true}`, 200, "text/event-stream",
			"data: {\"error\":{\"message\":\"Provider returned error\",\"code\":502},\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":5,\"total_tokens\":1005}}\n\n", billed},
		// No usage object, no bill: a null usage (a relay's) or one inside
		// the error records no call, as an error without usage does.
		{"chat completion answer, usage null", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, 200, "application/json",
			`{"error":{"message":"Provider returned error","code":502},"usage":null}`, []accounting.ModelStats{}},
		{"legacy completion stream's first event, usage null", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true}`, 200, "text/event-stream",
			"data: {\"error\":{\"message\":\"Provider returned error\",\"code\":502},\"usage\":null}\n\n", []accounting.ModelStats{}},
		{"chat completion answer, usage inside the error", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, 200, "application/json",
			`{"error":{"message":"Provider returned error","code":502,"usage":{"prompt_tokens":1000,"completion_tokens":5}}}`, []accounting.ModelStats{}},
		{"Responses API error answer", "/v1/responses", `{"model":"gpt-test","input":"hi"}`, 500, "application/json",
			`{"error":{"message":"The model failed to finish.","code":"server_error"},"usage":{"input_tokens":1000,"output_tokens":5,"total_tokens":1005}}`, []accounting.ModelStats{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.answer)
			})
			cfg := pricedConfig(t, fp.URL)
			cfg.Failover.MaxAttempts = 1 // one attempt, one bill
			if got := failedCallAccounted(t, cfg, tc.path, tc.body); !slices.Equal(got, tc.want) {
				t.Errorf("accounted %+v; want %+v", got, tc.want)
			}
		})
	}
}
