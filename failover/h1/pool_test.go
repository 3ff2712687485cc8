package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// roundTripBody sends req and reads its whole answer.
func roundTripBody(tr http.RoundTripper, req *http.Request) (int, string, error) {
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), err
}

// TestUnsolicitedBytesOnIdleConnection: bytes an upstream sends on a
// connection while it sits idle in the pool answer no request. net/http
// drops such a connection ("Unsolicited response received on idle HTTP
// channel"); so must this transport, for every request, including those it
// could send again (a GET, a request with an Idempotency-Key), which used to
// take a recently used connection without looking at it and got the forged
// bytes as their answer.
func TestUnsolicitedBytesOnIdleConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func(u string) *http.Request
	}{
		{"GET", func(u string) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			return req
		}},
		{"POST with an Idempotency-Key", func(u string) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(`{"x":1}`))
			req.Header.Set("Idempotency-Key", "k1")
			return req
		}},
		// A chat completion: peeked at before too.
		{"POST", func(u string) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(`{"x":1}`))
			return req
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idle, forged := make(chan struct{}), make(chan struct{})
			u, conns := rawServer(t, func(n int, c net.Conn) {
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := readRequest(br)
					if err != nil {
						return
					}
					body := "real" + strings.TrimPrefix(req.URL.Path, "/")
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
					if n == 1 && i == 0 {
						// Once the answer was read and the connection
						// is idle in the pool.
						<-idle
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
						close(forged)
					}
				}
			})
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			if _, b, err := roundTripBody(tr, tc.req(u+"/1")); err != nil || b != "real1" {
				t.Fatalf("first: %q, %v", b, err)
			}
			close(idle)
			<-forged
			_, b, err := roundTripBody(tr, tc.req(u+"/2"))
			if err != nil || b != "real2" {
				t.Fatalf("second: %q, %v; want \"real2\", on a new connection", b, err)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections; want 2 (the idle one with forged bytes dropped)", n)
			}
		})
	}
}

// TestSwitchedConnectionIsNotPooled: after a 101 Switching Protocols the
// connection speaks another protocol; net/http never reuses it. The next
// request must go out on a new connection, not into the switched stream.
func TestSwitchedConnectionIsNotPooled(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"websocket", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
		{"bare", "HTTP/1.1 101 Switching Protocols\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, conns := rawServer(t, func(n int, c net.Conn) {
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					if _, err := readRequest(br); err != nil {
						return
					}
					if n == 1 {
						if i == 0 {
							io.WriteString(c, tc.answer)
							continue
						}
						t.Errorf("request %d written into the switched stream", i+1)
						return
					}
					io.WriteString(c, okAnswer)
				}
			})
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, u+"/ws", nil)
			req.Header.Set("Upgrade", "websocket")
			if code, _, err := roundTripBody(tr, req); err != nil || code != http.StatusSwitchingProtocols {
				t.Fatalf("first: %d, %v; want the 101", code, err)
			}
			req, _ = http.NewRequest(http.MethodGet, u+"/next", nil)
			if code, b, err := roundTripBody(tr, req); err != nil || code != 200 || b != "ok" {
				t.Fatalf("next: %d %q, %v", code, b, err)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections; want 2 (a new one after the 101)", n)
			}
		})
	}
}

// TestAmbiguouslyFramedAnswerIsNotPooled: an answer whose head frames its
// body two ways (a Transfer-Encoding beside a Content-Length; a
// Transfer-Encoding on HTTP/1.0, which net/http ignores for the length)
// is read as net/http reads it, but its connection is not used again (RFC
// 9112 6.1 and 6.3: a sign of response splitting, whose framing "ought to
// be handled as an error", and whose sender "might have retained a portion
// of the message"). Whoever in front of the upstream read the other
// framing ends the answer elsewhere, and what follows it on the
// connection, taken for the next request's answer, may be the rest of
// this one: another bot's completion. A head with a folded line is
// another such head: net/http reads the fold into the header before it,
// where a hop may have read a Transfer-Encoding of its own.
func TestAmbiguouslyFramedAnswerIsNotPooled(t *testing.T) {
	for _, tc := range []struct{ name, answer, body string }{
		{"chunked and Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"Content-Length and chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"HTTP/1.0 keep-alive, chunked and Content-Length", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", "hello"},
		// obs-fold: net/http joins the line to the one before (a value of
		// X-Note) and frames the body by its length; a hop that reads the
		// folded line as a header of its own frames it as chunked.
		{"folded Transfer-Encoding after Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Note: a\r\n Transfer-Encoding: chunked\r\n\r\nhello", "hello"},
		{"folded line, tab", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Note: a\r\n\tb\r\n\r\nhello", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, conns := rawServer(t, func(n int, c net.Conn) {
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					if _, err := readRequest(br); err != nil {
						return
					}
					if n == 1 && i == 0 {
						io.WriteString(c, tc.answer)
						continue
					}
					io.WriteString(c, okAnswer)
				}
			})
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, u+"/first", nil)
			if code, b, err := roundTripBody(tr, req); err != nil || code != 200 || b != tc.body {
				t.Fatalf("first: %d %q, %v; want 200 %q", code, b, err, tc.body)
			}
			req, _ = http.NewRequest(http.MethodGet, u+"/next", nil)
			if code, b, err := roundTripBody(tr, req); err != nil || code != 200 || b != "ok" {
				t.Fatalf("next: %d %q, %v", code, b, err)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections; want 2 (a new one after the ambiguous answer)", n)
			}
		})
	}
}

// TestRequestCloseIsHonoured: req.Close, or a "Connection: close" header,
// asks for the connection to end after the exchange. As net/http, the
// transport says so to the upstream (the header itself, hop-by-hop, is not
// passed on otherwise) and never pools the connection.
func TestRequestCloseIsHonoured(t *testing.T) {
	for _, tc := range []struct {
		name      string
		close     bool
		header    string // the caller's Connection header
		wantClose bool
	}{
		{"req.Close", true, "", true},
		{"Connection: close", false, "close", true},
		{"Connection: keep-alive, Close", false, "keep-alive, Close", true},
		{"neither", false, "", false},
		{"Connection: keep-alive", false, "keep-alive", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan string, 4)
			u, conns := rawServer(t, func(n int, c net.Conn) {
				br := bufio.NewReader(c)
				for {
					req, err := readRequest(br)
					if err != nil {
						return
					}
					seen <- strings.Join(req.Header.Values("Connection"), ", ")
					io.WriteString(c, okAnswer) // and keeps the connection
				}
			})
			tr := &Transport{}
			defer tr.CloseIdleConnections()
			for i := range 2 {
				req, _ := http.NewRequest(http.MethodGet, u+"/", nil)
				req.Close = tc.close
				if tc.header != "" {
					req.Header.Set("Connection", tc.header)
				}
				if _, b, err := roundTripBody(tr, req); err != nil || b != "ok" {
					t.Fatalf("request %d: %q, %v", i+1, b, err)
				}
				want := ""
				if tc.wantClose {
					want = "close"
				}
				if got := <-seen; got != want {
					t.Fatalf("request %d: upstream saw Connection %q; want %q", i+1, got, want)
				}
			}
			wantConns := int32(1)
			if tc.wantClose {
				wantConns = 2
			}
			if n := conns.Load(); n != wantConns {
				t.Fatalf("%d connections for two requests; want %d", n, wantConns)
			}
		})
	}
}

// TestReusedConnectionKeepsEachExchangeApart: requests one after another on
// one pooled connection, their bodies plain readers (copied through the
// connection's limit) shorter and longer than the one before, each reach
// the upstream whole and exact; and each answer a caller keeps (its head
// is read into storage of its own) still reads as it arrived after the
// next ones were read on the same connection.
func TestReusedConnectionKeepsEachExchangeApart(t *testing.T) {
	bodies := []string{"hello", "hi", "a body longer than both", strings.Repeat("x", asyncBody+1), "ok?", ""}
	seen := make(chan string, len(bodies))
	u, conns := rawServer(t, func(n int, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			seen <- string(b)
			echo := strconv.Itoa(len(b)) + ":" + string(b[:min(len(b), 30)])
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Echo: "+echo+"\r\nX-Path: "+req.URL.Path+"\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := &Transport{}
	defer tr.CloseIdleConnections()
	var kept []*http.Response
	for i, b := range bodies {
		req, _ := http.NewRequest(http.MethodPost, u+"/"+strconv.Itoa(i), io.NopCloser(strings.NewReader(b)))
		req.ContentLength = int64(len(b))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if got, err := io.ReadAll(resp.Body); err != nil || string(got) != "ok" {
			t.Fatalf("request %d: answer %q, %v", i+1, got, err)
		}
		resp.Body.Close()
		if got := <-seen; got != b {
			t.Fatalf("request %d: upstream read a body of %d bytes; want the %d sent", i+1, len(got), len(b))
		}
		kept = append(kept, resp)
	}
	for i, resp := range kept {
		want := strconv.Itoa(len(bodies[i])) + ":" + bodies[i][:min(len(bodies[i]), 30)]
		if got, path := resp.Header.Get("X-Echo"), resp.Header.Get("X-Path"); got != want || path != "/"+strconv.Itoa(i) {
			t.Errorf("answer %d, kept while later ones were read: X-Echo %q, X-Path %q; want %q, %q", i+1, got, path, want, "/"+strconv.Itoa(i))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for %d requests; want one, reused", n, len(bodies))
	}
}

// TestConnectionIdlePastTheTimeoutIsNotTaken: a pooled connection idle for
// longer than IdleConnTimeout is closed at its checkout, not used, whether
// or not a sweep has come round yet (sweeps run once per IdleConnTimeout,
// so one may be up to twice that late). A middlebox (a NAT, a cloud load
// balancer) forgets an idle flow silently, with no FIN to peek at: the
// timeout is what keeps a request off such a connection.
func TestConnectionIdlePastTheTimeoutIsNotTaken(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	tr := &Transport{IdleConnTimeout: time.Hour} // no sweep runs in the test
	for i, age := range []time.Duration{0, 2 * time.Hour} {
		tr.mu.Lock()
		for _, list := range tr.idle {
			for _, c := range list {
				c.idleAt = c.idleAt.Add(-age)
			}
		}
		tr.mu.Unlock()
		resp, err := post(t, tr, context.Background(), srv.URL, "{}")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		readAll(t, resp)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections for a request on a fresh pool and one after the pooled connection idled 2 h past a 1 h timeout, want 2", n)
	}
}

// TestResendGoesOutOnANewConnection: a replayable request whose reused
// connection ended before the answer is sent again once on a new
// connection, not on the next pooled one, which the same server may be
// closing at the same moment (a restart, an idle timeout that closes the
// connections opened together). Two pooled connections here each read
// their second request and close without answering.
func TestResendGoesOutOnANewConnection(t *testing.T) {
	u, conns := rawServer(t, func(n int, c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			if _, err := readRequest(br); err != nil {
				return
			}
			if n <= 2 && i == 1 {
				return
			}
			io.WriteString(c, okAnswer)
		}
	})
	tr := &Transport{}
	defer tr.CloseIdleConnections()
	// Two connections in the pool: the first answer's body is held open
	// while the second request goes out.
	first, err := tr.RoundTrip(mustGet(t, u))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := roundTripBody(tr, mustGet(t, u)); err != nil {
		t.Fatal(err)
	}
	io.ReadAll(first.Body)
	first.Body.Close()
	if _, _, err := roundTripBody(tr, mustGet(t, u)); err != nil {
		t.Fatalf("the resent GET failed: %v (connections dialled: %d)", err, conns.Load())
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

func mustGet(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
