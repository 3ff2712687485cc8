package proxy

import (
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
)

// TestDeeplyNestedBodyIsRefusedCheaply: a body nested a million levels
// deep (2 MB, well under server.max_body_bytes) is a 400 that names the
// nesting, on the chat route and on a forwarded one, and reaches no
// provider. Validating it with a recursive parser took a stack frame per
// level: about 128 MB of stack and seconds of CPU per request, 512 MB at
// the default 8 MiB limit, so a few such requests at once exhausted
// memory. The test runs with a 16 MB stack limit, which a walk that
// recurses per level exceeds (a fatal "stack overflow", not a failure).
func TestDeeplyNestedBodyIsRefusedCheaply(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(16 << 20))
	fp := newFakeProvider(t, jsonHandler(http.StatusOK, `{"object":"list","data":[]}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	const depth = 1 << 20
	deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
	for _, tc := range []struct{ name, path, body string }{
		{"chat", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"metadata":` + deep + `}`},
		{"chat, in a string-free object", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"x":` + strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat("}", depth) + `}`},
		{"forwarded", "/v1/embeddings", `{"model":"embed-test","input":` + deep + `}`},
		{"forwarded, top level", "/v1/embeddings", deep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, url, tc.path, tc.body, nil)
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "nested") {
				t.Fatalf("status %d, body %.300s; want a 400 naming the nesting", resp.StatusCode, body)
			}
		})
	}
	if n := len(fp.requests()); n != 0 {
		t.Fatalf("the provider got %d requests; want none", n)
	}
}
