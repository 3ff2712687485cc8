package failover

import (
	"errors"
	"strings"
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
