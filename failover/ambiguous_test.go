package failover

import (
	"strings"
	"testing"
)

// TestAmbiguousMember: a chat completion that names a member paygate reads
// twice, or in another case, is named by the path of that member; one
// that names each once, or repeats only what paygate does not read (a
// call's "name", which the proxy refuses itself), is not.
func TestAmbiguousMember(t *testing.T) {
	const call = `{"id":"c","type":"function","function":{"name":"create_order","arguments":"{}"}}`
	tests := []struct{ name, answer, want string }{
		{"plain", `{"id":"x","choices":[{"index":0,"message":{"content":null,"tool_calls":[` + call + `]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1}}`, ""},
		{"an unread member twice", `{"id":"x","id":"y","choices":[{"message":{"content":"a"}}]}`, ""},
		{"a call's name twice", `{"choices":[{"message":{"tool_calls":[{"id":"c","function":{"name":"a","name":"b"}}]}}]}`, ""},
		{"choices twice", `{"choices":[{"message":{"content":"a"}}],"choices":[]}`, "choices (named twice)"},
		{"Usage", `{"choices":[{"message":{"content":"a"}}],"Usage":{}}`, "Usage (usage spelled in another case)"},
		{"completion_tokens twice", `{"choices":[{"message":{"content":"a"}}],"usage":{"completion_tokens":1,"completion_tokens":9}}`, "usage.completion_tokens (named twice)"},
		{"cached_tokens twice", `{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":0,"cached_tokens":8}}}`,
			"usage.prompt_tokens_details.cached_tokens (named twice)"},
		{"prompt_tokens_details twice", `{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens_details":{},"prompt_tokens_details":{"cached_tokens":8}}}`,
			"usage.prompt_tokens_details (named twice)"},
		{"DeepSeek's cache hits twice", `{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_cache_hit_tokens":0,"prompt_cache_hit_tokens":8}}`,
			"usage.prompt_cache_hit_tokens (named twice)"},
		{"Moonshot's Cached_tokens", `{"choices":[{"message":{"content":"a"}}],"usage":{"cached_tokens":0,"Cached_tokens":8}}`,
			"usage.Cached_tokens (cached_tokens spelled in another case)"},
		{"message twice", `{"choices":[{"message":{"content":"a"},"message":{"content":"b"}}]}`, "choices[].message (named twice)"},
		{"tool_calls twice", `{"choices":[{"message":{"tool_calls":[],"tool_calls":[` + call + `]}}]}`, "choices[].message.tool_calls (named twice)"},
		{"Tool_calls", `{"choices":[{"message":{"content":"a","Tool_calls":[` + call + `]}}]}`, "choices[].message.Tool_calls (tool_calls spelled in another case)"},
		{"tool_callſ", `{"choices":[{"message":{"content":"a","tool_callſ":[` + call + `]}}]}`, "choices[].message.tool_callſ (tool_calls spelled in another case)"},
		{"FINISH_REASON", `{"choices":[{"message":{"content":"a"},"finish_reason":"stop","FINISH_REASON":"length"}]}`, "choices[].FINISH_REASON (finish_reason spelled in another case)"},
		{"finiſh_reason alone", `{"choices":[{"message":{"content":"a"},"finiſh_reason":"length"}]}`, "choices[].finiſh_reason (finish_reason spelled in another case)"},
		{"choiceſ", `{"choices":[],"choiceſ":[{"message":{"content":"a"}}]}`, "choiceſ (choices spelled in another case)"},
		{"uſage", `{"choices":[],"uſage":{}}`, "uſage (usage spelled in another case)"},
		{"a count with the Kelvin sign", `{"choices":[],"usage":{"prompt_tokens":1,"prompt_to\u212aens":9}}`, "usage.prompt_to\u212aens (prompt_tokens spelled in another case)"},
		{"argumentſ", `{"choices":[{"message":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}","argumentſ":"{\"x\":1}"}}]}}]}`,
			"choices[].message.tool_calls[].function.argumentſ (arguments spelled in another case)"},
		{"a longer ASCII key", `{"choices":[{"message":{"content":"a","tool_callss":1}}],"usages":{}}`, ""},
		{"a call's id twice", `{"choices":[{"message":{"tool_calls":[{"id":"a","id":"b"}]}}]}`, "choices[].message.tool_calls[].id (named twice)"},
		{"arguments twice", `{"choices":[{"message":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}","arguments":"{\"x\":1}"}}]}}]}`,
			"choices[].message.tool_calls[].function.arguments (named twice)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ambiguousMember([]byte(tc.answer)); got != tc.want {
				t.Errorf("ambiguousMember = %q; want %q", got, tc.want)
			}
		})
	}
}

// TestAmbiguousMemberAllocs: the check runs on every chat completion a
// provider answers, so it reads the answer where it lies: a copy of the
// body per answer (gjson.ParseBytes) cost the non-stream hot path an
// allocation as large as the answer.
func TestAmbiguousMemberAllocs(t *testing.T) {
	answer := []byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		strings.Repeat("a plan at 9.90 CNY a month. ", 64) + `","tool_calls":[{"id":"c","type":"function","function":{"name":"create_order","arguments":"{}"}}]},` +
		`"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`)
	if got := testing.AllocsPerRun(100, func() {
		if why := ambiguousMember(answer); why != "" {
			t.Fatalf("ambiguousMember = %q; want none", why)
		}
	}); got != 0 {
		t.Errorf("ambiguousMember allocates %v times per answer; want none", got)
	}
}
