package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// startedExchanges is hungState that says when a kept exchange's read has
// begun.
type startedExchanges struct {
	hungState
	started chan struct{}
}

func (s *startedExchanges) GetExchange(ctx context.Context, key string) ([]byte, error) {
	select {
	case <-s.started:
	default:
		close(s.started)
	}
	return s.hungState.GetExchange(ctx, key)
}

// TestClientGoneDuringExchangeReadsIsNoStoreFailure: a bot that hangs up
// while its turn reads the kept payment exchanges of its conversation ends
// the reads, and the store, only asked, did not fail: the turn logged a
// warning that the exchanges were unreadable and another that the user's
// money-moving calls were held, of a store that answers, for every bot
// that timed out or was stopped early, as the state load no longer does.
func TestClientGoneDuringExchangeReadsIsNoStoreFailure(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
	cfg := testConfig(t, fp.URL, nil)
	logs := &logtest.Buffer{}
	log := logging.New(logs, slog.LevelDebug, cfg.Secrets())
	reg := prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	st := &startedExchanges{started: make(chan struct{})}
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg,
		HashKey: []byte(cfg.Privacy.HashKey), Tools: queryTools{}, State: st})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	h := s.Handler()
	srv := h1test.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(t.Context())
	body := `{"model":"gpt-test",` + weatherTool + `"messages":[{"role":"user","content":"weather?"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},` +
		`{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set("X-WeChat-OpenID", "o-user-1")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-st.started
	cancel()
	<-done
	<-errc
	for _, msg := range []string{"kept payment exchanges unreadable", "money-moving calls held"} {
		if strings.Contains(logs.String(), msg) {
			t.Errorf("logged %q for a bot that hung up:\n%s", msg, logs.String())
		}
	}
}
