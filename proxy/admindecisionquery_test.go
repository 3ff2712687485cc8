package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// Resolve takes the resolution as decidingAdmin takes its decisions.
func (a decidingAdmin) Resolve(ctx context.Context, no string, to store.OrderStatus) (*store.Order, error) {
	a.actors <- payments.ActorFrom(ctx)
	return &store.Order{OrderNo: no, Status: to}, nil
}

// TestAdminDecisionRefusesAQuery: a manager's approve, reject or resolve
// takes who decided and why from its JSON body only, and the audit chain
// keeps them for good. Given in the query string instead (curl -X POST
// '…/reject?operator=alice&reason=fraud'), they were ignored: the order
// was decided for good and audited with no operator and no reason, where a
// misspelt member of the body is a 400 that decides nothing (and a
// ?dry_run=1 decided for real). A query parameter is that 400 too; the
// same request without it decides, with the body's operator and reason.
func TestAdminDecisionRefusesAQuery(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) { c.Admin.Token = auditAdminToken })
	log := slog.New(slog.DiscardHandler)
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	pay := decidingAdmin{actors: make(chan *payments.Actor, 1)}
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, AdminPayments: pay})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.MountAdminAPI(mux)
	for _, tc := range []struct{ path, body string }{
		{"/admin/api/approvals/PG1/approve", `{"operator": "alice", "reason": "known buyer"}`},
		{"/admin/api/approvals/PG1/reject", `{"operator": "alice", "reason": "known buyer"}`},
		{"/admin/api/orders/PG1/resolve", `{"status": "closed", "operator": "alice", "reason": "known buyer"}`},
	} {
		post := func(query string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, tc.path+query, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+auditAdminToken)
			req.Header.Set("X-Paygate-CSRF", "1")
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			return rec
		}
		t.Run(tc.path, func(t *testing.T) {
			for _, query := range []string{"?operator=bob", "?reason=fraud", "?dry_run=1"} {
				rec := post(query)
				if rec.Code != http.StatusBadRequest || gjson.Get(rec.Body.String(), "error").String() == "" {
					t.Errorf("%s: %d %s; want a 400 with an error", query, rec.Code, rec.Body)
				}
				select {
				case a := <-pay.actors:
					t.Errorf("%s: decided, audited with operator %q and reason %q", query, a.Operator, a.Reason)
				default:
				}
			}
			if rec := post(""); rec.Code != http.StatusOK {
				t.Fatalf("without a query: %d %s; want 200", rec.Code, rec.Body)
			}
			if a := <-pay.actors; a.Operator != "alice" || a.Reason != "known buyer" {
				t.Errorf("decided with operator %q, reason %q; want the body's", a.Operator, a.Reason)
			}
		})
	}
}

// TestAdminDecisionRefusesAnAmbiguousBody: a decision's body names each
// member once and exactly. encoding/json took the last of a member named
// twice and matched a name in any case (and "ſ" for "s"), so
// {"reason": "fraud", "reason": "known buyer"} was audited, for good,
// with the reason another reader of the same request (a proxy's log, a
// script's own record, JSON.parse's first-wins tools) does not see, and
// {"status": "closed", "Status": "paid"} resolved an order in review as
// paid. Each is a 400 that decides nothing, as a member of another name
// is; the same body with each member once, exactly named, decides.
func TestAdminDecisionRefusesAnAmbiguousBody(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) { c.Admin.Token = auditAdminToken })
	log := slog.New(slog.DiscardHandler)
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	pay := decidingAdmin{actors: make(chan *payments.Actor, 1)}
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, AdminPayments: pay})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.MountAdminAPI(mux)
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+auditAdminToken)
		req.Header.Set("X-Paygate-CSRF", "1")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	for _, tc := range []struct{ path, ambiguous, plain string }{
		{"/admin/api/approvals/PG1/reject", `{"reason": "fraud", "reason": "known buyer"}`, `{"reason": "known buyer"}`},
		{"/admin/api/approvals/PG1/reject", `{"operator": "alice", "Reason": "known buyer"}`, `{"operator": "alice", "reason": "known buyer"}`},
		{"/admin/api/approvals/PG1/approve", `{"OPERATOR": "alice"}`, `{"operator": "alice"}`},
		{"/admin/api/approvals/PG1/approve", `{"rea\u017fon": "known buyer"}`, `{"reason": "known buyer"}`},
		{"/admin/api/approvals/PG1/approve", `{"operator": "bob", "operat\u006fr": "alice"}`, `{"operator": "alice"}`},
		{"/admin/api/orders/PG1/resolve", `{"status": "closed", "Status": "paid", "reason": "known buyer"}`, `{"status": "paid", "reason": "known buyer"}`},
		{"/admin/api/orders/PG1/resolve", `{"status": "paid", "reason": "", "reason": "known buyer"}`, `{"status": "paid", "reason": "known buyer"}`},
	} {
		t.Run(tc.ambiguous, func(t *testing.T) {
			rec := post(tc.path, tc.ambiguous)
			if rec.Code != http.StatusBadRequest || gjson.Get(rec.Body.String(), "error").String() == "" {
				t.Errorf("%d %s; want a 400 with an error", rec.Code, rec.Body)
			}
			select {
			case a := <-pay.actors:
				t.Errorf("decided, audited with operator %q and reason %q", a.Operator, a.Reason)
			default:
			}
			if rec := post(tc.path, tc.plain); rec.Code != http.StatusOK {
				t.Fatalf("%s: %d %s; want 200", tc.plain, rec.Code, rec.Body)
			}
			<-pay.actors
		})
	}
}
