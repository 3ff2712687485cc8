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
// reached the provider 1.4 to 1.6 s after it was sent, and under a 1 s
// timeouts.first_byte 10 to 20 of them failed with
// upstream_first_byte_timeout. Over HTTP/1.1, as on the direct path, the
// provider sees every request in HTTP/1.1, refuses no stream, and holds
// all 20 at once: each answer waits until the 20 have arrived, or until
// the provider refused a stream (so that the test ends either way).
func TestProxiedProviderStreamLimit(t *testing.T) {
	const bots = 20
	var arrived, answered atomic.Int32
	var mu sync.Mutex
	var protos []string   // each request's protocol, as the provider saw it
	var h2errors []string // the provider's HTTP/2 errors: a refused stream is "over_max_streams_race"
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos = append(protos, r.Proto)
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		// The first chat answers at once; the burst's wait until all
		// of them are held at the provider together.
		if n := arrived.Add(1); n == 1+bots {
			open()
		} else if n > 1 {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "text/event-stream")
		answered.Add(1)
		for _, e := range []string{roleChunk(), contentChunk("from a"), finishChunk(), "[DONE]"} {
			_, _ = io.WriteString(w, "data: "+e+"\n\n")
		}
	}))
	up.EnableHTTP2 = true
	up.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 2, CountError: func(errType string) {
		mu.Lock()
		h2errors = append(h2errors, errType)
		mu.Unlock()
		open()
	}}
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
	// Generous waits: a loaded machine must not fail the test.
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

	var wg sync.WaitGroup
	var failed []string
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
	if len(failed) > 0 {
		t.Errorf("%d of %d concurrent bots failed through the proxy (first: %s); want every one answered", len(failed), bots, failed[0])
	}
	if n := answered.Load(); n != 1+bots-int32(len(failed)) {
		t.Errorf("the provider answered %d requests for %d answers", n, 1+bots-len(failed))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(h2errors) > 0 {
		t.Errorf("the provider's HTTP/2 errors %v (over_max_streams_race: a stream refused, which net/http sends again after 1 s, then 2 s); want none", h2errors)
	}
	for _, p := range protos {
		if p != "HTTP/1.1" {
			t.Errorf("the provider got its requests through the proxy in %v; want HTTP/1.1 alone, as on the direct path", protos)
			break
		}
	}
}
