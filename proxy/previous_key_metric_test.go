package proxy

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// TestPreviousKeyRequestsCounted: during a client key's rotation (README:
// the new key in key, the outgoing one in previous_key, the bots moved,
// then previous_key removed) the operator must know when no bot still
// sends the old key: removed while one does, that bot gets 401 on every
// request, the very outage the overlap is for. Each request authenticated
// by a previous_key counts in
// paygate_client_previous_key_requests_total{client}, at 0 from the start;
// one under the key, or refused, does not.
func TestPreviousKeyRequestsCounted(t *testing.T) {
	const oldKey = "sk-shop-bot-old-0123456789abcdef"
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	cfg := testConfig(t, fp.URL, func(c *config.Config) {
		c.Clients[0].PreviousKey = oldKey
		c.Clients = append(c.Clients, config.Client{Name: "other-bot", Key: "sk-other-bot-0123456789abcdef"})
	})
	logger := logging.New(&logtest.Buffer{}, slog.LevelDebug, cfg.Secrets())
	reg := prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: logger, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Registry: reg, HashKey: []byte(cfg.Privacy.HashKey), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	counted := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "paygate_client_previous_key_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == "shop-bot" {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatal("no paygate_client_previous_key_requests_total{client=\"shop-bot\"}: the operator cannot tell when the old key is no longer used")
		return 0
	}
	if n := counted(); n != 0 {
		t.Errorf("at the start: %v; want 0", n)
	}
	for key, want := range map[string]int{oldKey: 200, testClientKey: 200, "sk-nobody-0123456789abcdef": 401} {
		resp := send(t, http.MethodGet, srv.URL, "/v1/models", "", map[string]string{"Authorization": "Bearer " + key})
		if resp.StatusCode != want {
			t.Errorf("GET /v1/models with %s: %d; want %d", key, resp.StatusCode, want)
		}
	}
	if n := counted(); n != 1 {
		t.Errorf("after one request under the previous key, one under the key and one refused: %v; want 1", n)
	}
	if n, err := testutil.GatherAndCount(reg, "paygate_client_previous_key_requests_total"); err != nil || n != 1 {
		t.Errorf("series: %d, %v; want 1 (other-bot has no previous_key)", n, err)
	}
}
