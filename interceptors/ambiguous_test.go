package interceptors

import (
	"errors"
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
		{"an unread usage member twice", `{"id":"x","choices":[],"usage":{"prompt_tokens":1,"queue_time":1,"queue_time":2}}`, false},
		{"a usage count twice", `{"id":"x","choices":[],"usage":{"prompt_tokens":1,"prompt_tokens":9}}`, true},
		{"cached_tokens twice beside a finish", `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":0,"cached_tokens":8}}}`, true},
		{"Completion_tokens in a choice's usage", `{"choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"completion_tokens":1,"Completion_tokens":2}}]}`, true},
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

// TestCaptureSkipsUsageCountedTwice: a payment turn's usage chunk that
// names a token count twice is skipped, as the non-stream check refuses
// such an answer: the capture (and so the ledger and the turn's token
// cap) reads the first copy, while a round's one usage object reaches the
// bot byte for byte (AppendUsage), where its parser reads the last.
func TestCaptureSkipsUsageCountedTwice(t *testing.T) {
	c := NewCapture(isPaymentName)
	if _, err := c.Process([]byte(`{"id":"m1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Process([]byte(`{"id":"m1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":1,"completion_tokens":900,"total_tokens":11}}`))
	if !errors.Is(err, ErrAmbiguousChunk) {
		res := c.EndRound()
		t.Errorf("Process = %v; want ErrAmbiguousChunk (the round's usage reads %+v, its object sent on as %s)", err, res.Usage, res.UsageJSON)
	}
}
