//go:build unix

package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

// TestIdleConnectionClosedWhileIdle: a server that closes each keep-alive
// connection after its answer costs nothing. A POST, which is never sent
// twice once written (the server may have acted on it), is saved by the
// checkout's peek, which sees the close and dials anew, whether its body
// can be had again (the failover's, a byte slice) or not.
func TestIdleConnectionClosedWhileIdle(t *testing.T) {
	for _, resendable := range []bool{false, true} {
		t.Run(map[bool]string{false: "no GetBody", true: "GetBody"}[resendable], func(t *testing.T) {
			closed := make(chan struct{}, 10)
			u, conns := rawServer(t, func(n int, c net.Conn) {
				br := bufio.NewReader(c)
				if _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(c, okAnswer)
				closed <- struct{}{} // the deferred Close follows at once
			})
			tr := &Transport{}
			for i := 0; i < 3; i++ {
				var body io.Reader = strings.NewReader("{}")
				if !resendable {
					body = io.NopCloser(body)
				}
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, u, body)
				req.ContentLength = 2
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if b := readAll(t, resp); b != "ok" {
					t.Fatalf("request %d: %q", i, b)
				}
				<-closed
				waitPeerClosed(t, tr)
			}
			if n := conns.Load(); n != 3 {
				t.Fatalf("%d connections; want 3 (each server close seen)", n)
			}
		})
	}
}

// waitPeerClosed waits until the pooled connection has seen the server's
// close (its FIN), so the next checkout's peek is deterministic.
func waitPeerClosed(t *testing.T, tr *Transport) {
	t.Helper()
	tr.mu.Lock()
	var cs []*conn
	for _, l := range tr.idle {
		cs = append(cs, l...)
	}
	tr.mu.Unlock()
	for _, c := range cs {
		tc := c.nc.(*net.TCPConn)
		rc, _ := tc.SyscallConn()
		// A blocking peek returns once the FIN is there.
		var buf [1]byte
		rc.Read(func(fd uintptr) bool {
			_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return err != syscall.EAGAIN
		})
	}
}
