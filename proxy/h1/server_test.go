//go:build linux

package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCloseCancelsRequests: Close ends the requests in flight at once (their
// contexts end, their connections close), where Shutdown would wait.
func TestCloseCancelsRequests(t *testing.T) {
	started, ended := make(chan struct{}), make(chan error, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		ended <- r.Context().Err()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never ran")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the request's context ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close left the request running")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("the connection still answers after Close (%d bytes)", n)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve returned %v; want http.ErrServerClosed", err)
	}
}

// TestCancelRequestsLeavesAnswersWhole: CancelRequests ends the request in
// flight with its cause, and the connection stays open while the handler
// says why: the stream it was writing ends with its last chunk, not cut.
// Close, after it, finds nothing left to cut.
func TestCancelRequestsLeavesAnswersWhole(t *testing.T) {
	errStop := errors.New("stopping")
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		io.WriteString(w, "data: "+context.Cause(r.Context()).Error()+"\n\n")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("data: first\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first event: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil with a stream in flight")
	}
	s.CancelRequests(errStop)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "data: stopping\n\n" {
		t.Fatalf("after CancelRequests the client read %q, %v; want the handler's last event and the body's proper end", rest, err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("the connection after the cancelled request: %v; want it closed (EOF)", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown after CancelRequests: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve returned %v; want http.ErrServerClosed", err)
	}
}

// TestDisconnectsLeaveNothing: clients that leave in the middle of an
// answer, by closing or by resetting, end their requests, and nothing of
// them stays: Shutdown finds no connection to wait for and the disconnect
// watcher holds no registration for them.
func TestDisconnectsLeaveNothing(t *testing.T) {
	const clients = 40
	firstID := lastWatchID()
	ended := make(chan struct{}, clients)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		ended <- struct{}{}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	for i := range clients {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 512)
		if n, err := c.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "first") {
			t.Fatalf("client %d: first chunk %q, %v", i, buf[:n], err)
		}
		if i%2 == 1 {
			c.(*net.TCPConn).SetLinger(0) // close with a reset
		}
		c.Close()
	}
	for i := range clients {
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d requests still running after their clients left", clients-i, clients)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (connections left behind)", err)
	}
	if n := watchedSince(firstID); n != 0 {
		t.Errorf("the watcher holds %d of this test's connections after they closed; want 0", n)
	}
}

// TestFlushSendsOneChunk: the writes between two flushes leave as one chunk
// (an SSE event is three writes), as with net/http, not one chunk each.
func TestFlushSendsOneChunk(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for _, ev := range []string{"one", "two"} {
			io.WriteString(w, "data: ")
			io.WriteString(w, ev)
			io.WriteString(w, "\n\n")
			rc.Flush()
		}
	})}
	c := serveOne(t, s)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(raw), "\r\n\r\n")
	if want := "b\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n0\r\n\r\n"; !ok || body != want {
		t.Errorf("chunked body %q; want %q", body, want)
	}
}

// TestHTTPDate: the Date value is formatted once per second and is the
// right second's, also when time goes back.
func TestHTTPDate(t *testing.T) {
	base := time.Date(2026, 11, 30, 13, 5, 7, 0, time.FixedZone("CST", 8*3600))
	for _, at := range []time.Time{
		base,
		base.Add(999 * time.Millisecond),
		base.Add(time.Second),
		base.Add(-time.Hour),
		base,
	} {
		want := at.UTC().Format(http.TimeFormat)
		if got := string(httpDate(at)); got != want {
			t.Fatalf("httpDate(%v) = %q; want %q", at, got, want)
		}
	}
	a, b := httpDate(base), httpDate(base.Add(500*time.Millisecond))
	if &a[0] != &b[0] {
		t.Errorf("two answers in one second formatted the date twice")
	}
}

// TestPipelinedHeadGetsTheHeaderTimeout: a request pipelined behind another,
// of which only two bytes ever come, is cut by the header timeout, as
// net/http's server does, also while the server looks past the POST body
// before it for stray line breaks (which waited without a deadline before).
// The timeout is 1s, not 20ms: it also bounds the wait for the first
// request from the accept on, and a client stalled 20ms between its dial
// and its write (a loaded CI machine under -race) lost the connection
// before it asked anything; serveOne's 10s deadline still fails a wait
// without a deadline.
func TestPipelinedHeadGetsTheHeaderTimeout(t *testing.T) {
	s := &Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method+" "+r.URL.Path)
	})}
	c := serveOne(t, s)
	if _, err := io.WriteString(c, "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGE"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to the first request: %v", err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "POST /first" {
		t.Fatalf("first answer %q", b)
	}
	// As net/http: the two bytes are a malformed request line by then.
	if b, err := io.ReadAll(br); err != nil || len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 400 ") {
		t.Fatalf("after the header timeout: read %q, %v; want a 400 or nothing, and the connection closed", b, err)
	}
}

// TestIdleTimeout: a keep-alive connection stays open for IdleTimeout after
// each answer, even when the deadline an earlier wait left in place passes
// first (the server does not move it for every request), and is closed
// once it has been idle that long.
func TestIdleTimeout(t *testing.T) {
	const idle = 1500 * time.Millisecond
	s := &Server{IdleTimeout: idle, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	})}
	c := serveOne(t, s)
	br := bufio.NewReader(c)
	ask := func(path string) {
		t.Helper()
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", path, err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != path {
			t.Fatalf("%s: answer %q", path, b)
		}
	}
	// The client is slow: each of its requests comes 3/5 of the idle
	// time after the last answer (or its connecting), so the second is
	// past the deadline the first wait set. Each wait leaves 600ms to its
	// own end for a loaded CI machine under -race (with 600ms idle and
	// waits of 400ms and 300ms, a stall of 200ms closed the connection).
	time.Sleep(idle * 3 / 5)
	ask("/first")
	time.Sleep(idle * 3 / 5)
	ask("/second")
	// Then it stays silent: the server closes the connection.
	if b, err := io.ReadAll(br); err != nil || len(b) > 0 {
		t.Fatalf("after the idle timeout: read %q, %v; want the connection closed", b, err)
	}
}

// TestSilentConnectionGetsTheHeaderTimeout: a connection that never sends a
// byte is closed after ReadHeaderTimeout, as by net/http, not after
// IdleTimeout: on the listener WeChat Pay's notifications reach, sockets
// that send nothing must be cheap to drop.
func TestSilentConnectionGetsTheHeaderTimeout(t *testing.T) {
	const header, idle = 200 * time.Millisecond, time.Minute
	c := serveOne(t, &Server{ReadHeaderTimeout: header, IdleTimeout: idle,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	// The read ends when the server closes; the deadline only keeps a
	// failing run from waiting the whole idle minute.
	c.SetReadDeadline(time.Now().Add(idle / 2))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("a silent connection: read %d bytes, %v; want it closed (EOF) after the header timeout, well before the idle timeout", n, err)
	}
}

// serveOne serves s on a loopback listener for the test's duration and
// returns a raw client connection to it, with a generous deadline.
func serveOne(t testing.TB, s *Server) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// TestKeptRequestOutlivesTheNext: a handler may keep its request (a
// goroutine reading r.Header after it returned): the next request on the
// connection is read into storage of its own, so the kept one still reads
// as it arrived, however many header lines either had.
func TestKeptRequestOutlivesTheNext(t *testing.T) {
	kept := make(chan *http.Request, 3)
	c := serveOne(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept <- r
		io.WriteString(w, "ok")
	})})
	head := func(path, bot string, extra int) string {
		var b strings.Builder
		b.WriteString("GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Bot: " + bot + "\r\n")
		for i := range extra {
			b.WriteString("X-Extra-" + strconv.Itoa(i) + ": " + bot + "\r\n")
		}
		b.WriteString("\r\n")
		return b.String()
	}
	want := []struct {
		path, bot string
		extra     int
	}{{"/first", "one", 2}, {"/second", "two", 30}, {"/third", "three", 0}}
	br := bufio.NewReader(c)
	var reqs []*http.Request
	for _, w := range want {
		if _, err := io.WriteString(c, head(w.path, w.bot, w.extra)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		reqs = append(reqs, <-kept)
	}
	for i, w := range want {
		r := reqs[i]
		if r.URL.Path != w.path || r.Header.Get("X-Bot") != w.bot || len(r.Header) != 1+w.extra {
			t.Errorf("request %d, kept while later ones were read: %s X-Bot %q, %d header names; want %s %q, %d",
				i+1, r.URL.Path, r.Header.Get("X-Bot"), len(r.Header), w.path, w.bot, 1+w.extra)
		}
		for j := range w.extra {
			if v := r.Header.Get("X-Extra-" + strconv.Itoa(j)); v != w.bot {
				t.Errorf("request %d: X-Extra-%d %q; want %q", i+1, j, v, w.bot)
			}
		}
	}
}
