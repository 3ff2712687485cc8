package proxy

import (
	"net/http"
	"testing"
)

// TestCutAttemptCountsTheUsageItSent: as README says, a streamed attempt
// its provider cut counts the last usage it sent before the cut (Gemini's
// running usage on every chunk), and the attempt that finished the answer
// its own, each to its provider, on the plain path and in a payment turn.
func TestCutAttemptCountsTheUsageItSent(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
	cut := abruptClose(head+`{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}],"usage":{"prompt_tokens":1000,"completion_tokens":1,"total_tokens":1001}}`+"\n\n",
		head+`{"index":0,"delta":{"content":" there"},"finish_reason":null}],"usage":{"prompt_tokens":1000,"completion_tokens":2,"total_tokens":1002}}`+"\n\n")
	whole := sseHandler(head+`{"index":0,"delta":{"role":"assistant","content":"Hello there, friend"},"finish_reason":null}],"usage":{"prompt_tokens":1100,"completion_tokens":4,"total_tokens":1104}}`+"\n\n",
		head+`{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1100,"completion_tokens":5,"total_tokens":1105}}`+"\n\n", "data: [DONE]\n\n")
	for _, user := range []string{"", "o-user-1"} {
		recoveredStreamCounts(t, cut, whole, user, map[string][2]int64{"fake": {1000, 2}, "other": {1100, 5}})
	}
}

// recoveredStreamCounts streams a turn (a payment turn when user is set)
// whose first provider answers cut and whose second second, and wants each
// provider's prompt and completion tokens in the ledger as want has them.
func recoveredStreamCounts(t *testing.T, cut, second http.HandlerFunc, user string, want map[string][2]int64) {
	t.Helper()
	answeredCounts(t, true, cut, second, user, want)
}

// answeredCounts is recoveredStreamCounts for a stream or a non-stream
// turn.
func answeredCounts(t *testing.T, stream bool, cut, second http.HandlerFunc, user string, want map[string][2]int64) {
	t.Helper()
	name := "plain"
	if user != "" {
		name = "payment turn"
	}
	t.Run(name, func(t *testing.T) {
		a, b := newFakeProvider(t, cut), newFakeProvider(t, second)
		s, ledger, _ := ledgerProxy(t, testConfig(t, a.URL, withSecondProvider(b.URL)), nil, &countingTools{})
		t.Cleanup(ledger.Close)
		srv, handled := waitedServer(t, s.Handler())
		resp := post(t, srv.URL, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": user})
		readAll(t, resp.Body)
		handled.Wait() // the turn is accounted after its answer
		got := ledger.Stats().ByModel
		if len(got) != len(want) {
			t.Fatalf("by model %+v; want %v", got, want)
		}
		for _, m := range got {
			if w := want[m.Provider]; m.PromptTokens != w[0] || m.CompletionTokens != w[1] {
				t.Errorf("%s counted %d prompt and %d completion tokens; want %d and %d", m.Provider, m.PromptTokens, m.CompletionTokens, w[0], w[1])
			}
		}
	})
}
