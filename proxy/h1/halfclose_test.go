//go:build linux

package h1

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPipelinedRequestsBeforeHalfClose: a client that pipelines its requests
// and then shuts its side for writing (shutdown(SHUT_WR), as `nc -N` or an
// HTTP/1.0-style client does) gets an answer to every complete request it
// sent, as from net/http. The half-close is the watcher's EPOLLRDHUP, which
// marks the connection gone while the first request is in flight; requests
// already sent are still read and answered, and what is left of a cut-off
// request ends the connection sanely: a 400 or nothing for a truncated
// head, a handler that sees a truncated body's error.
func TestPipelinedRequestsBeforeHalfClose(t *testing.T) {
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	post := func(path string, n int) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", path, n, strings.Repeat("b", n))
	}
	for _, tc := range []struct {
		name string
		send string
		want []string // the answers' bodies, in order; then the connection ends
	}{
		{"two GETs", get("/a") + get("/b"), []string{"/a 0 <nil>", "/b 0 <nil>"}},
		{"three GETs", get("/a") + get("/b") + get("/c"), []string{"/a 0 <nil>", "/b 0 <nil>", "/c 0 <nil>"}},
		// The first body is larger than the connection's read buffer: the
		// next request may be in the socket rather than the buffer.
		{"large POST then GET", post("/a", 64<<10) + get("/b"), []string{"/a 65536 <nil>", "/b 0 <nil>"}},
		// A truncated head gets a 400 or nothing (net/http: a 400).
		{"GET then a head cut in its request line", get("/a") + "GET /b HT", []string{"/a 0 <nil>"}},
		{"GET then a head cut in a header", get("/a") + "GET /b HTTP/1.1\r\nHo", []string{"/a 0 <nil>"}},
		{"GET then a head without its empty line", get("/a") + "GET /b HTTP/1.1\r\nHost: x\r\n", []string{"/a 0 <nil>"}},
		{"GET then a truncated body", get("/a") + "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
			[]string{"/a 0 <nil>", "/b 3 unexpected EOF"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/a" {
					// Answer only once the half-close has been noticed
					// (the watcher cancels the request in flight), so
					// that the connection is gone before the next
					// request is read. The bound is a safety net.
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
						t.Error("the half-close was not noticed within 5 s")
					}
				}
				b, err := io.ReadAll(r.Body)
				fmt.Fprintf(w, "%s %d %v", r.URL.Path, len(b), err)
			})}
			c := serveOne(t, s)
			go func() {
				io.WriteString(c, tc.send)
				c.(*net.TCPConn).CloseWrite()
			}()
			br := bufio.NewReader(c)
			for i, want := range tc.want {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("answer %d (want %q): %v", i+1, want, err)
				}
				b, err := io.ReadAll(resp.Body)
				if err != nil || string(b) != want {
					t.Fatalf("answer %d: %q, %v; want %q", i+1, b, err, want)
				}
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 && !strings.HasPrefix(string(rest), "HTTP/1.1 400 ") {
				t.Fatalf("after the answers: read %q, %v; want a 400 or nothing, and the connection closed", rest, err)
			}
		})
	}
}
