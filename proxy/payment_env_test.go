package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// simPayments configures newSimPayments.
type simPayments struct {
	Sim              wxsim.Options
	Catalog          []payments.CatalogItem
	AttemptTimeout   time.Duration // of each call to WeChat Pay
	ActiveQueryAfter time.Duration // 0: the service's default
	// Hook, when not nil, sees each request to WeChat Pay first.
	Hook func(r *http.Request)
}

// simKeys is the simulator's key material, made once for the package's
// tests: three 2048-bit RSA keys took 0.3 s of CPU under -race, made anew
// by each simulator (7.8 s of the package's 57 s), and no test here needs
// keys of its own.
var simKeys = sync.OnceValues(wxsim.GenerateKeys)

// newSimPayments is a payments.Service over st and the WeChat Pay simulator
// behind httptest (notifications go nowhere), both closed at the test's end.
func newSimPayments(t *testing.T, st payments.Store, o simPayments) (*wxsim.Server, *payments.Service) {
	t.Helper()
	if o.Sim.Keys == nil {
		keys, err := simKeys()
		if err != nil {
			t.Fatal(err)
		}
		o.Sim.Keys = keys
	}
	sim, err := wxsim.New(o.Sim)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.Hook != nil {
			o.Hook(r)
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { api.Close(); _ = sim.Close() })
	wcfg := sim.ClientConfig(api.URL, "http://127.0.0.1:1/wechatpay/notify")
	wcfg.AttemptTimeout = o.AttemptTimeout
	client, err := wechatpay.New(context.Background(), wcfg)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := payments.NewCatalog(o.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := payments.New(payments.Options{Store: st, Backend: client, Catalog: catalog,
		MchID: sim.MchID(), AppID: sim.AppID(), Registerer: prometheus.NewRegistry(),
		ActiveQueryAfter: o.ActiveQueryAfter, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return sim, svc
}

// simTools are the payment tools of svc under their usual names.
func simTools(svc *payments.Service) *payments.Tools {
	return payments.NewTools(svc, payments.ToolNames{CreateOrder: "create_order", QueryOrder: "query_order", RequestRefund: "request_refund"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// servePaygate serves newPaygate's proxy for cfg with o, its handler
// wrapped by wrap when not nil; it returns the proxy and its URL.
func servePaygate(t *testing.T, cfg *config.Config, o Options, wrap func(http.Handler) http.Handler) (*Server, string) {
	t.Helper()
	s := newPaygate(t, cfg, o)
	var h http.Handler = s.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := h1test.NewServer(h)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// newPaygate is a proxy for cfg with o, whose Config, Upstream, Registry
// and HashKey it fills in, and its Logger when nil (a debug log nobody
// reads); the router, which logs to o.Logger too, is closed at the test's
// end.
func newPaygate(t *testing.T, cfg *config.Config, o Options) *Server {
	t.Helper()
	if o.Logger == nil {
		o.Logger = logging.New(&logtest.Buffer{}, slog.LevelDebug, cfg.Secrets())
	}
	reg := prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: o.Logger, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	o.Config, o.Upstream, o.Registry, o.HashKey = cfg, router, reg, []byte(cfg.Privacy.HashKey)
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
