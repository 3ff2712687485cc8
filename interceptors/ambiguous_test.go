package interceptors

import (
	"testing"
)

// TestAmbiguousChunk: a chunk that names a member the capture reads twice
// in one object, or in another case, is ambiguous; the same members once,
// other members repeated, and the same names at other levels are not. The
// walk allocates nothing: it runs on every chunk off the text fast path.
func TestAmbiguousChunk(t *testing.T) {
	const call = `{"index":0,"id":"c","type":"function","function":{"name":"create_order","arguments":"{}"}}`
	tests := []struct {
		name, chunk string
		want        bool
	}{
		{"plain tool call", `{"id":"x","choices":[{"index":0,"delta":{"tool_calls":[` + call + `]},"finish_reason":null}]}`, false},
		{"usage chunk", `{"id":"x","choices":[],"usage":{"prompt_tokens":1}}`, false},
		{"an unread member twice", `{"id":"x","obfuscation":"a","obfuscation":"b","choices":[{"delta":{"content":"a"}}]}`, false},
		{"content as a tool call's member name", `{"choices":[{"delta":{"tool_calls":[{"index":0,"content":1,"function":{"arguments":"{}"}}]}}]}`, false},
		{"choices twice", `{"choices":[{"delta":{"content":"a"}}],"choices":[{"delta":{"content":"b"}}]}`, true},
		{"Choices beside choices", `{"choices":[{"delta":{"content":"a"}}],"Choices":[]}`, true},
		{"delta twice", `{"choices":[{"delta":{"content":"a"},"delta":{"tool_calls":[` + call + `]}}]}`, true},
		{"finish_reason twice", `{"choices":[{"delta":{},"finish_reason":"stop","finish_reason":"tool_calls"}]}`, true},
		{"tool_calls twice", `{"choices":[{"delta":{"tool_calls":[` + call + `],"tool_calls":[]}}]}`, true},
		{"tool_calls escaped, twice", `{"choices":[{"delta":{"tool_calls":[],"tool\u005fcalls":[` + call + `]}}]}`, true},
		{"Tool_calls", `{"choices":[{"delta":{"content":"a","Tool_calls":[` + call + `]}}]}`, true},
		{"a call's id twice", `{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","id":"b"}]}}]}`, true},
		{"in the second choice", `{"choices":[{"index":0,"delta":{}},{"index":1,"delta":{"content":"a","content":"b"}}]}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ambiguousChunk(tc.chunk); got != tc.want {
				t.Errorf("ambiguousChunk(%s) = %v; want %v", tc.chunk, got, tc.want)
			}
		})
	}
	chunk := tests[0].chunk
	if n := testing.AllocsPerRun(100, func() { ambiguousChunk(chunk) }); n != 0 {
		t.Errorf("ambiguousChunk allocates %v times per chunk; want 0", n)
	}
}
