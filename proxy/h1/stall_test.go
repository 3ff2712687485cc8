//go:build linux

package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// stalledPost is a request whose body declares far more than the client
// sends: its first bytes come with the head, then nothing.
const stalledPost = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{\"model\":"

// TestStalledBodyFailsTheRead: a client that sends a head and part of its
// body, then nothing while it stays connected, must not hold a connection
// (its goroutine, its descriptor, a place in Shutdown's wait) for as long
// as it likes: hundreds of them, on a route that needs no key, held the
// server's goroutines and descriptors until the clients left. The
// handler's read of the body fails with a timeout once the client has sent
// nothing for BodyStallTimeout. That is no disconnect: the request's
// context stays alive, for the handler to answer; the connection closes
// after the answer, which says so.
func TestStalledBodyFailsTheRead(t *testing.T) {
	type result struct {
		err    error
		ctxErr error
	}
	got := make(chan result, 1)
	s := &Server{BodyStallTimeout: 50 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		got <- result{err, r.Context().Err()}
		http.Error(w, "incomplete body", http.StatusBadRequest)
	})}
	c := serveOne(t, s)
	if _, err := io.WriteString(c, stalledPost); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's read of a stalled body is still blocked")
	}
	if !errors.Is(res.err, os.ErrDeadlineExceeded) {
		t.Errorf("the body read failed with %v; want a timeout", res.err)
	}
	if res.ctxErr != nil {
		t.Errorf("the request's context ended (%v) though the client is still connected", res.ctxErr)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Errorf("answer %s, close %v; want the handler's 400, saying the connection closes", resp.Status, resp.Close)
	}
	if b, err := io.ReadAll(br); err != nil || len(b) > 0 {
		t.Errorf("after the answer: read %q, %v; want the connection closed", b, err)
	}
}

// TestSlowBodyIsRead: the bound is on each wait for the body, not on the
// whole of it: an upload that keeps coming, however slowly, is read to its
// end (here it takes longer than the bound in all, in pieces that each
// come well within it: 700ms short of it, for a loaded CI machine under
// -race, where the 350ms that 150ms pauses left against a 500ms bound were
// too little).
func TestSlowBodyIsRead(t *testing.T) {
	const (
		stall  = time.Second
		pieces = 5
		pause  = 300 * time.Millisecond // pieces*pause > stall
	)
	s := &Server{BodyStallTimeout: stall, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, string(b))
	})}
	c := serveOne(t, s)
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for range pieces {
		time.Sleep(pause) // the client's pace, not a synchronisation
		if _, err := io.WriteString(c, "b"); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != strings.Repeat("b", pieces) {
		t.Errorf("answer %s %q; want 200 and the whole body", resp.Status, b)
	}
}

// TestStalledBodyAfterAnswerIsDropped: a handler that answers without
// reading the body (a 401 to a wrong key) leaves the server to drain it, to
// keep the connection; a client that declared more than it sends must not
// hold the connection through that drain, which had no bound: whoever has
// no key could hold connections for free. Each of the drain's waits ends
// within the lingering close's bound (set short here, and BodyStallTimeout
// long, so that the outcome has one cause); the client gets its answer,
// then the connection closes (after a lingering close, which sees nothing
// more come).
func TestStalledBodyAfterAnswerIsDropped(t *testing.T) {
	s := &Server{BodyStallTimeout: time.Hour, maxLinger: 50 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid key", http.StatusUnauthorized)
	})}
	c := serveOne(t, s)
	if _, err := io.WriteString(c, stalledPost); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c) // the answer, then the server's close; serveOne's deadline fails a hang
	if err != nil {
		t.Fatalf("the connection is still open after the answer (read %q): %v", b, err)
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 401 ") {
		t.Fatalf("answer %q; want the 401", b)
	}
}

// TestSteadyUploadAfterEarlyAnswerIsDrained: the drain's bound is on each
// wait, not on the whole of it. A handler answers an upload without reading
// it (a 401 to a wrong key, a 413); a client that sends its body steadily
// but takes longer over it than the bound was closed on mid-upload, with
// its bytes unread: a reset, so that it reported a failed write instead of
// the answer, the very case the lingering close exists for. It is drained
// to its end (under maxDrain), gets the answer, and keeps the connection,
// as with net/http. The client here never pauses for more than a quarter
// of the bound, and sends for a few times its length. The bound is 800ms,
// not 100ms: 25ms pauses left 75ms for a loaded CI machine under -race,
// where a stall is hundreds of ms.
func TestSteadyUploadAfterEarlyAnswerIsDrained(t *testing.T) {
	const size = 120 << 10
	s := &Server{BodyStallTimeout: time.Hour, maxLinger: 800 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "invalid key", http.StatusUnauthorized)
		})}
	c := serveOne(t, s)
	if _, err := fmt.Fprintf(c, "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size); err != nil {
		t.Fatal(err)
	}
	piece := strings.Repeat("b", 10<<10)
	for sent := 0; sent < size; sent += len(piece) {
		if _, err := io.WriteString(c, piece); err != nil {
			t.Fatalf("the upload failed after %d of %d bytes: %v; want it read", sent, size, err)
		}
		time.Sleep(200 * time.Millisecond) // the client's pace, not a synchronisation
	}
	br := bufio.NewReader(c)
	for _, path := range []string{"/v1/files", "/next"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer to %s: %v; want the 401", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusUnauthorized || resp.Close {
			t.Fatalf("answer to %s: %s, close %v; want 401 on a connection kept", path, resp.Status, resp.Close)
		}
		if path == "/next" {
			break
		}
		if _, err := io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStalledDrainSkipsLingeringClose: a drain that ends because the
// client sent nothing for BodyStallTimeout (here the shorter bound) closes
// without a lingering close: that client is not sending, so nothing of it
// waits unread to turn the close into a reset, and lingering would only
// hold the connection and Shutdown (for an hour here, were it to linger).
func TestStalledDrainSkipsLingeringClose(t *testing.T) {
	s := &Server{BodyStallTimeout: 50 * time.Millisecond, maxLinger: time.Hour, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid key", http.StatusUnauthorized)
	})}
	c := serveOne(t, s)
	if _, err := io.WriteString(c, stalledPost); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c); err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 401 ") {
		t.Fatalf("read %q, %v; want the 401, then the close", b, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (the connection lingers)", err)
	}
}

// TestShutdownAndCloseEndStalledBodies: Shutdown waits for a request whose
// body stalled only until its read times out (it waited for the whole
// shutdown timeout, since the client never sent more nor left), and Close
// ends such a request at once, whatever the bound. The disconnect watcher
// keeps no registration for either connection afterwards.
func TestShutdownAndCloseEndStalledBodies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stall time.Duration
		stop  func(*Server) error
	}{
		{"Shutdown", 50 * time.Millisecond, func(s *Server) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return s.Shutdown(ctx)
		}},
		{"Close", time.Hour, (*Server).Close},
	} {
		t.Run(tc.name, func(t *testing.T) {
			firstID := lastWatchID()
			reading, ended := make(chan struct{}), make(chan error, 1)
			s := &Server{BodyStallTimeout: tc.stall, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(reading)
				_, err := io.ReadAll(r.Body)
				ended <- err
			})}
			c := serveOne(t, s)
			if _, err := io.WriteString(c, stalledPost); err != nil {
				t.Fatal(err)
			}
			<-reading
			if err := tc.stop(s); err != nil {
				t.Fatalf("%s: %v (the stalled connection held it)", tc.name, err)
			}
			select {
			case err := <-ended:
				if err == nil {
					t.Error("the stalled body read without an error")
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the handler still reads after %s returned", tc.name)
			}
			// The connection is gone: the client reads its end (an answer
			// or none, then EOF or a reset), not serveOne's deadline.
			if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the connection is still open after %s", tc.name)
			}
			// Shutdown returns once the server's connections are gone, and
			// a connection leaves the watcher before that.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown after %s: %v", tc.name, err)
			}
			if n := watchedSince(firstID); n != 0 {
				t.Errorf("the watcher holds %d of this test's connections; want 0", n)
			}
		})
	}
}

// countingListener counts the deadline changes on the connections it
// accepts; they keep *net.TCPConn's methods, the watcher's descriptor
// among them.
type countingListener struct {
	net.Listener
	reads, writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c.(*net.TCPConn), l}, nil
}

type countingConn struct {
	*net.TCPConn
	l *countingListener
}

func (c countingConn) SetReadDeadline(t time.Time) error {
	c.l.reads.Add(1)
	return c.TCPConn.SetReadDeadline(t)
}

func (c countingConn) SetWriteDeadline(t time.Time) error {
	c.l.writes.Add(1)
	return c.TCPConn.SetWriteDeadline(t)
}

// serveCounting serves s on a counting loopback listener for the test's
// duration and returns it and a client connection to it.
func serveCounting(t *testing.T, s *Server) (*countingListener, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	go s.Serve(cl)
	t.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return cl, c
}

// TestBufferedBodyTakesNoReadDeadline: the bound on a body's reads costs
// the usual request nothing. A body that comes in the buffer with its head
// (a chat request's) is never read from the connection, so the requests
// of a kept-alive connection after its first change no read deadline: each
// change resets a runtime timer, which the keep-alive path was built to
// avoid (see awaitRequest).
func TestBufferedBodyTakesNoReadDeadline(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})}
	cl, c := serveCounting(t, s)
	br := bufio.NewReader(c)
	ask := func() {
		t.Helper()
		if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != "hello" {
			t.Fatalf("answer %q", b)
		}
	}
	ask() // the first wait for a request sets the connection's deadline
	before := cl.reads.Load()
	for range 10 {
		ask()
	}
	if n := cl.reads.Load() - before; n != 0 {
		t.Errorf("ten requests with buffered bodies changed the read deadline %d times; want 0", n)
	}
}

// TestNonReadingClientFailsTheWrite: a client that asks for a stream and
// reads none of it must not hold the handler, and in paygate the upstream
// connection it relays, for as long as it stays connected: once the
// socket's buffers are full, a write blocked until the client closed. Each
// write now fails when the client takes nothing for WriteStallTimeout; as
// with a client that left, the request's context is cancelled and the
// connection closed.
func TestNonReadingClientFailsTheWrite(t *testing.T) {
	type result struct {
		err    error
		ctxErr error
	}
	got := make(chan result, 1)
	chunk := []byte(strings.Repeat("x", 64<<10))
	s := &Server{WriteStallTimeout: 100 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for {
			_, err := w.Write(chunk)
			if err == nil {
				err = rc.Flush()
			}
			if err != nil {
				got <- result{err, r.Context().Err()}
				return
			}
		}
	})}
	c := serveOne(t, s)
	c.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler is still blocked writing to a client that reads nothing")
	}
	if !errors.Is(res.err, os.ErrDeadlineExceeded) {
		t.Errorf("the write failed with %v; want a timeout", res.err)
	}
	if res.ctxErr == nil {
		t.Error("the request's context is still alive after its write stalled")
	}
	// The connection is closed, with a reset: what was queued for the
	// client is dropped rather than left in the kernel.
	if n, err := io.Copy(io.Discard, c); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after the write stalled: read %d bytes, %v; want a reset", n, err)
	}
}

// TestShutdownAndCloseEndStalledWrites: Shutdown waits for a request whose
// client stopped reading only until a write stalls past its bound, and
// Close ends it at once, whatever the bound.
func TestShutdownAndCloseEndStalledWrites(t *testing.T) {
	chunk := []byte(strings.Repeat("x", 64<<10))
	for _, tc := range []struct {
		name  string
		stall time.Duration
		stop  func(*Server) error
	}{
		{"Shutdown", 100 * time.Millisecond, func(s *Server) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return s.Shutdown(ctx)
		}},
		{"Close", time.Hour, (*Server).Close},
	} {
		t.Run(tc.name, func(t *testing.T) {
			firstID := lastWatchID()
			writing, ended := make(chan struct{}), make(chan error, 1)
			s := &Server{WriteStallTimeout: tc.stall, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rc := http.NewResponseController(w)
				close(writing)
				for {
					_, err := w.Write(chunk)
					if err == nil {
						err = rc.Flush()
					}
					if err != nil {
						ended <- err
						return
					}
				}
			})}
			c := serveOne(t, s)
			c.(*net.TCPConn).SetReadBuffer(4 << 10)
			if _, err := io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			<-writing
			if err := tc.stop(s); err != nil {
				t.Fatalf("%s: %v (the stalled connection held it)", tc.name, err)
			}
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatalf("the handler still writes after %s returned", tc.name)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown after %s: %v", tc.name, err)
			}
			if n := watchedSince(firstID); n != 0 {
				t.Errorf("the watcher holds %d of this test's connections; want 0", n)
			}
		})
	}
}

// TestWriteDeadlineMovesOncePerHalfBound: the write bound costs a stream's
// events, and a kept-alive connection's requests, no timer change each:
// the deadline is moved only when it was set more than half the bound ago
// (here never, within the test), and a deadline the handler set through
// http.ResponseController stands until it returns: the answer's end, which
// the server writes after, is under the server's bound again.
func TestWriteDeadlineMovesOncePerHalfBound(t *testing.T) {
	s := &Server{WriteStallTimeout: time.Hour, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.URL.Path == "/own-deadline" {
			rc.SetWriteDeadline(time.Time{})
		}
		for range 20 {
			io.WriteString(w, "data: x\n\n")
			rc.Flush()
		}
	})}
	cl, c := serveCounting(t, s)
	br := bufio.NewReader(c)
	ask := func(path string) {
		t.Helper()
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(resp.Body); len(b) != 20*len("data: x\n\n") {
			t.Fatalf("%s: answer %q", path, b)
		}
	}
	for range 5 {
		ask("/stream")
	}
	if n := cl.writes.Load(); n != 1 {
		t.Errorf("five streams of 20 events changed the write deadline %d times; want 1", n)
	}
	ask("/own-deadline")
	if n := cl.writes.Load(); n != 3 {
		t.Errorf("after a handler set its own write deadline: %d changes; want 3 (the handler's, then the server's bound for the answer's end)", n)
	}
	ask("/stream")
	if n := cl.writes.Load(); n != 3 {
		t.Errorf("after the handler's request: %d changes; want 3 (the server's bound already back in place)", n)
	}
}

// TestSlowReaderGetsAnswerWrittenAtOnce: WriteStallTimeout cuts a client
// that stopped reading, not one that reads steadily but takes longer over
// an answer than the bound. A handler that writes its whole answer in one
// Write (paygate's relay of a JSON answer does, up to 32 MiB) makes one
// write to the connection: bounded by one deadline, it reset bots reading
// at a few hundred KB/s mid-answer though they never paused. A write the
// client keeps taking goes on. The client here reads 64 KiB every 200 ms,
// never pausing for more than a quarter of the bound, and takes several
// bounds over the whole answer: the sockets' buffers are kept small, so
// that the answer cannot go into the kernel's at once whatever its
// autotuning. (The bound is 800ms, not 100ms: reads every 10ms left 90ms
// for a loaded CI machine under -race, where a stall is hundreds of ms.)
func TestSlowReaderGetsAnswerWrittenAtOnce(t *testing.T) {
	const stall = 800 * time.Millisecond
	body := bytes.Repeat([]byte("x"), 3<<18)
	s := &Server{WriteStallTimeout: stall, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(smallSendListener{ln})
	t.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.(*net.TCPConn).SetReadBuffer(16 << 10)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 16<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	buf := make([]byte, 64<<10)
	for {
		n, err := io.ReadFull(resp.Body, buf)
		got += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v; want the whole answer", got, len(body), err)
		}
		time.Sleep(200 * time.Millisecond) // the client's pace, not a synchronisation
	}
	if got != int64(len(body)) {
		t.Fatalf("got %d of %d bytes", got, len(body))
	}
}

// TestNonReadingClientFailsAWriteAtOnce: a write that goes on while the
// client takes some of it still fails once the client takes none for the
// bound: one that stops reading part-way through an answer written at once
// does not hold the handler.
func TestNonReadingClientFailsAWriteAtOnce(t *testing.T) {
	got := make(chan error, 1)
	s := &Server{WriteStallTimeout: 50 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := w.Write(make([]byte, 8<<20))
		got <- err
	})}
	c := serveOne(t, s)
	c.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the write failed with %v; want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler is still blocked writing to a client that reads nothing")
	}
}

// smallSendListener gives the connections it accepts a small send buffer.
type smallSendListener struct{ net.Listener }

func (l smallSendListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		c.(*net.TCPConn).SetWriteBuffer(32 << 10)
	}
	return c, err
}

// TestTrickledDrainIsBoundedInTotal: the drain of a body the handler left
// (a 401 to a wrong key, the handler never reads it) bounds each wait at
// lingerTime, so a client that sends a byte just within it was drained for
// as long as it kept on: 256 KiB a byte each 490 ms held the connection
// and its goroutine for 35 hours, and no key is needed. The drain as a
// whole ends within maxDrainTime (set short here); the client has its
// answer, then the connection closes, though it is still sending.
func TestTrickledDrainIsBoundedInTotal(t *testing.T) {
	s := &Server{BodyStallTimeout: time.Hour, maxLinger: time.Second, maxDrainTime: 200 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "invalid key", http.StatusUnauthorized)
		})}
	c := serveOne(t, s) // its 10 s deadline fails a drain that does not end
	if _, err := io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond) // the client's pace, far inside each wait's bound
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := io.WriteString(c, " "); err != nil {
					return
				}
			}
		}
	}()
	b, err := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 401 ") {
		t.Fatalf("read %q; want the 401", b)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection is still open 10 s into a trickled drain (read %q): %v", b, err)
	}
}
