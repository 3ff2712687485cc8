package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

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
