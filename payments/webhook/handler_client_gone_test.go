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

// canceledStats is a store whose outbox stats end with the caller's
// cancellation, as the Redis driver passes it on.
type canceledStats struct{ store.Store }

func (canceledStats) OutboxStats(ctx context.Context) (store.OutboxStats, error) {
	<-ctx.Done()
	return store.OutboxStats{}, ctx.Err()
}

// TestHandlerClientGoneIsNoStoreFailure: an operator's console or script
// that goes away while GET /admin/api/webhooks reads the outbox ends the
// read, and the store, only asked, did not fail: the answer counted as a
// 503 among the server's errors on paygate_requests_total (route
// admin_webhooks) and logged that the outbox cannot be read, as the other
// admin reads no longer do. It is a 499, logged as nothing; a read the
// server's shutdown ends is still told to try again.
func TestHandlerClientGoneIsNoStoreFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cause  error
		status int
	}{
		{"the client left", nil, 499},
		{"shutting down", errShutdown, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := testdrivers.Open(t, "embedded", nil)
			logs := &logtest.Buffer{}
			r := newRelay(t, canceledStats{st}, "http://127.0.0.1:1/hook", time.Now, func(o *webhook.Options) {
				o.Logger = slog.New(slog.NewTextHandler(logs, nil))
			})
			ctx, cancel := context.WithCancelCause(t.Context())
			cancel(tc.cause)
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/api/webhooks", nil).WithContext(ctx))
			if rec.Code != tc.status {
				t.Errorf("status %d (%s); want %d", rec.Code, rec.Body, tc.status)
			}
			if logged := strings.Contains(logs.String(), "cannot be read"); logged != (tc.status != 499) {
				t.Errorf("logged the outbox unreadable: %v; want %v:\n%s", logged, tc.status != 499, logs.String())
			}
		})
	}
}

var errShutdown = shutdownError{}

type shutdownError struct{}

func (shutdownError) Error() string { return "paygate is shutting down" }
