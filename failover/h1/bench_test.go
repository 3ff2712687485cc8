package h1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// plainUpstream answers every request on its connections with one small
// fixed JSON answer, reading each request with bufio alone, so that
// -benchmem counts (nearly) only the transport's allocations. It returns the
// base URL.
func plainUpstream(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					length := 0
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
						if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
							length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
						}
					}
					if _, err := br.Discard(length); err != nil {
						return
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// BenchmarkRoundTrip is the per-request cost of the transport on one
// kept-alive loopback connection: a POST with a chat request's small body
// (the hot path), and one with a body large enough to be written while the
// answer is awaited (writeBodyAsync).
func BenchmarkRoundTrip(b *testing.B) {
	u := plainUpstream(b)
	for _, bc := range []struct {
		name string
		size int
	}{
		{"POST1KiB", 1 << 10},
		{"POST256KiB", 256 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			body := bytes.Repeat([]byte("b"), bc.size)
			r := bytes.NewReader(body)
			ctx := context.Background()
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(body)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+"/v1/chat/completions", r)
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := tr.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
