package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestForwardedJSONArrayIsTheAnswer: a forwarded call whose 2xx answer is
// valid JSON but no object (a JSON array: the rerank and tokenize answers
// of Hugging Face's text-embeddings-inference, a list some servers answer
// bare) is the answer, and reaches the bot as sent. Read as a malformed
// answer, each call was a 502 after being sent twice, and counted against
// the provider's circuit breaker, which opened after a few such calls and
// took the provider out of every bot's chat completions.
func TestForwardedJSONArrayIsTheAnswer(t *testing.T) {
	const ranked = `[{"index":1,"score":0.91},{"index":0,"score":0.12}]`
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/chat/completions" {
			_, _ = io.WriteString(w, okCompletion)
			return
		}
		_, _ = io.WriteString(w, ranked)
	})
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	const calls = 6 // more than the breaker's default 5 failures
	for i := range calls {
		resp := post(t, proxyURL, "/v1/rerank", `{"model":"embed-test","query":"q","texts":["a","b"]}`, nil)
		if got := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || got != ranked {
			t.Fatalf("call %d: %d %s; want 200 and the provider's array", i, resp.StatusCode, got)
		}
	}
	if n := len(fp.requests()); n != calls {
		t.Errorf("the provider was asked %d times for %d calls; want once each", n, calls)
	}
	resp := post(t, proxyURL, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	if got := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || !strings.Contains(got, `"hi"`) {
		t.Errorf("chat completion after the forwarded calls: %d %s; want the provider's answer", resp.StatusCode, got)
	}
}
