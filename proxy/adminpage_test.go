package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// listingAdmin is an AdminPayments whose lists are empty and which keeps
// the cursor each list was asked from; nothing else is called.
type listingAdmin struct {
	AdminPayments
	before chan time.Time
}

func (a listingAdmin) ListOrders(_ context.Context, f store.OrderFilter) ([]*store.Order, error) {
	a.before <- f.Before
	return nil, nil
}

func (a listingAdmin) ApprovalsPage(_ context.Context, p payments.Page) ([]*store.Order, error) {
	a.before <- p.Before
	return nil, nil
}

func (a listingAdmin) RefundsPage(_ context.Context, p payments.Page) ([]payments.RefundEntry, error) {
	a.before <- p.Before
	return nil, nil
}

// TestAdminListBeforeInBeijingTime: an admin list's ?before= written with
// the offset of Beijing time as typed (+08:00, whose '+' a query string
// carries as a space unless it is escaped as %2B) is that instant, on
// every paged list, not a 400 saying it is no RFC 3339 time.
func TestAdminListBeforeInBeijingTime(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) { c.Admin.Token = auditAdminToken })
	router, err := failover.New(cfg, failover.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	pay := listingAdmin{before: make(chan time.Time, 1)}
	s, err := New(Options{Config: cfg, Upstream: router, AdminPayments: pay})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.MountAdminAPI(mux)
	midnight := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC) // 2 December, 00:00 in Beijing
	for _, path := range []string{"/admin/api/orders", "/admin/api/approvals", "/admin/api/refunds"} {
		for _, before := range []string{"2026-12-02T00:00:00+08:00", "2026-12-02T00:00:00%2B08:00", "2026-12-01T16:00:00Z", "2026-12-01T09:00:00-07:00"} {
			t.Run(path+" "+before, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodGet, path+"?before="+before, nil)
				req.Header.Set("Authorization", "Bearer "+auditAdminToken)
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("%d %s", rec.Code, rec.Body)
				}
				if got := <-pay.before; !got.Equal(midnight) {
					t.Errorf("listed before %v; want %v", got, midnight)
				}
			})
		}
	}
	// A space anywhere else is still no time.
	req := httptest.NewRequest(http.MethodGet, "/admin/api/orders?before=2026-12-02+00:00:00Z", nil)
	req.Header.Set("Authorization", "Bearer "+auditAdminToken)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("before with a space for the T: %d %s; want 400", rec.Code, rec.Body)
	}
}

// TestAdminListBeforeTheZeroTime: ?before= Go's zero time (the earliest
// instant RFC 3339 writes, however offset) is the store's "no cursor", and
// listed the newest page, an operator's "orders before the beginning"
// answered with the latest ones. It is a 400 naming before, on every
// paged list, which lists nothing.
func TestAdminListBeforeTheZeroTime(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) { c.Admin.Token = auditAdminToken })
	router, err := failover.New(cfg, failover.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	pay := listingAdmin{before: make(chan time.Time, 1)}
	s, err := New(Options{Config: cfg, Upstream: router, AdminPayments: pay})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.MountAdminAPI(mux)
	for _, path := range []string{"/admin/api/orders", "/admin/api/approvals", "/admin/api/refunds"} {
		for _, before := range []string{"0001-01-01T00:00:00Z", "0001-01-01T08:00:00%2B08:00", "0001-01-01T00:00:00Z,PG0000000001"} {
			t.Run(path+" "+before, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodGet, path+"?before="+before, nil)
				req.Header.Set("Authorization", "Bearer "+auditAdminToken)
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "before") {
					t.Errorf("%d %s; want a 400 naming before", rec.Code, rec.Body)
				}
				select {
				case got := <-pay.before:
					t.Errorf("listed before %v", got)
				default:
				}
			})
		}
	}
}
