//go:build linux

package h1

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pipeListener accepts loopback TCP connections but serves each over an
// in-memory pipe, which buffers nothing: a write to a client that does not
// read blocks at once, where a socket's buffers would take a few hundred
// KiB first. The TCP connection gives the disconnect watcher its
// descriptor; its client stays open and silent.
type pipeListener struct {
	net.Listener
	clients chan net.Conn // the client ends of the pipes
}

func (l pipeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	srv, cli := net.Pipe()
	l.clients <- cli
	return pipeConn{Conn: srv, tcp: c.(*net.TCPConn)}, nil
}

type pipeConn struct {
	net.Conn
	tcp *net.TCPConn
}

func (c pipeConn) SyscallConn() (syscall.RawConn, error) { return c.tcp.SyscallConn() }

func (c pipeConn) Close() error {
	c.tcp.Close()
	return c.Conn.Close()
}

// TestAnswerEndAfterClearedDeadlineIsBounded: a handler that clears its
// write deadline before it returns (paygate's passthrough does, once the
// provider's body has ended: "the connection may serve the bot's next
// request") leaves the end of its answer (a stream's last chunk, written
// when the handler has returned) to the server, whose WriteStallTimeout
// bounds it again: the handler's deadline stands in for the server's only
// until it returns. The server went on without a deadline, and a client
// that stopped reading then held the connection, its goroutine and
// Shutdown for as long as it stayed connected.
func TestAnswerEndAfterClearedDeadlineIsBounded(t *testing.T) {
	returned := make(chan struct{})
	s := &Server{WriteStallTimeout: 50 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		rc := http.NewResponseController(w)
		rc.SetWriteDeadline(time.Now().Add(time.Minute))
		io.WriteString(w, "data: last\n\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		rc.SetWriteDeadline(time.Time{})
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := pipeListener{ln, make(chan net.Conn, 1)}
	go s.Serve(pl)
	defer s.Close()
	tc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	c := <-pl.clients
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /v1/files/f/content HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The head and the first chunk come in the flush's one write; then
	// the client reads nothing more.
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "data: last") {
		t.Fatalf("the flushed answer: %q, %v", buf[:n], err)
	}
	<-returned
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v; the server's write of the answer's end still waits on a client that reads nothing, %v after the handler returned (WriteStallTimeout %v)",
			err, 3*time.Second, s.WriteStallTimeout)
	}
}
