package h1

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestRequestLineInjectionIsRefused: the request line and the Host header
// are written as they are, so a CR or LF in the method, the Host or the
// request URI's raw parts would end the line and let the caller (or
// whoever chose the URL) write headers or a whole second request. As
// net/http's Transport, such a request is refused before anything is
// dialled or sent; a path is written escaped, so one with a line break is
// sent safely.
func TestRequestLineInjectionIsRefused(t *testing.T) {
	const inject = " HTTP/1.1\r\nX-Injected: yes\r\nX-Rest:"
	for _, tc := range []struct {
		name   string
		modify func(req *http.Request)
		ok     bool
		want   string // the request URI the upstream sees, when ok
	}{
		{"Host with CRLF", func(r *http.Request) { r.Host = "api.example\r\nX-Injected: yes" }, false, ""},
		{"Host with a space", func(r *http.Request) { r.Host = "api.example x" }, false, ""},
		{"RawQuery with CRLF", func(r *http.Request) { r.URL.RawQuery = "a=1" + inject }, false, ""},
		{"RawQuery with NUL", func(r *http.Request) { r.URL.RawQuery = "a=\x00" }, false, ""},
		{"RawQuery with DEL", func(r *http.Request) { r.URL.RawQuery = "a=\x7f" }, false, ""},
		{"Opaque with CRLF", func(r *http.Request) { r.URL.Opaque = "/x" + inject }, false, ""},
		{"method with CRLF", func(r *http.Request) { r.Method = "GET /x HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET" }, false, ""},
		{"method with a space", func(r *http.Request) { r.Method = "G ET" }, false, ""},
		{"path with CRLF", func(r *http.Request) { r.URL.Path = "/a\r\nX-Injected: yes" }, true, "/a%0D%0AX-Injected:%20yes"},
		{"valid Host and query", func(r *http.Request) { r.Host = "api.example:8443"; r.URL.RawQuery = "a=1&b=%20" }, true, "/?a=1&b=%20"},
		{"custom token method", func(r *http.Request) { r.Method = "PROPFIND" }, true, "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan *http.Request, 1)
			u, conns := rawServer(t, func(n int, c net.Conn) {
				req, err := readRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				seen <- req
				c.Write([]byte(okAnswer))
			})
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, u+"/", nil)
			tc.modify(req)
			_, b, err := roundTripBody(tr, req)
			if !tc.ok {
				if err == nil {
					r := <-seen
					t.Fatalf("sent: upstream saw %s %q, X-Injected=%q", r.Method, r.RequestURI, r.Header.Get("X-Injected"))
				}
				if n := conns.Load(); n != 0 {
					t.Fatalf("refused (%v) after %d connection(s) were opened; want none", err, n)
				}
				return
			}
			if err != nil || b != "ok" {
				t.Fatalf("%q, %v", b, err)
			}
			r := <-seen
			if r.RequestURI != tc.want || len(r.Header["X-Injected"]) > 0 {
				t.Fatalf("upstream saw %q (X-Injected %q); want %q", r.RequestURI, r.Header["X-Injected"], tc.want)
			}
			if !strings.EqualFold(r.Method, req.Method) {
				t.Fatalf("upstream saw method %q", r.Method)
			}
		})
	}
}
