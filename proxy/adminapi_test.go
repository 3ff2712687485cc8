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
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// decidingAdmin is an AdminPayments that takes every decision and keeps
// the actor each was made under; nothing else is called.
type decidingAdmin struct {
	AdminPayments
	actors chan *payments.Actor
}

func (a decidingAdmin) Approve(ctx context.Context, no string) (*payments.CreateResult, error) {
	a.actors <- payments.ActorFrom(ctx)
	return &payments.CreateResult{Order: &store.Order{OrderNo: no, Status: store.StatusAwaitingPayment}}, nil
}

func (a decidingAdmin) Reject(ctx context.Context, no string) (*store.Order, error) {
	a.actors <- payments.ActorFrom(ctx)
	return &store.Order{OrderNo: no, Status: store.StatusRejected}, nil
}

// TestAdminDecisionNamesWhoAndWhy: an approval or rejection is made under
// the actor the audit records (kind admin, the request's id and remote
// address, the operator and reason of the optional body) and its log line
// says the same; a configured secret an operator pastes into the reason is
// masked in both, since the chain keeps the reason for good.
func TestAdminDecisionNamesWhoAndWhy(t *testing.T) {
	const apiv3 = "apiv3-key-0123456789abcdef012345"
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) {
		c.Admin.Token = auditAdminToken
		c.Payments.WeChatPay.APIv3Key = apiv3
	})
	logs := &logtest.Buffer{}
	log := logging.New(logs, slog.LevelInfo, cfg.Secrets())
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
	for _, tc := range []struct {
		name, verb, body string
		operator, reason string
	}{
		{name: "reject with who and why", verb: "reject", body: `{"operator":"alice","reason":"suspected fraud"}`, operator: "alice", reason: "suspected fraud"},
		{name: "approve with a secret in the reason", verb: "approve", body: `{"reason":"the key ` + apiv3 + ` is not a reason"}`, reason: "the key " + logging.Mask + " is not a reason"},
		{name: "approve without a body", verb: "approve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := len(logs.String())
			req := httptest.NewRequest(http.MethodPost, "/admin/api/approvals/PG1/"+tc.verb, strings.NewReader(tc.body))
			req.RemoteAddr = "192.0.2.10:40000"
			req.Header.Set("Authorization", "Bearer "+auditAdminToken)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.verb, rec.Code, rec.Body)
			}
			id := rec.Header().Get("X-Request-Id")
			want := payments.Actor{Kind: payments.ActorAdmin, RequestID: id, RemoteAddr: "192.0.2.10:40000", Operator: tc.operator, Reason: tc.reason}
			if got := <-pay.actors; got == nil || *got != want || id == "" {
				t.Errorf("decided as %+v; want %+v", got, want)
			}
			var line gjson.Result
			for l := range strings.Lines(logs.String()[start:]) {
				if gjson.Get(l, "msg").Str == "admin decision" {
					line = gjson.Parse(l)
				}
			}
			if line.Get("request_id").Str != id || line.Get("remote_addr").Str != want.RemoteAddr ||
				line.Get("operator").Str != tc.operator || line.Get("reason").Str != tc.reason || line.Get("approve").Bool() != (tc.verb == "approve") {
				t.Errorf("log line %s; want request %s from %s, operator %q, reason %q", line.Raw, id, want.RemoteAddr, tc.operator, tc.reason)
			}
			if strings.Contains(logs.String(), apiv3) {
				t.Errorf("the log carries the APIv3 key")
			}
		})
	}
}
