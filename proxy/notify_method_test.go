package proxy

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestNotifyRouteWrongMethod: the notify route asked with another method
// than POST (an operator checking that the notify_url reaches paygate) is
// answered by the notify handler, on the main listener and on
// server.notify_listen alike: 405 in WeChat's {"code":"FAIL"} shape, with
// its metric and log line. It was the main listener's catch-all 404
// "unknown endpoint … the OpenAI API is served under /v1", which told the
// operator the route was not there, and on the notify listener ServeMux's
// plain-text 405, neither counted nor logged.
func TestNotifyRouteWrongMethod(t *testing.T) {
	for _, listener := range []string{"main", "notify_listen"} {
		t.Run(listener, func(t *testing.T) {
			cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) {
				if listener == "notify_listen" {
					c.Server.NotifyListen = "127.0.0.1:0"
				}
			})
			log := logging.New(&logtest.Buffer{}, slog.LevelDebug, cfg.Secrets())
			reg := prometheus.NewRegistry()
			catalog, err := payments.NewCatalog([]payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99"}})
			if err != nil {
				t.Fatal(err)
			}
			svc, err := payments.New(payments.Options{Store: testdrivers.Open(t, "embedded", nil), Backend: noWeChatPay{},
				Catalog: catalog, MchID: "1900000001", Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = svc.Close() })
			router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = router.Close() })
			s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg,
				HashKey: []byte(cfg.Privacy.HashKey), Notify: svc.NotifyHandler()})
			if err != nil {
				t.Fatal(err)
			}
			h := s.Handler()
			if listener == "notify_listen" {
				h = s.NotifyHandler()
			}
			srv := h1test.NewServer(h)
			t.Cleanup(srv.Close)
			for _, method := range []string{http.MethodGet, http.MethodPut} {
				resp := send(t, method, srv.URL, payments.NotifyPath, "", nil)
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusMethodNotAllowed || gjson.Get(body, "code").Str != "FAIL" {
					t.Errorf("%s %s: %d %s; want 405 {\"code\":\"FAIL\",…}", method, payments.NotifyPath, resp.StatusCode, body)
				}
				// A 405 names the methods the route serves (RFC 9110
				// 15.5.6), as ServeMux's did and every other 405 here does.
				if got := resp.Header.Get("Allow"); got != http.MethodPost {
					t.Errorf("%s %s: Allow %q; want POST", method, payments.NotifyPath, got)
				}
			}
		})
	}
}
