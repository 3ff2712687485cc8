package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fullConn is a connection whose socket buffer can be made full: once
// fill is called, every write waits, as one to a server that reads
// nothing more does, until the write deadline passes or the connection
// closes. Reads and everything else are the connection's.
type fullConn struct {
	net.Conn
	mu       sync.Mutex
	full     bool
	closed   bool
	deadline time.Time
	changed  chan struct{} // closed, and replaced, when any of the above changes
}

func newFullConn(c net.Conn) *fullConn { return &fullConn{Conn: c, changed: make(chan struct{})} }

func (c *fullConn) update(f func()) {
	c.mu.Lock()
	f()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *fullConn) fill() { c.update(func() { c.full = true }) }

func (c *fullConn) Write(p []byte) (int, error) {
	for {
		c.mu.Lock()
		full, closed, deadline, changed := c.full, c.closed, c.deadline, c.changed
		c.mu.Unlock()
		switch {
		case closed:
			return 0, net.ErrClosed
		case !full:
			return c.Conn.Write(p)
		case !deadline.IsZero() && !time.Now().Before(deadline):
			return 0, os.ErrDeadlineExceeded
		}
		var expired <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			expired = t.C
			defer t.Stop()
		}
		select {
		case <-changed:
		case <-expired:
		}
	}
}

func (c *fullConn) SetDeadline(t time.Time) error {
	c.update(func() { c.deadline = t })
	return c.Conn.SetDeadline(t)
}

func (c *fullConn) SetWriteDeadline(t time.Time) error {
	c.update(func() { c.deadline = t })
	return c.Conn.SetWriteDeadline(t)
}

func (c *fullConn) Close() error {
	c.update(func() { c.closed = true })
	return c.Conn.Close()
}

// TestDroppedTLSConnectionClosesAtOnce: an exchange given up over TLS
// while its upload was not all sent (cancelled, or answered early by a
// server that then reads nothing more) closes its connection at once.
// tls.Conn.Close first writes a close_notify alert, waiting up to 5 s for
// the socket to take it; a socket whose buffer is full of request bytes the
// server does not read takes none, and the cancelled request (a failover
// attempt past its first-byte timeout, the next provider waiting) returned
// 5 s late, or the early answer's last read did. net/http's Transport,
// which closes such a connection while its writer is still in its write,
// sends no alert there.
func TestDroppedTLSConnectionClosesAtOnce(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	pool := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	ts.Close()

	for _, tc := range []struct {
		name   string
		answer string // sent once the head is in; "": none, the request is cancelled
	}{
		{name: "cancelled"},
		{name: "answered early", answer: "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 2\r\n\r\n{}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headIn := make(chan struct{})
			u, _ := rawServer(t, func(n int, nc net.Conn) {
				c := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, tc.answer)
				close(headIn)
				io.Copy(io.Discard, nc) // the socket, unread by TLS, until the client closes it
			})
			u = "https" + strings.TrimPrefix(u, "http")
			conns := make(chan *fullConn, 1)
			tr := &Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool},
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					fc := newFullConn(c)
					conns <- fc
					return fc, nil
				},
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u+"/v1/files", bytes.NewReader(make([]byte, 1<<20)))
			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := tr.RoundTrip(req)
				done <- result{resp, err}
			}()
			fc := <-conns
			<-headIn
			fc.fill()
			var start time.Time
			if tc.answer == "" {
				start = time.Now()
				cancel()
				if r := <-done; !errors.Is(r.err, context.Canceled) {
					t.Fatalf("RoundTrip: %v; want the cancellation", r.err)
				}
			} else {
				r := <-done
				if r.err != nil {
					t.Fatal(r.err)
				}
				start = time.Now()
				if b, err := io.ReadAll(r.resp.Body); err != nil || r.resp.StatusCode != 413 || string(b) != "{}" {
					t.Fatalf("answer %d %q, %v; want 413 \"{}\"", r.resp.StatusCode, b, err)
				}
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("the exchange ended %v after it was given up; want at once", d.Round(time.Millisecond))
			}
		})
	}
}
