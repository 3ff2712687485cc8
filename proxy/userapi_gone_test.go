package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// waitingOrders is a UserPayments whose order list waits for its caller to
// go away and fails then with the caller's cancellation, as the Redis
// driver passes it on (mapErr).
type waitingOrders struct {
	UserPayments
	started chan struct{}
}

func (w *waitingOrders) UserOrders(ctx context.Context, _, _, _ string, _ int) ([]*store.Order, bool, error) {
	close(w.started)
	<-ctx.Done()
	return nil, false, ctx.Err()
}

// TestUserAPIClientGoneIsNoServerError: a bot that hangs up while its
// GET /v1/paygate/orders is read gets no answer, and the request counts as
// 499, as a chat turn's does (failTurn): it counted as a 500 "the payment
// system failed", on the paygate_requests_total{status=~"5.."} the README
// alerts on, and logged a warning that the payments API failed.
func TestUserAPIClientGoneIsNoServerError(t *testing.T) {
	up := &waitingOrders{started: make(chan struct{})}
	s, logs, _ := hangUpDuring(t, Options{UserPayments: up}, up.started, http.MethodGet, "/v1/paygate/orders", "")
	for status, want := range map[string]float64{"499": 1, "500": 0, "503": 0} {
		if got := testutil.ToFloat64(s.metrics.requests.WithLabelValues("orders", status)); got != want {
			t.Errorf(`paygate_requests_total{route="orders",status=%q} = %v; want %v`, status, got, want)
		}
	}
	if strings.Contains(logs.String(), "user payments API failed") {
		t.Errorf("logged a failure for a bot that hung up:\n%s", logs.String())
	}
}

// waitingConfirm is a UserPayments whose refund confirmation waits for its
// caller's cancellation and fails with it, as waitingOrders' list does.
type waitingConfirm struct {
	UserPayments
	started chan struct{}
}

func (w *waitingConfirm) ConfirmRefund(ctx context.Context, _, _, _ string) (*payments.RefundResult, error) {
	close(w.started)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestUserAPIDrainDeadlineIsNoServerError: a user API request whose store
// call the drain's deadline ends (ErrShuttingDown; the Redis driver passes
// the cancel on as it is) is answered 503 server_shutdown in the OpenAI
// error format, as a chat turn so ended is (failTurn) and as the admin API
// answers (adminDrainEnded): it was a 500 "the payment system failed",
// counted among the server's errors and logged as a failure, and the bot
// was not told it may send it again.
func TestUserAPIDrainDeadlineIsNoServerError(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, route string
		pay                       func(started chan struct{}) UserPayments
	}{
		{"orders", http.MethodGet, "/v1/paygate/orders", "orders",
			func(started chan struct{}) UserPayments { return &waitingOrders{started: started} }},
		{"refund confirm", http.MethodPost, "/v1/paygate/refunds/rf-1/confirm", "refunds",
			func(started chan struct{}) UserPayments { return &waitingConfirm{started: started} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "http://127.0.0.1:1", nil)
			logs := &logtest.Buffer{}
			started := make(chan struct{})
			var cut func()
			s, url := servePaygate(t, cfg, Options{UserPayments: tc.pay(started), Logger: logging.New(logs, slog.LevelDebug, cfg.Secrets())},
				func(h http.Handler) http.Handler {
					h, cut = shutdownCut(h)
					return h
				})
			req, err := http.NewRequest(tc.method, url+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			req.Header.Set("X-WeChat-OpenID", "o-user-1")
			a := <-cutOnceStarted(req, started, cut)
			if a.err != nil {
				t.Fatalf("the request the drain deadline ended: %v", a.err)
			}
			e := gjson.Get(a.body, "error")
			if a.code != http.StatusServiceUnavailable || e.Get("code").Str != "server_shutdown" || e.Get("type").Str != "server_error" ||
				!strings.Contains(e.Get("message").Str, "send it again") || a.retry == "" {
				t.Errorf("answered %d (Retry-After %q) %s; want a 503 server_shutdown saying to send it again, with a Retry-After", a.code, a.retry, a.body)
			}
			for status, want := range map[string]float64{"499": 0, "500": 0, "503": 1} {
				if got := testutil.ToFloat64(s.metrics.requests.WithLabelValues(tc.route, status)); got != want {
					t.Errorf(`paygate_requests_total{route=%q,status=%q} = %v; want %v`, tc.route, status, got, want)
				}
			}
			if strings.Contains(logs.String(), "user payments API failed") {
				t.Errorf("logged a failure for a request nothing failed:\n%s", logs.String())
			}
		})
	}
}
