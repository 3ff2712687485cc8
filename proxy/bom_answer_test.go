package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestChatAnswerWithByteOrderMark: a provider (a relay on Windows, a .NET
// server) that writes a UTF-8 byte order mark before its JSON chat
// completion has answered: RFC 8259 lets a parser ignore the mark, and the
// Node openai SDK (fetch's json() decodes UTF-8, mark stripped) and
// Python's take the answer. Through paygate the answer was no JSON object:
// failed over as malformed, billed and asked again, and the bot got a 502.
func TestChatAnswerWithByteOrderMark(t *testing.T) {
	const completion = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}]}`
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				_, _ = io.WriteString(w, "\ufeff"+completion)
			})
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := post(t, url, "/v1/chat/completions", fmt.Sprintf(`{"model":"gpt-test","stream":%v,"messages":[{"role":"user","content":"hi"}]}`, stream), nil)
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello there") || strings.Contains(body, "\ufeff") {
				t.Errorf("got %d %s; want 200 with the answer, no byte order mark", resp.StatusCode, body)
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("provider asked %d times; want once", n)
			}
		})
	}
}

// TestForwardedAnswerWithByteOrderMark: the same mark before a forwarded
// path's JSON answer (embeddings from a relay on Windows): the SDKs read
// the vectors, paygate took the answer for no JSON object, failed over and
// answered 502. A stored file's content is not touched (its bytes are what
// was stored).
func TestForwardedAnswerWithByteOrderMark(t *testing.T) {
	const answer = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,0.25]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "\ufeff"+answer)
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/embeddings", `{"model":"embed-test","input":"hi"}`, nil)
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"embedding":[0.5,0.25]`) || strings.Contains(body, "\ufeff") {
		t.Errorf("got %d %s; want 200 with the vectors, no byte order mark", resp.StatusCode, body)
	}
	if n := len(fp.requests()); n != 1 {
		t.Errorf("provider asked %d times; want once", n)
	}
	resp = send(t, http.MethodGet, url, "/v1/files/file-abc123/content", "", nil)
	if body := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || body != "\ufeff"+answer {
		t.Errorf("file content: got %d %q; want the stored bytes as sent", resp.StatusCode, body)
	}
}
