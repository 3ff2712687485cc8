package failover

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/paygate/paygate/config"
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

// TestURLForKeepsTheEscapedPath: a passthrough path arrives escaped as the
// client sent it and reaches the provider byte for byte; it is never decoded
// a second time into separators, a query, a fragment or a bad escape. A
// path net/url would send differently is an error, not another path.
func TestURLForKeepsTheEscapedPath(t *testing.T) {
	p := &provider{base: "http://upstream.test/v1"}
	for _, tc := range []struct {
		name, path string
		want       string // the request target sent; "" for an error
	}{
		{"plain", "/embeddings", "/v1/embeddings"},
		{"query as sent", "/files?purpose=batch&after=a%2Fb", "/v1/files?purpose=batch&after=a%2Fb"},
		{"escaped slash", "/files/..%2F..%2Fadmin%2Fkeys", "/v1/files/..%2F..%2Fadmin%2Fkeys"},
		{"escaped question mark", "/files/a%3Fb", "/v1/files/a%3Fb"},
		{"escaped hash", "/files/a%23b", "/v1/files/a%23b"},
		{"escaped percent", "/files/100%25", "/v1/files/100%25"},
		{"escaped dots", "/files/%2e%2E/x", "/v1/files/%2e%2E/x"},
		{"unreserved escaped", "/files/%7Euser", "/v1/files/%7Euser"},
		{"empty query kept", "/files?", "/v1/files?"},
		{"raw hash", "/files/a#b", ""},
		{"character net/url escapes again", "/files/a{b%2Fc", ""},
		{"bad escape", "/files/100%", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := p.urlFor(tc.path)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("urlFor(%q) = %s; want an error", tc.path, u)
				}
				return
			}
			if err != nil {
				t.Fatalf("urlFor(%q): %v", tc.path, err)
			}
			if got := u.RequestURI(); got != tc.want || u.Host != "upstream.test" || u.Fragment != "" {
				t.Errorf("urlFor(%q) sends %q to %q (fragment %q); want %q", tc.path, u.RequestURI(), u.Host, u.Fragment, tc.want)
			}
		})
	}
}

// TestURLForKeepsTheBaseQuery: a base_url with a query (Azure OpenAI's
// ?api-version=…), which config accepts, used to lose it on every request:
// urlFor set the URL's query to the path's. The base's query now comes
// first, the path's (a forwarded path's, as the bot sent it) after it, and a
// parameter both name is the base's alone. A trailing slash before the
// base's query is trimmed as one at its end is.
func TestURLForKeepsTheBaseQuery(t *testing.T) {
	for _, tc := range []struct {
		name, base, path, want string
	}{
		{"chat", "http://upstream.test/openai/deployments/d?api-version=2024-10-21", "/chat/completions",
			"/openai/deployments/d/chat/completions?api-version=2024-10-21"},
		{"slash before the query", "http://upstream.test/openai/deployments/d/?api-version=2024-10-21", "/chat/completions",
			"/openai/deployments/d/chat/completions?api-version=2024-10-21"},
		{"the path's query after it", "http://upstream.test/v1?api-version=1", "/files?purpose=batch&after=a%2Fb",
			"/v1/files?api-version=1&purpose=batch&after=a%2Fb"},
		{"a parameter both name: the base's", "http://upstream.test/v1?api-version=1&k=v", "/files?api%2Dversion=2&limit=2&k",
			"/v1/files?api-version=1&k=v&limit=2"},
		{"an empty query of the path", "http://upstream.test/v1?api-version=1", "/files?", "/v1/files?api-version=1"},
		{"no query in the base", "http://upstream.test/v1/", "/files?", "/v1/files?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &provider{base: trimBase(tc.base)}
			u, err := p.urlFor(tc.path)
			if err != nil {
				t.Fatalf("urlFor(%q): %v", tc.path, err)
			}
			if got := u.RequestURI(); got != tc.want {
				t.Errorf("base %s, path %s: sends %q; want %q", tc.base, tc.path, got, tc.want)
			}
		})
	}
}

// TestBaseURLQueryReachesTheProvider: the base_url's query is on every
// request a round sends.
func TestBaseURLQueryReachesTheProvider(t *testing.T) {
	e := newEnv(t, nil, []string{"a"}, func(c *config.Config) {
		c.Providers[0].BaseURL += "?api-version=2024-10-21"
	})
	for _, stream := range []bool{false, true} {
		if got := e.open(t.Context(), stream); got.openErr != nil {
			t.Fatal(got.openErr)
		}
	}
	for _, h := range e.fakes["a"].hits() {
		if h.path != "/v1/chat/completions?api-version=2024-10-21" {
			t.Errorf("upstream got %q; want the base_url's query api-version=2024-10-21 kept", h.path)
		}
	}
}
