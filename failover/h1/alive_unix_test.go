//go:build unix

package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
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

// TestIdleTLSConnectionClosedByServer: a TLS server that closes a
// keep-alive connection it kept idle (Go's, nginx, a CDN, at their idle
// timeout) sends a close_notify alert before its FIN. Those bytes on the
// idle socket must mark the connection dead: taken for the next request, a
// POST (never sent twice once written) failed before any byte of its answer,
// and every such request was a failed attempt on a healthy provider. A TLS
// connection the server keeps open is still reused, in TLS 1.3 too, whose
// session tickets are read with the first answer.
func TestIdleTLSConnectionClosedByServer(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			var conns atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				io.WriteString(w, "ok")
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.TLS = &tls.Config{MinVersion: version, MaxVersion: version}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
			tr := &Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			defer tr.CloseIdleConnections()
			send := func(what string) {
				t.Helper()
				resp, err := post(t, tr, context.Background(), srv.URL, "{}")
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if b := readAll(t, resp); b != "ok" {
					t.Fatalf("%s: %q", what, b)
				}
			}
			send("first request")
			send("second request")
			if n := conns.Load(); n != 1 {
				t.Fatalf("%d connections for two requests; want the open one reused", n)
			}
			srv.CloseClientConnections() // close_notify, then FIN
			waitPeerClosed(t, tr)
			send("request after the server closed the idle connection")
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections; want 2 (a new one after the close)", n)
			}
		})
	}
}

// waitPeerClosed waits until each pooled connection has seen the server's
// close (its close_notify or its FIN), so the next checkout's peek is
// deterministic.
func waitPeerClosed(t *testing.T, tr *Transport) {
	t.Helper()
	tr.mu.Lock()
	var cs []*conn
	for _, l := range tr.idle {
		cs = append(cs, l...)
	}
	tr.mu.Unlock()
	for _, c := range cs {
		// A blocking peek returns once a byte or the FIN is there.
		var buf [1]byte
		c.raw.Read(func(fd uintptr) bool {
			_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return err != syscall.EAGAIN
		})
	}
}

// TestSweepClosesConnectionsTheServerClosed: the periodic sweep also closes
// pooled connections whose server has closed them, not only those idle past
// IdleConnTimeout: a provider that closes idle connections after a second
// otherwise leaves sockets in CLOSE-WAIT for up to two sweeps (180 s).
func TestSweepClosesConnectionsTheServerClosed(t *testing.T) {
	closed := make(chan struct{}, 1)
	u, _ := rawServer(t, func(n int, c net.Conn) {
		if _, err := readRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, okAnswer)
		closed <- struct{}{} // the deferred Close follows at once
	})
	tr := &Transport{}
	defer tr.CloseIdleConnections()
	resp, err := post(t, tr, context.Background(), u, "{}")
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); b != "ok" {
		t.Fatalf("answer %q", b)
	}
	<-closed
	waitPeerClosed(t, tr)
	tr.sweep()
	tr.mu.Lock()
	n := 0
	for _, l := range tr.idle {
		n += len(l)
	}
	tr.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d pooled connections after the sweep; want 0 (the server closed its one)", n)
	}
}

// TestTLSBytesPastTheBodyDropTheConnection: an upstream that sends more
// than its Content-Length (a second answer nobody asked for, or the rest of
// a miscounted body) in the TLS record that ends the body leaves those
// bytes decrypted inside the TLS connection, where neither the reader's
// buffer nor the socket's peek sees them. Pooled, the connection gave them
// to the next request as its answer: another request's bytes, or forged
// ones, to another bot. net/http's Transport, which reads ahead on an idle
// connection, drops it ("Unsolicited response received on idle HTTP
// channel"); so must this one.
func TestTLSBytesPastTheBodyDropTheConnection(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	pool := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	ts.Close()

	// The body: a little in the head's record, the rest (over the reader's
	// 8 KiB buffer, so read straight into the caller's slice) in one record
	// with a forged answer after it.
	const bodyLen = 12 << 10
	body := strings.Repeat("a", bodyLen)
	forged := "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
	u, conns := rawServer(t, func(n int, nc net.Conn) {
		c := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}, DynamicRecordSizingDisabled: true})
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			req, err := readRequest(br)
			if err != nil {
				return
			}
			if n == 1 && i == 0 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(bodyLen)+"\r\n\r\n"+body[:100])
				io.WriteString(c, body[100:]+forged) // one record
				continue
			}
			real := "real" + strings.TrimPrefix(req.URL.Path, "/")
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(real))+"\r\n\r\n"+real)
		}
	})
	u = "https" + strings.TrimPrefix(u, "http")
	tr := &Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodGet, u+"/1", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, buf := 0, make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		got += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("first body: %v after %d bytes", err, got)
		}
	}
	if got != bodyLen {
		t.Fatalf("first body %d bytes; want %d", got, bodyLen)
	}
	req, _ = http.NewRequest(http.MethodGet, u+"/2", nil)
	_, b, err := roundTripBody(tr, req)
	if err != nil || b != "real2" {
		t.Fatalf("second: %q, %v; want \"real2\", on a new connection", b, err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections; want 2 (the one with bytes past its body dropped)", n)
	}
}

// TestTLSCheckoutProbeAllocatesOnlyTLSsRead: every checkout of a pooled
// TLS connection, so every request to an https provider after the first,
// asks the TLS connection whether it holds bytes past the last body
// (drained). Asked with a read under a deadline in the past, it allocated
// the net package's timeout error besides crypto/tls's own reader of the
// socket (one allocation any read of a TLS connection that holds nothing
// makes): two allocations per request on the path the benchmarks keep
// free of them, where one is all the probe needs.
func TestTLSCheckoutProbeAllocatesOnlyTLSsRead(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer ts.Close()
	pool := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tr := &Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
	if _, b, err := roundTripBody(tr, req); err != nil || b != "ok" {
		t.Fatalf("%q, %v", b, err)
	}
	var c *conn
	for _, list := range tr.idle {
		c = list[0]
	}
	if c == nil {
		t.Fatal("no pooled connection")
	}
	if n := testing.AllocsPerRun(100, func() {
		if !c.drained() {
			t.Fatal("a quiet pooled TLS connection is not drained")
		}
	}); n > 1 {
		t.Fatalf("drained allocates %v times per checkout; want 1 (crypto/tls's reader of the socket)", n)
	}
	// The connection still serves: the check consumed nothing.
	if _, b, err := roundTripBody(tr, req); err != nil || b != "ok" {
		t.Fatalf("after the checks: %q, %v", b, err)
	}
}
