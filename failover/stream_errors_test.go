package failover

import (
	"errors"
	"testing"
)

// TestChoiceLevelErrors: OpenRouter puts a provider's failure on the choice
// (https://openrouter.ai/docs/api-reference/errors): finish_reason "error"
// in a stream, choices[].error in a non-stream 200. Each is an error
// answer, classified and failed over, never an answer.
func TestChoiceLevelErrors(t *testing.T) {
	const head = `{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"google/gemini-2.5-pro","provider":"Google","choices":`
	tests := []struct {
		name   string
		stream bool
		a      func(c *fconn)
	}{
		{"stream: the first token-bearing event is an error finish", true, func(c *fconn) {
			c.sse()
			c.comment("OPENROUTER PROCESSING")
			c.event(head + `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null}]}`)
			c.event(head + `[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"MALFORMED_FUNCTION_CALL"}]}`)
			c.done()
		}},
		{"stream: a choice error object", true, firstEvent(head + `[{"index":0,"delta":{},"finish_reason":"error","error":{"code":502,"message":"Upstream melted"}}]}`)},
		{"non-stream: choice error in a 200", false, statusFn(200, `{"id":"gen-2","object":"chat.completion","created":1,"model":"meta/llama","provider":"Chutes","choices":[{"index":0,"finish_reason":"error","native_finish_reason":"error","error":{"code":502,"message":"Upstream melted"},"message":{"role":"assistant","content":""}}]}`)},
		{"non-stream: error finish in a 200", false, statusFn(200, `{"id":"gen-2","object":"chat.completion","created":1,"model":"meta/llama","choices":[{"index":0,"finish_reason":"error","message":{"role":"assistant","content":""}}]}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(tc.a)}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), tc.stream)
			if got.provider != "b" {
				t.Errorf("served by %q (events %q, body %s, err %v); want the error classified and b to answer", got.provider, got.events, got.body, got.openErr)
			}
			if n := len(e.fakes["a"].hits()); n != 2 {
				t.Errorf("a saw %d requests; want 2 (a 502: one retry)", n)
			}
		})
	}
}

// TestChoiceErrorObjects: the classifier's view of choice-level errors,
// and of chunks that only look like one.
func TestChoiceErrorObjects(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		wantStatus int // 0: no error
		wantCause  string
	}{
		{"error finish", `{"choices":[{"index":0,"delta":{},"finish_reason":"error","native_finish_reason":"error"}]}`, 502, CauseServerError},
		{"choice error with a numeric code", `{"choices":[{"index":0,"finish_reason":"error","error":{"code":429,"message":"slow down"}}]}`, 429, CauseRateLimited},
		{"choice error with a content filter code", `{"choices":[{"index":0,"finish_reason":"error","error":{"code":"content_filter","message":"no"}}]}`, 400, CauseClientError},
		{"choice error without a code", `{"choices":[{"index":0,"error":{"message":"boom"}}]}`, 502, CauseServerError},
		{"second choice's error finish", `{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null},{"index":1,"delta":{},"finish_reason":"error"}]}`, 502, CauseServerError},
		{"text ending in the word error", contentChunk("an error"), 0, ""},
		{"native reason error, finish null", `{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null,"native_finish_reason":"error"}]}`, 0, ""},
		{"stop with an error-named tool", `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"report_error","arguments":""}}]},"finish_reason":"stop"}]}`, 0, ""},
		{"null choice error", `{"choices":[{"index":0,"delta":{},"finish_reason":"stop","error":null}]}`, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := errorObject([]byte(tc.data))
			switch {
			case tc.wantStatus == 0 && f != nil:
				t.Errorf("got %+v; want no error", f)
			case tc.wantStatus != 0 && (f == nil || f.status != tc.wantStatus || f.cause != tc.wantCause):
				t.Errorf("got %+v; want status %d cause %s", f, tc.wantStatus, tc.wantCause)
			}
		})
	}
}

// TestInStreamErrorClassified: an error after the first token ends the
// stream as a *StreamError (never io.EOF, so the client gets no [DONE])
// carrying the error object's classification: a content filter is
// Refused, to be passed to the client rather than finished elsewhere.
func TestInStreamErrorClassified(t *testing.T) {
	tests := []struct {
		name        string
		ev          string
		wantClass   string
		wantRefused bool
		wantCode    string
	}{
		{"openrouter error finish", `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"error"}]}`, CauseServerError, false, ""},
		{"openrouter mid-stream error object", `{"id":"c1","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`, CauseServerError, false, "server_error"},
		{"dashscope output moderation", dashScopeInspection, CauseClientError, true, "data_inspection_failed"},
		{"openrouter moderation", openRouterFlagged, CauseClientError, true, "403"},
		{"rate limit", errBody("", "rate_limit_exceeded", "slow"), CauseRateLimited, false, "rate_limit_exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": always(func(c *fconn) {
					c.sse()
					c.event(contentChunk("Hel"))
					c.event(tc.ev)
					c.done()
				}),
			}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			var se *StreamError
			if !errors.As(got.end, &se) {
				t.Fatalf("stream from %q ended %v; want a *StreamError", got.provider, got.end)
			}
			if se.Cause != CauseStreamError || se.Class != tc.wantClass || se.Refused() != tc.wantRefused || se.Code != tc.wantCode {
				t.Errorf("got cause %s class %s refused %v code %q; want %s %s %v %q",
					se.Cause, se.Class, se.Refused(), se.Code, CauseStreamError, tc.wantClass, tc.wantRefused, tc.wantCode)
			}
			if tc.wantRefused && se.Message == "" {
				t.Errorf("a refusal without the provider's message: %+v", se)
			}
		})
	}
}
