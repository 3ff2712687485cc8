package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// TestAnswerBeforeAccounting: a priced non-stream turn's answer reaches the
// client while the turn's cost is still being written to the store (with
// the embedded store that write is an fsync), not after it.
func TestAnswerBeforeAccounting(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(http.StatusOK, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}`))
	cfg := testConfig(t, fp.URL, func(c *config.Config) {
		c.Providers[0].Prices = map[string]config.Price{"vendor/upstream-model": {
			Input: config.Decimal{Micros: 2_500_000}, Output: config.Decimal{Micros: 10_000_000}}}
	})
	sessions := &blockedSessions{entered: make(chan struct{}, 1), release: make(chan struct{})}

	log := logging.New(&logtest.Buffer{}, slog.LevelDebug, cfg.Secrets())
	reg := prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	ledger, err := accounting.New(cfg, sessions, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg,
		HashKey: []byte(cfg.Privacy.HashKey), Tools: noTools{}, Ledger: ledger})
	if err != nil {
		t.Fatal(err)
	}
	srv := h1test.NewServer(s.Handler())
	defer srv.Close()
	defer ledger.Close()
	defer close(sessions.release) // first: srv.Close and ledger.Close wait for the write

	answered := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-test","user":"o-user-1","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+testClientKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			answered <- "error: " + err.Error()
			return
		}
		answered <- string(b)
	}()
	// The cost write cannot finish before the test ends (release), so an
	// answer that waited for it would never come.
	select {
	case got := <-answered:
		if !strings.Contains(got, `"content":"hello"`) {
			t.Errorf("answer %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the answer waited for the accounting write")
	}
	select {
	case <-sessions.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the turn's cost was never written")
	}
}

// blockedSessions is a SessionStore whose writes wait until released, like
// a slow disk.
type blockedSessions struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockedSessions) AddTally(ctx context.Context, _ string, delta int64, _ time.Duration) (int64, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return delta, nil
}

func (b *blockedSessions) TakeTally(context.Context, string) (int64, error) { return 0, nil }
