package failover

import (
	"testing"
)

// TestNonStreamAnswerMustBeAJSONObject: a 2xx non-stream answer whose body
// is empty, truncated JSON or an HTML page (a CDN's or WAF's interstitial)
// used to reach the client as a successful answer, which its SDK then failed
// to parse. A chat completion, and any answer whose Content-Type says JSON,
// is now an answer only as a JSON object; anything else is a malformed
// answer (the same target once more, then the next), while the binary
// answers of passthrough paths (speech, a file's content) go through as
// they are.
func TestNonStreamAnswerMustBeAJSONObject(t *testing.T) {
	t.Parallel()
	const completion = `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"from a"},"finish_reason":"stop"}]}`
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		wantFrom    string // "b": a's answer was malformed
	}{
		{"chat: empty body", "/chat/completions", "application/json", "", "b"},
		{"chat: truncated JSON", "/chat/completions", "application/json", completion[:60], "b"},
		{"chat: an HTML page", "/chat/completions", "text/html", "<html><body>Just a moment...</body></html>", "b"},
		{"chat: an HTML page sent as JSON", "/chat/completions", "application/json", "<html><body>502</body></html>", "b"},
		{"chat: a JSON array", "/chat/completions", "application/json", `[` + completion + `]`, "b"},
		{"chat: a JSON string", "/chat/completions", "application/json", `"from a"`, "b"},
		{"chat: a completion after keep-alive whitespace", "/chat/completions", "application/json", "\n\n " + completion, "a"},
		{"chat with a query: empty body", "/chat/completions?api-version=2024-06-01", "application/json", "", "b"},
		{"passthrough JSON: truncated", "/embeddings", "application/json; charset=utf-8", `{"object":"list","data":[{"embedd`, "b"},
		{"passthrough +json: empty body", "/embeddings", "application/vnd.api+json", "", "b"},
		{"passthrough JSON: an object", "/embeddings", "application/json", `{"object":"list","data":[],"model":"from a"}`, "a"},
		{"passthrough audio", "/audio/speech", "audio/mpeg", "ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb", "a"},
		{"passthrough text", "/files/f1/content", "text/plain", "from a, line 1\n", "a"},
		{"passthrough without a body", "/files/f1/content", "application/octet-stream", "", "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){
				"a": always(statusFn(200, tc.body, "Content-Type: "+tc.contentType)),
			}, []string{"a", "b"}, nil)
			got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: tc.path, Body: chatBody(false),
				ContentType: "application/json"})
			if got.openErr != nil {
				t.Fatalf("Open: %v", got.openErr)
			}
			if got.provider != tc.wantFrom {
				t.Fatalf("answered by %s with %q; want %s", got.provider, got.body, tc.wantFrom)
			}
			wantHits := [2]int{1, 0}
			if tc.wantFrom == "b" {
				wantHits = [2]int{2, 1} // a malformed answer: a once more, then b
			} else if got.body != tc.body {
				t.Errorf("body %q; want a's as sent, %q", got.body, tc.body)
			}
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != wantHits {
				t.Errorf("providers saw a=%d b=%d; want a=%d b=%d", h[0], h[1], wantHits[0], wantHits[1])
			}
		})
	}
}
