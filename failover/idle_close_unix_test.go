//go:build unix

package failover

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/paygate/paygate/failover/h1"
)

// TestTLSProviderIdleCloseIsNotAFailure: an HTTPS provider closes the
// keep-alive connections it kept idle for its own idle timeout (Go, nginx
// and CDNs send a TLS close_notify, then the FIN), well within paygate's. The
// pooled connections then used to be taken for alive (bytes waiting on a TLS
// socket were taken for a session ticket): after a burst and a quiet spell
// every attempt failed before its answer, each counted as a connect error
// against the breaker, and the bot got 502 upstream_connect_error while the
// providers were up. The first request after the close must be answered by
// the primary at the first attempt.
func TestTLSProviderIdleCloseIsNotAFailure(t *testing.T) {
	const burst = 4
	var arrived atomic.Int32
	all := make(chan struct{})
	a := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// The burst's requests are answered only once all of them are
		// in, so each has a connection of its own.
		switch n := arrived.Add(1); {
		case n == burst:
			close(all)
		case n < burst:
			<-all
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"from a"},"finish_reason":"stop"}]}`)
	}))
	a.StartTLS()
	t.Cleanup(a.Close)
	b := newFakeProvider(t, nil, healthy("b"))

	// The client's side of each connection, to see the server's close
	// arrive.
	var mu sync.Mutex
	var clientConns []*net.TCPConn
	dialer := &net.Dialer{Timeout: time.Second}
	tr := &h1.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				clientConns = append(clientConns, c.(*net.TCPConn))
				mu.Unlock()
			}
			return c, err
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := testConfig(map[string]string{"a": a.URL + "/v1", "b": b.url}, []string{"a", "b"})
	r, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	req := func() *Request {
		return &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"}
	}

	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			resp, err := r.Open(context.Background(), req())
			if err != nil {
				t.Error(err)
				return
			}
			resp.Close()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	a.CloseClientConnections() // what the provider's idle timeout does
	mu.Lock()
	for _, c := range clientConns {
		waitReadable(t, c)
	}
	mu.Unlock()

	resp, err := r.Open(context.Background(), req())
	if err != nil {
		t.Fatalf("after the provider closed its idle connections: %v", err)
	}
	defer resp.Close()
	if resp.Provider != "a" || resp.Attempts != 1 {
		t.Fatalf("answered by %s after %d attempts (%+v); want a at the first attempt", resp.Provider, resp.Attempts, resp.Tried)
	}
	if st := statusOf(r, "a"); st.Breaker != "closed" {
		t.Errorf("a's breaker %s; want closed", st.Breaker)
	}
}

// waitReadable waits until c's socket has something to read (bytes or the
// peer's FIN), without reading it; a closed c returns at once.
func waitReadable(t *testing.T, c *net.TCPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	var buf [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN
	})
}
