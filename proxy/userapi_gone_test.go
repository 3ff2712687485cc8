package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store"
)

// waitingOrders is a UserPayments whose order list waits for its caller to
// go away and fails then with the caller's cancellation, as the Redis
// driver passes it on (mapErr).
type waitingOrders struct {
	UserPayments
	started chan struct{}
}

func (w *waitingOrders) UserOrders(ctx context.Context, _, _, _ string, _ int) ([]*store.Order, bool, error) {
	close(w.started)
	<-ctx.Done()
	return nil, false, ctx.Err()
}

// TestUserAPIClientGoneIsNoServerError: a bot that hangs up while its
// GET /v1/paygate/orders is read gets no answer, and the request counts as
// 499, as a chat turn's does (failTurn): it counted as a 500 "the payment
// system failed", on the paygate_requests_total{status=~"5.."} the README
// alerts on, and logged a warning that the payments API failed.
func TestUserAPIClientGoneIsNoServerError(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", nil)
	logs := &logtest.Buffer{}
	log := logging.New(logs, slog.LevelDebug, cfg.Secrets())
	reg := prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	up := &waitingOrders{started: make(chan struct{})}
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg,
		HashKey: []byte(cfg.Privacy.HashKey), UserPayments: up})
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
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/paygate/orders", nil)
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
	<-up.started
	cancel()
	<-done
	<-errc
	for status, want := range map[string]float64{"499": 1, "500": 0, "503": 0} {
		if got := testutil.ToFloat64(s.metrics.requests.WithLabelValues("orders", status)); got != want {
			t.Errorf(`paygate_requests_total{route="orders",status=%q} = %v; want %v`, status, got, want)
		}
	}
	if strings.Contains(logs.String(), "user payments API failed") {
		t.Errorf("logged a failure for a bot that hung up:\n%s", logs.String())
	}
}
