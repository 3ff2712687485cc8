package interceptors

import (
	"bytes"
	"reflect"
	"testing"
)

// TestProcessValidReadsAsProcess: a chunk a caller vouches for as valid
// JSON (an event failover's Next returned) is read by ProcessValid as
// Process reads it, output and round alike, because ProcessValid only
// skips the slow path's validation: the load benchmark's stream (a role,
// text, a finish and a usage chunk, include_usage's "usage":null in
// each), a tool round with a payment and a client call, chunks that name
// a member twice (refused), and rounds after the first, whose ids and
// created are rewritten.
func TestProcessValidReadsAsProcess(t *testing.T) {
	const head = `{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":"fp","choices":`
	streams := map[string][]string{
		"text": {
			head + `[{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}],"usage":null}`,
			head + `[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}`,
			head + `[{"index":0,"delta":{"content":" world"},"logprobs":null,"finish_reason":null}],"usage":null}`,
			head + `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
			head + `[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}`,
		},
		"tool round": {
			benchPaymentStart, benchClientStart, benchPaymentDelta, benchClientDelta, benchRoleClient,
			head + `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}`,
			head + `[],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`,
		},
		"reasoning, annotations and a repeated role": {
			benchDetailsDelta, benchRoleText, benchAnnotationsDelta, benchImagesDelta, benchTextChunk, benchTextChunk2,
			head + `[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":"stop","native_finish_reason":"STOP"}]}`,
		},
		"a member named twice": {
			benchTextChunk,
			head + `[{"index":0,"delta":{"content":"a","content":"b"},"logprobs":null,"finish_reason":null}]}`,
			head + `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop","finish_reason":"length"}]}`,
		},
		"an error chunk": {
			benchTextChunk,
			`{"id":"gen-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[],"error":{"code":502,"message":"Provider returned error"}}`,
		},
	}
	for name, chunks := range streams {
		t.Run(name, func(t *testing.T) {
			plain, vouched := NewCapture(isPaymentName), NewCapture(isPaymentName)
			for round := range 2 {
				plain.StartRound(round, "chatcmpl-turn", benchCreated)
				vouched.StartRound(round, "chatcmpl-turn", benchCreated)
				for i, c := range chunks {
					want, wantErr := plain.Process([]byte(c))
					got, gotErr := vouched.ProcessValid([]byte(c))
					if !bytes.Equal(got, want) || (gotErr == nil) != (wantErr == nil) {
						t.Fatalf("round %d, chunk %d: ProcessValid = %q, %v; Process = %q, %v", round, i, got, gotErr, want, wantErr)
					}
				}
				if got, want := vouched.EndRound(), plain.EndRound(); !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d: ProcessValid's round %+v; Process's %+v", round, got, want)
				}
			}
		})
	}
}
