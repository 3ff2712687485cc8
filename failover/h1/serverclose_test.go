package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// forgedAnswer is what a test server sends on a connection the client
// should no longer use: taken for an answer, it is the wrong one.
const forgedAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"

// keepAfter is a rawServer handler that answers the first request on the
// first connection with first and keeps reading that connection, answering
// anything more on it with forgedAnswer; other connections get okAnswer.
func keepAfter(first string) func(n int, c net.Conn) {
	return func(n int, c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			if _, err := readRequest(br); err != nil {
				return
			}
			switch {
			case n != 1:
				io.WriteString(c, okAnswer)
			case i == 0:
				io.WriteString(c, first)
			default:
				io.WriteString(c, forgedAnswer)
			}
		}
	}
}

// TestServerCloseIsHonoured: an answer that ends its connection ("Connection:
// close", or HTTP/1.0 without keep-alive) leaves it closed for good, even
// when the server has not closed it yet (nginx's lingering close after its
// keepalive_requests, a relay that keeps reading): RFC 9112 9.6 has a client
// that received "close" send no further request on the connection, and what
// a server sends on it after an answer it called the last answers nothing.
// Read the same way for heads read by httpwire and by net/http (HTTP/1.0,
// and a head with a Trailer field).
func TestServerCloseIsHonoured(t *testing.T) {
	for _, tc := range []struct{ name, answer, body string }{
		{"Connection: close, Content-Length", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", "hello"},
		{"Connection: close, chunked", "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"Connection: keep-alive, close", "HTTP/1.1 429 Too Many Requests\r\nConnection: keep-alive, close\r\nContent-Length: 5\r\n\r\nhello", "hello"},
		{"Connection: close in any case", "HTTP/1.1 200 OK\r\nconnection: Close\r\nContent-Length: 5\r\n\r\nhello", "hello"},
		{"Connection: close, head read by net/http", "HTTP/1.1 200 OK\r\nConnection: close\r\nTrailer: X-Usage\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Usage: 1\r\n\r\n", "hello"},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, conns := rawServer(t, keepAfter(tc.answer))
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, u+"/first", nil)
			if _, b, err := roundTripBody(tr, req); err != nil || b != tc.body {
				t.Fatalf("first: %q, %v; want %q", b, err, tc.body)
			}
			req, _ = http.NewRequest(http.MethodGet, u+"/next", nil)
			if _, b, err := roundTripBody(tr, req); err != nil || b != "ok" {
				t.Fatalf("next: %q, %v; want \"ok\" on a new connection", b, err)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections; want 2 (a new one after the server's last answer)", n)
			}
		})
	}
}

// TestBrokenBodyEndsTheConnection: a body that fails to read (a malformed
// chunk, a chunk longer than its size said) is an error to the reader,
// never a short answer ending in io.EOF, and the connection it came on is
// closed: what is left on it is no answer's start, though the server keeps
// it open.
func TestBrokenBodyEndsTheConnection(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n"},
		{"chunk longer than said", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"},
		// The bytes that break the body are the last sent: nothing is
		// left in the buffer or on the socket to give the connection away.
		{"bad chunk size, last sent", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"},
		{"chunk longer than said, last sent", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello"},
		{"bad trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nno colon\r\n\r\n"},
		{"bad chunk size, head read by net/http", "HTTP/1.1 200 OK\r\nTrailer: X-Usage\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, conns := rawServer(t, keepAfter(tc.answer))
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, u+"/first", nil)
			if _, b, err := roundTripBody(tr, req); err == nil {
				t.Fatalf("first: %q read whole; want an error", b)
			}
			req, _ = http.NewRequest(http.MethodGet, u+"/next", nil)
			if _, b, err := roundTripBody(tr, req); err != nil || b != "ok" {
				t.Fatalf("next: %q, %v; want \"ok\" on a new connection", b, err)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections; want 2", n)
			}
		})
	}
}
