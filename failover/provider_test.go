package failover

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
)

// TestNewRequest: newRequest builds what http.NewRequestWithContext builds
// for the same URL and body, and parses each path once.
func TestNewRequest(t *testing.T) {
	p := &provider{base: "http://upstream.test:8080/v1"}
	ctx := context.WithValue(context.Background(), struct{}{}, "mark")
	for _, tc := range []struct {
		name, path string
		body       []byte
	}{
		{"chat", "/chat/completions", []byte(`{"model":"m"}`)},
		{"query kept", "/files?purpose=batch&limit=2", nil},
		{"empty body", "/embeddings", []byte{}},
		{"escaped path", "/files/a%2Fb/content", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rb io.Reader
			if tc.body != nil {
				rb = bytes.NewReader(tc.body)
			}
			want, err := http.NewRequestWithContext(ctx, "POST", p.base+tc.path, rb)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{"X-Test": {"1"}}
			got, err := p.newRequest(ctx, "POST", tc.path, tc.body, h)
			if err != nil {
				t.Fatal(err)
			}
			if got.URL.String() != want.URL.String() || got.Host != want.Host || got.Method != "POST" ||
				got.ContentLength != want.ContentLength || got.Proto != want.Proto || got.Context() != ctx || got.Header.Get("X-Test") != "1" {
				t.Fatalf("newRequest = %s %s host %q len %d proto %s; NewRequest gives %s host %q len %d proto %s",
					got.Method, got.URL, got.Host, got.ContentLength, got.Proto, want.URL, want.Host, want.ContentLength, want.Proto)
			}
			if (got.Body == nil) != (want.Body == nil) || (got.Body == http.NoBody) != (want.Body == http.NoBody) ||
				(got.GetBody == nil) != (want.GetBody == nil) {
				t.Fatalf("body %v / GetBody set %v; NewRequest: %v / %v", got.Body, got.GetBody != nil, want.Body, want.GetBody != nil)
			}
			if got.Body != nil {
				first, _ := io.ReadAll(got.Body)
				again, err := got.GetBody()
				if err != nil {
					t.Fatal(err)
				}
				second, _ := io.ReadAll(again)
				if !bytes.Equal(first, tc.body) || !bytes.Equal(second, tc.body) {
					t.Fatalf("body %q, resent %q; want %q", first, second, tc.body)
				}
			}
			// The next request of the path shares the parsed URL.
			next, _ := p.newRequest(ctx, "POST", tc.path, nil, h)
			if next.URL != got.URL {
				t.Errorf("the URL of %s was parsed again", tc.path)
			}
		})
	}
	if _, err := p.newRequest(ctx, "POST", "/bad%zz", nil, nil); err == nil {
		t.Error("a path that does not parse made a request")
	}
}
