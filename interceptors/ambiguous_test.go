package interceptors

import (
	"slices"
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
		want        int
	}{
		{"plain tool call", `{"id":"x","choices":[{"index":0,"delta":{"tool_calls":[` + call + `]},"finish_reason":null}]}`, chunkClear},
		{"usage chunk", `{"id":"x","choices":[],"usage":{"prompt_tokens":1}}`, chunkClear},
		{"an unread member twice", `{"id":"x","obfuscation":"a","obfuscation":"b","choices":[{"delta":{"content":"a"}}]}`, chunkClear},
		{"content as a tool call's member name", `{"choices":[{"delta":{"tool_calls":[{"index":0,"content":1,"function":{"arguments":"{}"}}]}}]}`, chunkClear},
		{"an unread usage member twice", `{"id":"x","choices":[],"usage":{"prompt_tokens":1,"queue_time":1,"queue_time":2}}`, chunkClear},
		{"a usage count twice", `{"id":"x","choices":[],"usage":{"prompt_tokens":1,"prompt_tokens":9}}`, chunkCountTwice},
		{"cached_tokens twice beside a finish", `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":0,"cached_tokens":8}}}`, chunkCountTwice},
		{"Completion_tokens in a choice's usage", `{"choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"completion_tokens":1,"Completion_tokens":2}}]}`, chunkCountTwice},
		// A count twice before a member the capture reads twice: the
		// chunk is still skipped.
		{"a count twice, then delta twice", `{"usage":{"prompt_tokens":1,"prompt_tokens":9},"choices":[{"delta":{"content":"a"},"delta":{"content":"b"}}]}`, chunkAmbiguous},
		{"usage twice", `{"choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":9}}`, chunkAmbiguous},
		{"choices twice", `{"choices":[{"delta":{"content":"a"}}],"choices":[{"delta":{"content":"b"}}]}`, chunkAmbiguous},
		{"Choices beside choices", `{"choices":[{"delta":{"content":"a"}}],"Choices":[]}`, chunkAmbiguous},
		{"delta twice", `{"choices":[{"delta":{"content":"a"},"delta":{"tool_calls":[` + call + `]}}]}`, chunkAmbiguous},
		{"finish_reason twice", `{"choices":[{"delta":{},"finish_reason":"stop","finish_reason":"tool_calls"}]}`, chunkAmbiguous},
		{"tool_calls twice", `{"choices":[{"delta":{"tool_calls":[` + call + `],"tool_calls":[]}}]}`, chunkAmbiguous},
		{"tool_calls escaped, twice", `{"choices":[{"delta":{"tool_calls":[],"tool\u005fcalls":[` + call + `]}}]}`, chunkAmbiguous},
		{"Tool_calls", `{"choices":[{"delta":{"content":"a","Tool_calls":[` + call + `]}}]}`, chunkAmbiguous},
		{"a call's id twice", `{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","id":"b"}]}}]}`, chunkAmbiguous},
		{"in the second choice", `{"choices":[{"index":0,"delta":{}},{"index":1,"delta":{"content":"a","content":"b"}}]}`, chunkAmbiguous},
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

// TestCaptureReadsUsageCountedTwice: a payment turn's chunk whose usage
// names a token count twice is read, its words and finish with it (the
// bot got the answer without them when it was skipped), and its usage is
// the first copy's counts, which the ledger and the turn's token cap
// count, with no provider object (UsageJSON): the bot gets those counts as
// paygate writes them, not an object whose last copy its parser reads.
func TestCaptureReadsUsageCountedTwice(t *testing.T) {
	for _, tc := range []struct{ name, last string }{
		{"usage chunk", `{"id":"m1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":1,"completion_tokens":900,"total_tokens":11}}`},
		{"finish chunk", `{"id":"m1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":1,"completion_tokens":900,"total_tokens":11}}`},
		{"a choice's usage", `{"id":"m1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop","usage":{"prompt_tokens":10,"completion_tokens":1,"Completion_tokens":900,"total_tokens":11}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			chunks := []string{`{"id":"m1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`, tc.last}
			if tc.name == "usage chunk" {
				chunks = slices.Insert(chunks, 1, `{"id":"m1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}]}`)
			}
			for _, ch := range chunks {
				if _, err := c.Process([]byte(ch)); err != nil {
					t.Fatalf("Process(%s) = %v; want it read", ch, err)
				}
			}
			res := c.EndRound()
			if res.Content != "Hi there" || res.FinishReason != "stop" || res.FinishChunk == nil {
				t.Errorf("round %q finish %q (chunk %s); want \"Hi there\" and its stop", res.Content, res.FinishReason, res.FinishChunk)
			}
			if want := (Usage{PromptTokens: 10, CompletionTokens: 1, TotalTokens: 11}); res.Usage == nil || *res.Usage != want || res.UsageJSON != nil {
				t.Errorf("usage %+v, object %s; want %+v and no object", res.Usage, res.UsageJSON, want)
			}
		})
	}
}
