package failover

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/paygate/paygate/failover/h1"
)

// headResetConn fails one Write when armed: the server reset a pooled
// keep-alive connection just as the next request's head went out.
type headResetConn struct {
	net.Conn
	arm *atomic.Bool
}

func (c headResetConn) Write(p []byte) (int, error) {
	if c.arm.CompareAndSwap(true, false) {
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return c.Conn.Write(p)
}

// TestAtMostOnceResentFromGetBodyEndsRound: an AtMostOnce upload over
// 64 KiB whose head write fails on a reused connection is re-sent by h1 on
// a new connection from GetBody. The provider reads that request whole,
// then the connection is lost before any answer: it may have acted on it.
// The round must end there: no provider may get the upload again.
func TestAtMostOnceResentFromGetBodyEndsRound(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var wholeAtA atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.Method == http.MethodGet {
						_, _ = io.Copy(io.Discard, req.Body)
						_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"id\":\"file-x\"}")
						continue
					}
					n, _ := io.Copy(io.Discard, req.Body)
					if n == req.ContentLength {
						wholeAtA.Add(1) // the provider has the upload whole and acts on it
					}
					return // and the connection is lost before its answer
				}
			}(c)
		}
	}()
	var hitsB atomic.Int32
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hitsB.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"file-b","object":"file"}`)
	}))
	t.Cleanup(b.Close)

	var arm atomic.Bool
	d := &net.Dialer{}
	tr := &h1.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return headResetConn{Conn: c, arm: &arm}, nil
	}}
	cfg := testConfig(map[string]string{"a": "http://" + ln.Addr().String() + "/v1", "b": b.URL + "/v1"}, []string{"a", "b"})
	r, err := New(cfg, Options{Transport: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })

	// A first call leaves a keep-alive connection to a in the pool.
	resp, err := r.Open(t.Context(), &Request{Model: "gpt", Method: "GET", Path: "/files/file-x"})
	if err != nil || resp.Provider != "a" {
		t.Fatalf("warm-up: %v", err)
	}
	_, _ = io.ReadAll(resp)
	resp.Close()

	arm.Store(true) // the reused connection's next write fails
	body := "--b\r\n" + strings.Repeat("x", 100<<10)
	resp, err = r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/files", Body: []byte(body),
		ContentType: "multipart/form-data; boundary=b", AtMostOnce: true})
	provider := ""
	if err == nil {
		provider = resp.Provider
		resp.Close()
	}
	t.Logf("a received the upload whole %d time(s); b got %d; answered by %q, err %v", wholeAtA.Load(), hitsB.Load(), provider, err)
	if arm.Load() || wholeAtA.Load() == 0 {
		t.Fatalf("the case did not happen: head write failed %v, a got the upload whole %d time(s)", !arm.Load(), wholeAtA.Load())
	}
	if n := wholeAtA.Load() + hitsB.Load(); n > 1 {
		t.Errorf("an AtMostOnce upload reached providers whole %d times (a %d, b %d); want at most once", n, wholeAtA.Load(), hitsB.Load())
	}
}
