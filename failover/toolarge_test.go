package failover

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRequestTooLargeIsNotContextLength: a 413 from a provider, or from the
// nginx or Cloudflare in front of it, refusing a multi-MB image body used to
// be classed as context length and reach the bot as 400-worded
// context_length_exceeded, which tells it to shorten its conversation. A 413
// still moves to the next target (another provider may take a larger body),
// and when it ends the round the client gets the provider's 413: its own
// code and message when its body is an error object, else code
// request_too_large and a message of paygate's (an HTML page says nothing
// an SDK can show). A 413 whose error says context length stays one.
func TestRequestTooLargeIsNotContextLength(t *testing.T) {
	t.Parallel()
	const nginx = "<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413 Request Entity Too Large</h1></center><hr><center>nginx</center></body></html>"
	tests := []struct {
		name       string
		a, b       func(c *fconn, n int)
		wantFrom   string
		wantStatus int
		wantType   string
		wantCode   string
		wantMsg    string
		wantHits   [2]int
	}{
		{name: "an nginx page on every target", a: always(statusFn(413, nginx, "Content-Type: text/html")),
			b: always(statusFn(413, nginx, "Content-Type: text/html")), wantStatus: 413, wantType: "invalid_request_error",
			wantCode: CodeRequestTooLarge, wantMsg: "provider b refused the request as too large (HTTP 413)", wantHits: [2]int{1, 1}},
		{name: "the provider's own error object", a: always(statusFn(413, `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`)),
			wantStatus: 413, wantType: "request_too_large", wantCode: CodeRequestTooLarge,
			wantMsg: "Request exceeds the maximum allowed number of bytes.", wantHits: [2]int{1, 1}},
		{name: "a 413 naming the context length", a: always(statusFn(413, errBody("invalid_request_error", "context_length_exceeded", "too many tokens"))),
			wantStatus: 413, wantType: "invalid_request_error", wantCode: CauseContextLength, wantMsg: "too many tokens", wantHits: [2]int{1, 1}},
		{name: "the next target takes the body", a: always(statusFn(413, nginx, "Content-Type: text/html")), wantFrom: "b", wantHits: [2]int{1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := tc.b
			if b == nil && tc.wantFrom == "" {
				b = tc.a
			}
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a, "b": b}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), false)
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != tc.wantHits {
				t.Errorf("providers saw a=%d b=%d; want a=%d b=%d", h[0], h[1], tc.wantHits[0], tc.wantHits[1])
			}
			if tc.wantFrom != "" {
				if got.openErr != nil || got.provider != tc.wantFrom {
					t.Fatalf("answered by %q, err %v; want %s", got.provider, got.openErr, tc.wantFrom)
				}
				return
			}
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("Open: %v; want an *UpstreamError", got.openErr)
			}
			if ue.Status != tc.wantStatus || ue.Type != tc.wantType || ue.Code != tc.wantCode || !strings.Contains(ue.Message, tc.wantMsg) {
				t.Errorf("got %d type %q code %q %q; want %d type %q code %q %q", ue.Status, ue.Type, ue.Code, ue.Message,
					tc.wantStatus, tc.wantType, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

// TestEarlyRefusalOfLargeUploadReachesClient: a provider (or the proxy in
// front of it) that refuses a large body with its answer before it reads it,
// then closes, as net/http's server and nginx do, is a provider's 413, not a
// connection that failed: the client gets the provider's own error, and no
// attempt is spent on a retry of the same target (h1's transport used to
// write the whole body first and fail with a broken pipe, which failover
// took for a connect failure and the bot got as a 502).
func TestEarlyRefusalOfLargeUploadReachesClient(t *testing.T) {
	t.Parallel()
	urls := map[string]string{}
	var hits [2]atomic.Int32
	for i, name := range []string{"a", "b"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, `{"error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`)
		}))
		t.Cleanup(srv.Close)
		urls[name] = srv.URL
	}
	r, err := New(testConfig(urls, []string{"a", "b"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	// server.max_body_bytes' default: more than the sockets' buffers hold.
	content := strings.Repeat("a", 8<<20)
	body := []byte(`{"model":"gpt","messages":[{"role":"user","content":"` + content + `"}]}`)
	_, err = r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: body, ContentType: "application/json"})
	var ue *UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("Open: %v; want the providers' 413 as an *UpstreamError", err)
	}
	if ue.Status != 413 || ue.Code != CodeRequestTooLarge || ue.Message != "Request exceeds the maximum allowed number of bytes." {
		t.Errorf("got %d code %q %q; want the provider's 413 and its message", ue.Status, ue.Code, ue.Message)
	}
	if a, b := hits[0].Load(), hits[1].Load(); a != 1 || b != 1 {
		t.Errorf("providers saw a=%d b=%d; want one attempt each", a, b)
	}
}
