package payments_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// heldPrepay passes requests to WeChat Pay and, for a prepay, holds its
// answer until released, telling reached once WeChat Pay has opened the
// order; a request whose context ended meanwhile then fails, as an HTTP
// client's would.
type heldPrepay struct {
	reached chan struct{}
	release chan struct{}
}

func (h heldPrepay) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/pay/transactions/") || strings.HasSuffix(r.URL.Path, "/close") {
		return resp, err
	}
	h.reached <- struct{}{}
	<-h.release
	if err := r.Context().Err(); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// TestPrepayOutlivesItsCaller: a bot whose HTTP client gives up while
// create_order's prepay is in flight does not leave the order half made:
// the prepay WeChat Pay already answered is recorded, and the bot's retry
// gets the payable order at once.
func TestPrepayOutlivesItsCaller(t *testing.T) {
	h := heldPrepay{reached: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEnv(t, envOptions{client: func(c *wechatpay.Config) { c.Transport = h }})
	req := payments.CreateRequest{Client: "shop-bot", User: "oUser-bot-retry", SKU: "premium-monthly"}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan *payments.CreateResult, 1)
	go func() {
		res, _ := e.svc.CreateOrder(ctx, req)
		first <- res
	}()
	<-h.reached // WeChat Pay opened the order
	cancel()    // the bot's HTTP client gave up
	close(h.release)
	res := <-first
	if res == nil || res.Order == nil {
		t.Fatalf("the cancelled call returned no order")
	}
	if got, err := e.st.GetOrder(context.Background(), res.Order.OrderNo); err != nil || got.Status != store.StatusAwaitingPayment {
		t.Fatalf("after the caller left: %v, %v; want the order awaiting payment", got, err)
	}
	again, err := e.svc.CreateOrder(context.Background(), req) // the bot's retry
	if err != nil || again.Order.OrderNo != res.Order.OrderNo || again.Payment == nil {
		t.Fatalf("the retry: %+v, %v; want the same order with payment parameters", again, err)
	}
}
