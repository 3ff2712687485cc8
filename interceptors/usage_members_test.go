package interceptors

import (
	"encoding/json"
	"testing"
)

// TestAppendUsageSumsEveryMember: over several rounds every member a
// provider reports is kept: numbers summed (DeepSeek's
// prompt_cache_hit_tokens / prompt_cache_miss_tokens, OpenRouter's cost),
// anything else the last round's value, objects member by member at every
// depth ("*_details", OpenRouter's cost_details, Perplexity's cost object,
// DashScope's cache_creation inside prompt_tokens_details); no key no
// round sent.
func TestAppendUsageSumsEveryMember(t *testing.T) {
	for _, tc := range []struct {
		name string
		sum  Usage
		objs []string
		want string
	}{
		{"deepseek cache hit and miss", Usage{30, 10, 40, 0},
			[]string{
				`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_cache_hit_tokens":8,"prompt_cache_miss_tokens":2}`,
				`{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25,"prompt_cache_hit_tokens":16,"prompt_cache_miss_tokens":4,"completion_tokens_details":{"reasoning_tokens":3}}`,
			},
			`{"prompt_tokens":30,"completion_tokens":10,"total_tokens":40,"prompt_cache_hit_tokens":24,"prompt_cache_miss_tokens":6,"completion_tokens_details":{"reasoning_tokens":3}}`},
		{"openrouter cost, is_byok, cost_details", Usage{30, 10, 40, 0},
			[]string{
				`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"cost":0.00014,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"cost_details":{"upstream_inference_cost":null,"upstream_inference_prompt_cost":0.00004}}`,
				`{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25,"cost":0.00021,"is_byok":true,"prompt_tokens_details":{"cached_tokens":4},"cost_details":{"upstream_inference_cost":null,"upstream_inference_prompt_cost":0.00011}}`,
			},
			`{"prompt_tokens":30,"completion_tokens":10,"total_tokens":40,"cost":0.00035,"is_byok":true,"prompt_tokens_details":{"cached_tokens":4},"cost_details":{"upstream_inference_cost":null,"upstream_inference_prompt_cost":0.00015}}`},
		{"a member only a later round sent, in its place", Usage{3, 3, 6, 0},
			[]string{
				`{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"a":1}`,
				`{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4,"b":"x","a":2}`,
			},
			`{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6,"a":3,"b":"x"}`},
		{"null then a number: the number", Usage{3, 3, 6, 0},
			[]string{
				`{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"cost":null}`,
				`{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4,"cost":0.1}`,
			},
			`{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6,"cost":0.1}`},
		{"decimals keep their precision", Usage{3, 3, 6, 0},
			[]string{
				`{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"cost":0.1,"n":1}`,
				`{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4,"cost":0.2,"n":0.25}`,
			},
			`{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6,"cost":0.3,"n":1.25}`},
		{"exponents", Usage{3, 3, 6, 0},
			[]string{
				`{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"cost":1e-5}`,
				`{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4,"cost":2e-5}`,
			},
			`{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6,"cost":0.00003}`},
		{"exponents and decimals", Usage{3, 3, 6, 0},
			[]string{
				`{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"cost":1.5E+2,"tiny":1e-30}`,
				`{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4,"cost":0.25,"tiny":1e-30}`,
			},
			`{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6,"cost":150.25,"tiny":2e-30}`},
		{"an object that is no details: summed the same", Usage{3, 3, 6, 0},
			[]string{
				`{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"server_tool_use":{"web_search_requests":1}}`,
				`{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4,"server_tool_use":{"web_search_requests":2}}`,
			},
			`{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6,"server_tool_use":{"web_search_requests":3}}`},
		{"perplexity's cost object, a string beside it", Usage{30, 10, 40, 0},
			[]string{
				`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"search_context_size":"low","cost":{"input_tokens_cost":0.00001,"output_tokens_cost":0.00002,"request_cost":0.005,"total_cost":0.00503}}`,
				`{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25,"search_context_size":"high","cost":{"input_tokens_cost":0.00002,"output_tokens_cost":0.00002,"request_cost":0.012,"total_cost":0.01204}}`,
			},
			`{"prompt_tokens":30,"completion_tokens":10,"total_tokens":40,"search_context_size":"high","cost":{"input_tokens_cost":0.00003,"output_tokens_cost":0.00004,"request_cost":0.017,"total_cost":0.01707}}`},
		{"dashscope's cache creation inside the details", Usage{30, 10, 40, 0},
			[]string{
				`{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":8},"cache_creation_input_tokens":8,"cache_type":"ephemeral"}}`,
				`{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25,"prompt_tokens_details":{"cached_tokens":8,"cache_creation":{"ephemeral_5m_input_tokens":4},"cache_creation_input_tokens":4,"cache_type":"ephemeral"}}`,
			},
			`{"prompt_tokens":30,"completion_tokens":10,"total_tokens":40,"prompt_tokens_details":{"cached_tokens":8,"cache_creation":{"ephemeral_5m_input_tokens":12},"cache_creation_input_tokens":12,"cache_type":"ephemeral"}}`},
		{"a round without a usage object of its own", Usage{3, 3, 6, 0},
			[]string{
				`{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}`,
				`{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4,"prompt_cache_hit_tokens":2}`,
			},
			`{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6,"prompt_cache_hit_tokens":2}`},
		// A member a round's object names twice counts once, as the copy
		// the bot's parser reads of a lone round's object (the last one):
		// both copies summed, two rounds of "cost":0.5,"cost":0.1 were
		// billed 1.2, not 0.2.
		{"a member named twice in one round: its last copy", Usage{3, 3, 6, 0},
			[]string{
				`{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"cost":0.5,"cost":0.1,"prompt_tokens_details":{"cached_tokens":4,"cached_tokens":1}}`,
				`{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4,"cost":0.5,"x":"a","cost":0.1,"x":"b","prompt_tokens_details":{"cached_tokens":1}}`,
			},
			`{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6,"cost":0.2,"prompt_tokens_details":{"cached_tokens":2},"x":"b"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs [][]byte
			for _, o := range tc.objs {
				objs = append(objs, []byte(o))
			}
			got := string(AppendUsage(nil, &tc.sum, objs))
			if got != tc.want {
				t.Errorf("AppendUsage:\n got %s\nwant %s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("not JSON: %s", got)
			}
		})
	}
}
