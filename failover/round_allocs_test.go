package failover

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// cannedAnswer is a RoundTripper that answers every request with one
// OpenAI chat completion, in process: a round's own allocations are
// counted without a server's beside them.
type cannedAnswer []byte

func (c cannedAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
	}
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(c))}},
		ContentLength: int64(len(c)),
		Body:          io.NopCloser(bytes.NewReader(c)),
		Request:       req,
	}, nil
}

// TestRoundAnsweredAtOnceAllocations: a non-stream round its first target
// answers keeps that attempt in the Response's own room for one (Tried),
// not in a slice grown on the heap: most rounds are one attempt.
func TestRoundAnsweredAtOnceAllocations(t *testing.T) {
	answer := cannedAnswer(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"up-a",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello there."},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`)
	cfg := testConfig(map[string]string{"a": "http://127.0.0.1:1/v1"}, []string{"a"})
	r, err := New(cfg, Options{Transport: answer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	req := &Request{Model: "gpt", Method: http.MethodPost, Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"}
	var tried []Attempt
	n := testing.AllocsPerRun(100, func() {
		resp, err := r.Open(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		tried = resp.Tried
		resp.Close()
	})
	if len(tried) != 1 || tried[0].Provider != "a" || tried[0].Model != "up-a" || tried[0].Status != http.StatusOK || tried[0].Cause != "" {
		t.Errorf("Tried %+v; want a's one attempt, 200", tried)
	}
	// The canned answer's own: its http.Response, header and body reader.
	hreq, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/v1/chat/completions", nil)
	own := testing.AllocsPerRun(100, func() { _, _ = answer.RoundTrip(hreq) })
	// The round's own: its Response, attempt context, deadline timer and
	// its AfterFunc, the request and its body's GetBody, the breaker's
	// done, the answer's body and its read, and Close's.
	if got, want := n-own, 12.0; got != want {
		t.Errorf("Open and Close of a round answered at once: %v allocations beside the canned answer's %v; want %v", got, own, want)
	}
}
