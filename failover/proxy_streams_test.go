package failover

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/squidtest"
)

// TestProxiedProviderStreamLimit: through the egress proxy (HTTPS_PROXY),
// requests went out on net/http's transport with HTTP/2 forced, where the
// direct path speaks HTTP/1.1. A provider that allows few concurrent
// streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS 2 here) refuses
// the streams a new connection's first burst sends before its settings
// arrive (RST_STREAM REFUSED_STREAM), which net/http sends again only
// after a back-off of one second, then two: of 20 concurrent bots the last
// reached the provider 1.4 to 1.6 s after it was sent, all answered in
// 1.5 to 2.7 s where each answer takes 0.1 s, and under a 1 s
// timeouts.first_byte 10 to 20 of them failed with
// upstream_first_byte_timeout. Over HTTP/1.1, as on the direct path, every
// one reaches the provider at once (all answered in 0.5 to 0.8 s).
func TestProxiedProviderStreamLimit(t *testing.T) {
	var answered atomic.Int32
	arrived := make(chan time.Time, 64)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- time.Now()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		// The model's time to answer.
		time.Sleep(100 * time.Millisecond)
		answered.Add(1)
		for _, e := range []string{roleChunk(), contentChunk("from a"), finishChunk(), "[DONE]"} {
			_, _ = io.WriteString(w, "data: "+e+"\n\n")
		}
	}))
	up.EnableHTTP2 = true
	up.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 2}
	up.StartTLS()
	t.Cleanup(up.Close)
	squid := squidtest.Start(t, []string{"llm.example.com"}, "")

	// The default transport, its proxy the one HTTPS_PROXY would name
	// (Go reads the environment once per process) and the provider's
	// certificate trusted as SSL_CERT_FILE would have it.
	tr := newTransport(5 * time.Second)
	tr.Proxy = squidtest.Proxy(squid)
	fb := tr.Fallback.(*http.Transport)
	fb.Proxy = tr.Proxy
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	fb.TLSClientConfig = &tls.Config{RootCAs: roots}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := testConfig(map[string]string{"a": "https://llm.example.com:" + up.URL[strings.LastIndex(up.URL, ":")+1:] + "/v1"}, []string{"a"})
	// Generous waits: a loaded machine must not fail the test; the
	// back-off is measured below.
	cfg.Providers[0].Timeouts.FirstByte = config.Duration(30 * time.Second)
	cfg.Providers[0].Timeouts.FirstToken = config.Duration(30 * time.Second)
	cfg.Providers[0].Timeouts.Total = config.Duration(60 * time.Second)
	r, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	chat := func() error {
		resp, err := r.Open(context.Background(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions",
			Body: chatBody(true), Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
		if err != nil {
			return err
		}
		defer resp.Close()
		for {
			if _, err := resp.Next(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	}
	// One chat first: the proxy has checked paygate's credentials, and
	// one connection to the provider is open, as in steady traffic.
	if err := chat(); err != nil {
		t.Fatal(err)
	}
	<-arrived

	const bots = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	start := time.Now()
	for range bots {
		wg.Go(func() {
			if err := chat(); err != nil {
				mu.Lock()
				failed = append(failed, err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if len(failed) > 0 {
		t.Errorf("%d of %d concurrent bots failed through the proxy (first: %s); want every one answered", len(failed), bots, failed[0])
	}
	if n := answered.Load(); n != 1+bots-int32(len(failed)) {
		t.Errorf("the provider answered %d requests for %d answers", n, 1+bots-len(failed))
	}
	var last time.Time
	for range answered.Load() - 1 {
		if at := <-arrived; at.After(last) {
			last = at
		}
	}
	// A refused stream is sent again after a second at the least: a
	// request that reached the provider later than that waited for it.
	if wait := last.Sub(start); wait >= time.Second {
		t.Errorf("the last of %d concurrent requests reached the provider %v after it was sent (all answered in %v); want no stream refused and sent again after a back-off",
			bots, wait.Round(time.Millisecond), took.Round(time.Millisecond))
	}
	t.Logf("%d concurrent answers through the proxy in %v", bots, took.Round(time.Millisecond))
}
