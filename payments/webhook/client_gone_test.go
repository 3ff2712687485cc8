package webhook_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// cancelPassing is a store whose reads end with the caller's cancel, as the
// Redis driver passes it on.
type cancelPassing struct{ store.Store }

func (c cancelPassing) OutboxStats(ctx context.Context) (store.OutboxStats, error) {
	<-ctx.Done()
	return store.OutboxStats{}, ctx.Err()
}

func (c cancelPassing) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestAdminClientGoneIsNoFailure: an operator's console tab or script that
// goes away while GET /admin/api/webhooks reads the outbox, or while a
// resend reads the order, is answered 499, as the admin API's other routes
// answer it: both answered 503 "the store did not answer", counted among
// the server's errors on paygate_requests_total, and logged that the
// outbox cannot be read (warn) or that the resend failed (error), for a
// store that was there. A store that fails while the operator waits keeps
// its 503.
func TestAdminClientGoneIsNoFailure(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	logs := &logtest.Buffer{}
	r := newRelay(t, cancelPassing{st}, "http://127.0.0.1:1/hook", time.Now, func(o *webhook.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
		req  *http.Request
	}{
		{"state", r.Handler(), httptest.NewRequest(http.MethodGet, "/admin/api/webhooks", nil)},
		{"resend", r.ResendHandler(), httptest.NewRequest(http.MethodPost, "/admin/api/orders/PGGONE/webhook", nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // the operator has gone
			req := tc.req.WithContext(ctx)
			req.SetPathValue("order_no", "PGGONE")
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			if rec.Code != 499 {
				t.Errorf("answered %d %s; want 499: the client closed the request", rec.Code, rec.Body)
			}
			if got := logs.String(); strings.Contains(got, "not served") || strings.Contains(got, "resend failed") {
				t.Errorf("logged a failure for an operator who went away:\n%s", got)
			}
		})
	}
}
