//go:build linux

package h1

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestUnreadBodyCloseIsAnnounced: whether a connection carries another
// request after a body the handler did not read whole is decided before
// the answer's head is written, so that the answer says so: a client told
// the connection persists must find it open for its next request, and one
// that finds it closed must have been told "Connection: close". The cases
// TestConformsToNetHTTP cannot hold (h1 differs from net/http on purpose,
// or the answer starts before the handler returns) are here.
func TestUnreadBodyCloseIsAnnounced(t *testing.T) {
	post := func(n int) string {
		return fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", n, strings.Repeat("b", n))
	}
	chunked := func(n int) string {
		return fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", n, strings.Repeat("b", n))
	}
	flushed := func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "streamed")
		w.(http.Flusher).Flush()
	}
	for _, tc := range []struct {
		name      string
		send      string
		handler   http.HandlerFunc
		wantClose bool
	}{
		// Flushed while the handler runs, the rest of a body within the
		// drain bound is read after the answer.
		{"flushed, small body", post(1 << 10), flushed, false},
		{"flushed, body over the drain bound", post(maxDrain + 1<<10), flushed, true},
		// A chunked body's size is unknown while the handler runs, so the
		// connection closes whatever its size (net/http reads it before
		// the head, which a handler that reads after it flushed would
		// lose).
		{"flushed, chunked body", chunked(5), flushed, true},
		{"flushed, chunked body over the drain bound", chunked(maxDrain + 1<<10), flushed, true},
		// Closing a body reads what is left of it up to the bound; a body
		// far larger (here never sent whole) is left unread, without
		// waiting for it.
		{"closed, small body", post(1 << 10), func(w http.ResponseWriter, r *http.Request) {
			r.Body.Close()
			io.WriteString(w, "closed")
		}, false},
		{"closed, body over the drain bound", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\nfirst bytes",
			func(w http.ResponseWriter, r *http.Request) {
				r.Body.Close()
				if _, err := r.Body.Read(make([]byte, 1)); err != http.ErrBodyReadAfterClose {
					t.Errorf("read after Close: %v", err)
				}
				io.WriteString(w, "closed")
			}, true},
		// http.MaxBytesReader cannot tell this server to close (its hook is
		// an unexported method): the rest of a small body is read and the
		// connection kept, which its answer says.
		{"MaxBytesReader over its limit", post(100), func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 10)); err != nil {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/next" {
					io.WriteString(w, "next")
					return
				}
				tc.handler(w, r)
			})}
			c := serveOne(t, s)
			go io.WriteString(c, tc.send) // the server may stop reading
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(resp.Body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if resp.Close != tc.wantClose {
				t.Fatalf("answer %d says close: %v; want %v", resp.StatusCode, resp.Close, tc.wantClose)
			}
			if resp.Close {
				if b, err := io.ReadAll(br); len(b) > 0 {
					t.Fatalf("after an answer that says close: read %q, %v; want the connection closed", b, err)
				}
				return
			}
			if _, err := io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatalf("the next request: %v", err)
			}
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer to the next request on a connection said to persist: %v", err)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != "next" {
				t.Fatalf("next answer %q", b)
			}
		})
	}
}
