package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// canceledLists is an AdminPayments whose lists fail with the caller's
// cancellation, as the Redis driver passes it on (mapErr).
type canceledLists struct{ AdminPayments }

func (canceledLists) ListOrders(ctx context.Context, _ store.OrderFilter) ([]*store.Order, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// canceledAudit is a store.Audit whose head is read until the caller's
// cancellation, and fails with it, as the Redis driver passes it on.
type canceledAudit struct{ store.Audit }

func (canceledAudit) AuditHead(ctx context.Context) (store.AuditHead, error) {
	<-ctx.Done()
	return store.AuditHead{}, ctx.Err()
}

// TestAdminClientGoneIsNoServerError: an operator's console or script that
// goes away while an admin list is read counts as 499, as a bot's chat turn
// does: it counted as a 500 "internal error" on paygate_requests_total and
// logged that the admin API failed. A read the drain's deadline ends
// (ErrShuttingDown) is no server error either: it is answered 503
// server_shutdown, as the bot's requests the deadline ends are, and was a
// 500 "internal error" too. So for the orders and for the audit chain.
func TestAdminClientGoneIsNoServerError(t *testing.T) {
	for _, tc := range []struct {
		name        string
		path, route string
		cause       error
		status      string
		code        string // the answer's "code"
	}{
		{"orders, client gone", "/admin/api/orders", "admin_orders", context.Canceled, "499", ""},
		{"orders, drain deadline", "/admin/api/orders", "admin_orders", ErrShuttingDown, "503", "server_shutdown"},
		{"audit, client gone", "/admin/api/audit/head", "admin_audit", context.Canceled, "499", ""},
		{"audit, drain deadline", "/admin/api/audit/head", "admin_audit", ErrShuttingDown, "503", "server_shutdown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) { c.Admin.Token = auditAdminToken })
			logs := &logtest.Buffer{}
			log := logging.New(logs, slog.LevelDebug, cfg.Secrets())
			reg := prometheus.NewRegistry()
			router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = router.Close() })
			s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg, AdminPayments: canceledLists{}})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			s.MountAdminAPI(mux)
			s.MountAdminAudit(mux, canceledAudit{}, nil)
			ctx, cancel := context.WithCancelCause(t.Context())
			cancel(tc.cause) // the operator has gone, or the drain's deadline came
			req := httptest.NewRequest(http.MethodGet, tc.path, nil).WithContext(ctx)
			req.Header.Set("Authorization", "Bearer "+auditAdminToken)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			for _, status := range []string{"499", "500", "503"} {
				want := 0.0
				if status == tc.status {
					want = 1
				}
				if got := testutil.ToFloat64(s.metrics.requests.WithLabelValues(tc.route, status)); got != want {
					t.Errorf(`paygate_requests_total{route=%q,status=%q} = %v; want %v`, tc.route, status, got, want)
				}
			}
			if got := gjson.Get(rec.Body.String(), "code").Str; got != tc.code {
				t.Errorf("answer %s; want code %q", rec.Body, tc.code)
			}
			if strings.Contains(logs.String(), "API failed") {
				t.Errorf("logged a failure for a request nothing failed:\n%s", logs.String())
			}
		})
	}
}
