//go:build linux

package h1

import (
	"io"
	"net"
	"net/http"
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
