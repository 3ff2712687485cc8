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
	for _, tc := range []struct{ name, user string }{{"plain", ""}, {"payment turn", "o-user-1"}} {
		t.Run(tc.name, func(t *testing.T) {
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
			a, b := newFakeProvider(t, cut), newFakeProvider(t, second)
			s, ledger, _ := ledgerProxy(t, testConfig(t, a.URL, withSecondProvider(b.URL)), nil, &countingTools{})
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := post(t, srv.URL, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
				map[string]string{"X-WeChat-OpenID": tc.user})
			readAll(t, resp.Body)
			handled.Wait() // the turn is accounted after its answer
			if n.Load() != 2 {
				t.Fatalf("the second provider was asked %d times; want 2 (the refused answer, then the continuation)", n.Load())
			}
			want := map[string][2]int64{"fake": {1000, 2}, "other": {2200, 205}}
			got := ledger.Stats().ByModel
			if len(got) != len(want) {
				t.Fatalf("by model %+v; want the cut attempt's and the other provider's", got)
			}
			for _, m := range got {
				if w := want[m.Provider]; m.PromptTokens != w[0] || m.CompletionTokens != w[1] {
					t.Errorf("%s counted %d prompt and %d completion tokens; want %d and %d (its refused answer's too)", m.Provider, m.PromptTokens, m.CompletionTokens, w[0], w[1])
				}
			}
		})
	}
}
