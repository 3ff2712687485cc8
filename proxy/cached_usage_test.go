package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestCachedPromptTokensPriced: providers bill the prompt tokens they serve
// from their prompt cache, which paygate keeps hitting (SPEC 3: the bot's
// prefix is left unchanged), at a fraction of the input price, and report
// them in the usage, each in its own place: OpenAI (and OpenRouter, Qwen on
// DashScope, xAI) in prompt_tokens_details.cached_tokens, DeepSeek in
// prompt_cache_hit_tokens, Moonshot (Kimi) in a top-level cached_tokens
// (streamed inside the finish chunk's choice), the Responses API in
// input_tokens_details.cached_tokens. paygate read none of them and priced
// every prompt token at the input price: gpt-4o-mini's 10,000 prompt tokens
// of which 9,000 cached, with 100 completion tokens, cost 0.001560 in the
// LLM spend, paygate_llm_cost_total and the cost per completed transaction,
// where the provider billed 0.000885. Every path that accounts usage now
// prices the cached tokens at the model's cached_input price.
func TestCachedPromptTokensPriced(t *testing.T) {
	const counts = `"prompt_tokens":10000,"completion_tokens":100,"total_tokens":10100`
	formats := []struct {
		name, usage string
		inChoice    bool // streamed in the finish chunk's choice, as Moonshot does
	}{
		{"openai", `{` + counts + `,"prompt_tokens_details":{"cached_tokens":9000,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}`, false},
		{"deepseek", `{` + counts + `,"prompt_tokens_details":{"cached_tokens":9000},"prompt_cache_hit_tokens":9000,"prompt_cache_miss_tokens":1000}`, false},
		{"deepseek without the details", `{` + counts + `,"prompt_cache_hit_tokens":9000,"prompt_cache_miss_tokens":1000}`, false},
		{"moonshot", `{` + counts + `,"cached_tokens":9000}`, true},
	}
	const model = `"model":"vendor/upstream-model"`
	answer := func(usage string) http.HandlerFunc {
		return jsonHandler(http.StatusOK, `{"id":"c1","object":"chat.completion","created":1,`+model+`,`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":`+usage+`}`)
	}
	stream := func(usage string, inChoice bool) http.HandlerFunc {
		chunk := `data: {"id":"c1","object":"chat.completion.chunk","created":1,` + model + `,"choices":`
		if inChoice {
			return sseHandler(
				chunk+`[{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}`+"\n\n",
				chunk+`[{"index":0,"delta":{},"finish_reason":"stop","usage":`+usage+`}]}`+"\n\n",
				"data: [DONE]\n\n")
		}
		return sseHandler(
			chunk+`[{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}`+"\n\n",
			chunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
			chunk+`[],"usage":`+usage+`}`+"\n\n",
			"data: [DONE]\n\n")
	}
	const responsesUsage = `{"input_tokens":10000,"input_tokens_details":{"cached_tokens":9000},"output_tokens":100,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":10100}`
	user := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	type testCase struct {
		name, path, body string
		hdr              map[string]string // the end user: the turn loop; none: the plain path
		provider         http.HandlerFunc
	}
	var tests []testCase
	for _, f := range formats {
		tests = append(tests,
			testCase{f.name + ", turn, non-stream", "/v1/chat/completions", chatBody(false, ""), user, answer(f.usage)},
			testCase{f.name + ", turn, stream", "/v1/chat/completions", chatBody(true, ""), user, stream(f.usage, f.inChoice)},
			testCase{f.name + ", plain, non-stream", "/v1/chat/completions", chatBody(false, ""), nil, answer(f.usage)},
			testCase{f.name + ", plain, stream", "/v1/chat/completions", chatBody(true, ""), nil, stream(f.usage, f.inChoice)},
		)
	}
	tests = append(tests,
		testCase{"forwarded completion", "/v1/completions", `{"model":"gpt-test","prompt":"hi"}`, nil,
			jsonHandler(http.StatusOK, `{"id":"cmpl-1","object":"text_completion","created":1,`+model+`,`+
				`"choices":[{"index":0,"text":"hello","finish_reason":"stop"}],"usage":`+formats[0].usage+`}`)},
		testCase{"forwarded response", "/v1/responses", `{"model":"gpt-test","input":"hi"}`, nil,
			jsonHandler(http.StatusOK, `{"id":"resp_1","object":"response","status":"completed",`+model+`,`+
				`"output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hello"}]}],`+
				`"usage":`+responsesUsage+`}`)},
		testCase{"forwarded response, stream", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`, nil,
			sseHandler("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hello\"}\n\n",
				"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":"+responsesUsage+"}}\n\n")},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.provider)
			var tools PaymentTools
			if tc.hdr != nil {
				tools = &recordingTools{}
			}
			cfg := testConfig(t, fp.URL, func(c *config.Config) {
				// gpt-4o-mini's prices: 0.15 a million prompt tokens, 0.075
				// cached, 0.60 output.
				c.Providers[0].Prices = map[string]config.Price{"vendor/upstream-model": {
					Input: config.Decimal{Text: "0.15", Micros: 150_000}, CachedInput: config.Decimal{Text: "0.075", Micros: 75_000},
					Output: config.Decimal{Text: "0.60", Micros: 600_000}}}
			})
			s, ledger, reg := ledgerProxy(t, cfg, nil, tools)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := post(t, srv.URL, tc.path, tc.body, tc.hdr)
			if b := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || !strings.Contains(b, "hello") {
				t.Fatalf("the bot got %d %s", resp.StatusCode, b)
			}
			handled.Wait()
			// 1,000×0.15 + 9,000×0.075 + 100×0.60, per million.
			if got := ledger.Stats().LLMCost; got != "0.000885" {
				t.Errorf("LLM spend %s; want 0.000885 (9,000 of the 10,000 prompt tokens at the cached price)", got)
			}
			if got := tokensCounted(t, reg, "prompt"); got != 10_000 {
				t.Errorf("prompt tokens counted %v; want 10000", got)
			}
			if got := tokensCounted(t, reg, "cached_prompt"); got != 9_000 {
				t.Errorf("cached prompt tokens counted %v; want 9000", got)
			}
		})
	}
}
