//go:build linux

package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkKeepAlive is the per-request cost of the server on one kept-alive
// loopback connection: a GET, and a POST whose small body the handler reads
// whole (a chat completion's shape). The client reads the answers with
// bufio alone, so that -benchmem counts (nearly) only the server's
// allocations.
func BenchmarkKeepAlive(b *testing.B) {
	body := strings.Repeat("b", 1<<10)
	for _, bc := range []struct {
		name string
		req  string
	}{
		{"GET", "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"POST1KiB", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"ok":true}`)
			})}
			c := serveOne(b, s)
			c.SetDeadline(time.Time{}) // a long -benchtime outlasts serveOne's
			br := bufio.NewReader(c)
			req := []byte(bc.req)
			ask := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if err := skipResponse(br); err != nil {
					b.Fatal(err)
				}
			}
			ask() // the connection's buffers
			b.ResetTimer()
			for range b.N {
				ask()
			}
		})
	}
}

// skipResponse reads one answer with a Content-Length off br without
// allocating.
func skipResponse(br *bufio.Reader) error {
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n = 0
			for _, d := range bytes.TrimSpace(v) {
				n = 10*n + int(d-'0')
			}
		}
	}
	if n < 0 {
		return io.ErrUnexpectedEOF
	}
	_, err := br.Discard(n)
	return err
}

// BenchmarkEventStream is the per-event cost of a stream (an SSE answer
// relayed token by token): one write of an event and one flush, on a
// loopback connection whose client reads as fast as it can. Every flush
// writes to the socket, so whatever the server does around a write (its
// write deadline) shows here.
func BenchmarkEventStream(b *testing.B) {
	event := []byte(`data: {"choices":[{"index":0,"delta":{"content":"hello"}}]}` + "\n\n")
	framed := len(strconv.FormatInt(int64(len(event)), 16)) + 2 + len(event) + 2
	start := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		w.Write(event) // the head and a first event, before the timer
		rc.Flush()
		<-start
		for range b.N {
			w.Write(event)
			if err := rc.Flush(); err != nil {
				b.Error(err)
				return
			}
		}
	})}
	c := serveOne(b, s)
	c.SetDeadline(time.Time{})
	br := bufio.NewReaderSize(c, 64<<10)
	if _, err := io.WriteString(c, "GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		b.Fatal(err)
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if len(line) <= 2 {
			break
		}
	}
	if _, err := br.Discard(framed); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	close(start)
	if _, err := br.Discard(b.N*framed + len("0\r\n\r\n")); err != nil {
		b.Fatal(err)
	}
}
