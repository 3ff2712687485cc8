package proxy

import (
	"net/http"
	"sync/atomic"
	"testing"
)

// TestAttemptEndedBeforeItsFirstTokenCountsItsUsage: a streamed attempt
// that failed before its first token (failed over, nothing reached the bot)
// but had sent a usage object by then was billed by its provider for the
// prompt, and counts the last usage it sent, as README says of any streamed
// attempt that ended early: a stream that ended with [DONE] after a role
// chunk and its include_usage chunk (an empty answer: no token, no finish),
// and one cut after a role chunk carrying a running usage (vLLM's
// continuous_usage_stats, Gemini's usage on every chunk). Each attempt
// counts to its provider, on the plain path as in a payment turn, beside the
// tokens of the provider that answered.
func TestAttemptEndedBeforeItsFirstTokenCountsItsUsage(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
	whole := sseHandler(head+`{"index":0,"delta":{"role":"assistant","content":"Hello there, friend"},"finish_reason":null}]}`+"\n\n",
		head+`{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1100,"completion_tokens":5,"total_tokens":1105}}`+"\n\n", "data: [DONE]\n\n")
	for _, tc := range []struct {
		name  string
		first http.HandlerFunc
	}{
		{"empty", sseHandler(head+`{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n",
			head+`],"usage":{"prompt_tokens":1000,"completion_tokens":0,"total_tokens":1000,"prompt_tokens_details":{"cached_tokens":0}}}`+"\n\n",
			"data: [DONE]\n\n")},
		{"cut", abruptClose(head + `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":{"prompt_tokens":1000,"completion_tokens":0,"total_tokens":1000}}` + "\n\n")},
	} {
		for _, user := range []string{"", "o-user-1"} {
			t.Run(tc.name+"/"+map[bool]string{true: "plain", false: "payment turn"}[user == ""], func(t *testing.T) {
				var asked atomic.Int64
				a := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) { asked.Add(1); tc.first(w, r) })
				b := newFakeProvider(t, whole)
				s, ledger, _ := ledgerProxy(t, testConfig(t, a.URL, withSecondProvider(b.URL)), nil, &countingTools{})
				t.Cleanup(ledger.Close)
				srv, handled := waitedServer(t, s.Handler())
				resp := post(t, srv.URL, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
					map[string]string{"X-WeChat-OpenID": user})
				readAll(t, resp.Body)
				handled.Wait() // the turn is accounted after its answer
				want := map[string][2]int64{"fake": {1000 * asked.Load(), 0}, "other": {1100, 5}}
				got := ledger.Stats().ByModel
				if asked.Load() == 0 || len(got) != len(want) {
					t.Fatalf("the first provider asked %d times; by model %+v; want %v", asked.Load(), got, want)
				}
				for _, m := range got {
					if w := want[m.Provider]; m.PromptTokens != w[0] || m.CompletionTokens != w[1] {
						t.Errorf("%s counted %d prompt and %d completion tokens; want %d and %d", m.Provider, m.PromptTokens, m.CompletionTokens, w[0], w[1])
					}
				}
			})
		}
	}
}

// TestNonStreamEventsRefusedAnswerCountsItsUsage: a non-stream request that
// a relay answers with chat.completion.chunk events (it ignores "stream":
// false) is refused when the events end without a finish_reason (a relay
// that sends none, then its include_usage chunk and [DONE]) or with no
// choice at all (the usage chunk alone): the next target is asked, but the
// provider billed the answer, whose usage counts to it, as it does for a
// whole completion refused as malformed (TestNonStreamEventsMalformedAnswerUsageAccounted),
// on the plain path as in a payment turn.
func TestNonStreamEventsRefusedAnswerCountsItsUsage(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
	const usage = `],"usage":{"prompt_tokens":1000,"completion_tokens":7,"total_tokens":1007}}` + "\n\n"
	good := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"c2","object":"chat.completion","created":1,"model":"vendor/upstream-model",` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],` +
			`"usage":{"prompt_tokens":1100,"completion_tokens":5,"total_tokens":1105}}`))
	}
	for _, tc := range []struct {
		name  string
		first http.HandlerFunc
	}{
		{"no finish", sseHandler(head+`{"index":0,"delta":{"role":"assistant","content":"Hello there"},"finish_reason":null}]}`+"\n\n",
			head+usage, "data: [DONE]\n\n")},
		{"no choice", sseHandler(head+usage, "data: [DONE]\n\n")},
	} {
		for _, user := range []string{"", "o-user-1"} {
			t.Run(tc.name+"/"+map[bool]string{true: "plain", false: "payment turn"}[user == ""], func(t *testing.T) {
				var asked atomic.Int64
				a := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) { asked.Add(1); tc.first(w, r) })
				b := newFakeProvider(t, good)
				s, ledger, _ := ledgerProxy(t, testConfig(t, a.URL, withSecondProvider(b.URL)), nil, &countingTools{})
				t.Cleanup(ledger.Close)
				srv, handled := waitedServer(t, s.Handler())
				resp := post(t, srv.URL, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`,
					map[string]string{"X-WeChat-OpenID": user})
				if body := readAll(t, resp.Body); resp.StatusCode != http.StatusOK {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				handled.Wait() // the turn is accounted after its answer
				want := map[string][2]int64{"fake": {1000 * asked.Load(), 7 * asked.Load()}, "other": {1100, 5}}
				got := ledger.Stats().ByModel
				if asked.Load() == 0 || len(got) != len(want) {
					t.Fatalf("the first provider asked %d times; by model %+v; want %v", asked.Load(), got, want)
				}
				for _, m := range got {
					if w := want[m.Provider]; m.PromptTokens != w[0] || m.CompletionTokens != w[1] {
						t.Errorf("%s counted %d prompt and %d completion tokens; want %d and %d", m.Provider, m.PromptTokens, m.CompletionTokens, w[0], w[1])
					}
				}
			})
		}
	}
}
