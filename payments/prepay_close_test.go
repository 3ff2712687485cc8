package payments_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// hangingPrepay holds every prepay until its context ends, and reports when
// the first one reached it and why it ended.
type hangingPrepay struct {
	reached chan struct{}
	ended   chan error
}

func (h hangingPrepay) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/pay/transactions/") && !strings.HasSuffix(r.URL.Path, "/close") {
		select { // the first attempt only: the client may retry
		case h.reached <- struct{}{}:
		default:
		}
		<-r.Context().Done()
		select {
		case h.ended <- r.Context().Err():
		default:
		}
		return nil, r.Context().Err()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestCloseStopsABackgroundPrepay: a prepay the service starts on its own
// (reconciling an order left creating, as a user's read of the order does
// in the background) is stopped by Close, not waited out for PrepayTimeout;
// only prepays a caller asked for outlive their caller
// (TestPrepayOutlivesItsCaller).
func TestCloseStopsABackgroundPrepay(t *testing.T) {
	h := hangingPrepay{reached: make(chan struct{}, 1), ended: make(chan error, 1)}
	e := newEnv(t, envOptions{
		client:  func(c *wechatpay.Config) { c.Transport = h },
		service: func(o *payments.Options) { o.PrepayTimeout = 5 * time.Second; o.BackgroundQueryTimeout = time.Hour },
	})
	ctx := context.Background()
	now := time.Now()
	o := &store.Order{
		OrderNo: "PGCLOSEBGPREPAY1", Client: "shop-bot", AppID: e.sim.AppID(), User: "oUser-close", SKU: "premium-monthly",
		Description: "Premium tier, 1 month", Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi",
		Status: store.StatusCreating, CreatedAt: now.Add(-time.Minute), UpdatedAt: now.Add(-time.Minute),
		ExpiresAt: now.Add(29 * time.Minute).Truncate(time.Second),
	}
	if err := e.st.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Order(ctx, o.Client, o.User, o.OrderNo); err != nil {
		t.Fatal(err)
	}
	<-h.reached // the background reconciliation is prepaying
	e.svc.Close()
	if err := <-h.ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the background prepay ended with %v; want it cancelled by Close", err)
	}
}
