package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/payments"
)

// TestAdminActorMasksShortSecrets: the operator and reason an admin
// request gives are kept in the audit chain for good, masked of the
// configured secrets as the log line of the same request is. They were
// masked as text for a bot is, only of secrets of logging.ClientMinSecret
// bytes or more: a Redis password of 8 bytes pasted into a rejection's
// reason (or a resend's, or an erasure's) was masked in the log and kept
// whole in the chain.
func TestAdminActorMasksShortSecrets(t *testing.T) {
	const pw = "hunter2x" // 8 bytes: under ClientMinSecret, a secret to the log
	if len(pw) >= logging.ClientMinSecret {
		t.Fatalf("the password must be shorter than ClientMinSecret (%d)", logging.ClientMinSecret)
	}
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) {
		c.Admin.Token = auditAdminToken
		c.Store.Redis.Password = pw
	})
	log := logging.New(io.Discard, slog.LevelInfo, cfg.Secrets())
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
	resent := make(chan *payments.Actor, 1)
	mux.Handle("POST /admin/api/orders/{order_no}/webhook", s.AdminRoute("admin_webhook_resend",
		s.AdminActor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { resent <- payments.ActorFrom(r.Context()) }))))
	body := `{"operator":"ops ` + pw + `","reason":"the password ` + pw + ` leaked"}`
	for _, tc := range []struct {
		name, path string
		actors     chan *payments.Actor
	}{
		{"reject", "/admin/api/approvals/PG1/reject", pay.actors},
		{"resend", "/admin/api/orders/PG1/webhook", resent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+auditAdminToken)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.path, rec.Code, rec.Body)
			}
			got := <-tc.actors
			if got == nil || got.Operator != "ops "+logging.Mask || got.Reason != "the password "+logging.Mask+" leaked" {
				t.Errorf("recorded actor %+v; want the password masked in the operator and the reason", got)
			}
		})
	}
}
