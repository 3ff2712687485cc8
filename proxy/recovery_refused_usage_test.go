package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestRecoveryRefusedAttemptUsageAccounted: a stream cut mid-answer is
// continued by another provider; an answer that provider gave first and
// paygate refused as malformed (a whole completion naming a member two
// ways, from a server that ignores "stream": true) was billed, and counts
// to that provider as a refused attempt of a turn's first round does
// (TestMalformedAnswerUsageAccounted), on the plain path as in a payment
// turn (whose recovery already priced it).
func TestRecoveryRefusedAttemptUsageAccounted(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
	cut := abruptClose(head+`{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}],"usage":{"prompt_tokens":1000,"completion_tokens":1,"total_tokens":1001}}`+"\n\n",
		head+`{"index":0,"delta":{"content":" there"},"finish_reason":null}],"usage":{"prompt_tokens":1000,"completion_tokens":2,"total_tokens":1002}}`+"\n\n")
	whole := sseHandler(head+`{"index":0,"delta":{"role":"assistant","content":"Hello there, friend"},"finish_reason":null}]}`+"\n\n",
		head+`{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1100,"completion_tokens":5,"total_tokens":1105}}`+"\n\n", "data: [DONE]\n\n")
	const refused = `{"id":"c0","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"a","content":"b"},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":1100,"completion_tokens":200,"total_tokens":1300}}`
	for _, user := range []string{"", "o-user-1"} {
		var n atomic.Int32
		second := func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				_, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, refused)
				return
			}
			whole(w, r)
		}
		// The other provider's tokens are its refused answer's too.
		recoveredStreamCounts(t, cut, second, user, map[string][2]int64{"fake": {1000, 2}, "other": {2200, 205}})
		if n.Load() != 2 {
			t.Errorf("user %q: the second provider was asked %d times; want 2 (the refused answer, then the continuation)", user, n.Load())
		}
	}
}
