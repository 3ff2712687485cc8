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

func (c cancelPassing) OutboxStatsApart(ctx context.Context, _ ...string) (store.OutboxStats, int, error) {
	<-ctx.Done()
	return store.OutboxStats{}, 0, ctx.Err()
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
// store that was there. A read the server's shutdown ends is still told
// to try again, and logged.
func TestAdminClientGoneIsNoFailure(t *testing.T) {
	for _, route := range []struct {
		name   string
		h      func(*webhook.Relay) http.Handler
		req    func() *http.Request
		logged string
	}{
		{"state", (*webhook.Relay).Handler, func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/admin/api/webhooks", nil)
		}, "cannot be read"},
		{"resend", (*webhook.Relay).ResendHandler, func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/admin/api/orders/PGGONE/webhook", nil)
		}, "resend failed"},
	} {
		for _, tc := range []struct {
			name   string
			cause  error
			status int
		}{
			{"the client left", nil, 499},
			{"shutting down", errShutdown, http.StatusServiceUnavailable},
		} {
			t.Run(route.name+"/"+tc.name, func(t *testing.T) {
				st := testdrivers.Open(t, "embedded", nil)
				logs := &logtest.Buffer{}
				r := newRelay(t, cancelPassing{st}, "http://127.0.0.1:1/hook", time.Now, func(o *webhook.Options) {
					o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
				})
				ctx, cancel := context.WithCancelCause(t.Context())
				cancel(tc.cause)
				req := route.req().WithContext(ctx)
				req.SetPathValue("order_no", "PGGONE")
				rec := httptest.NewRecorder()
				route.h(r).ServeHTTP(rec, req)
				if rec.Code != tc.status {
					t.Errorf("answered %d %s; want %d", rec.Code, rec.Body, tc.status)
				}
				if logged := strings.Contains(logs.String(), route.logged); logged != (tc.status != 499) {
					t.Errorf("logged %q: %v; want %v:\n%s", route.logged, logged, tc.status != 499, logs.String())
				}
			})
		}
	}
}

var errShutdown = shutdownError{}

type shutdownError struct{}

func (shutdownError) Error() string { return "paygate is shutting down" }
