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
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestPrepayPaidButQueryRefusedStaysOpen: WeChat Pay answers the prepay
// ORDERPAID (the payer paid in between) and refuses the query that was to
// confirm it (403). The order is paid at WeChat Pay: it is not closed as
// refused (the payment would land on a dead order, and the purchase be
// offered again), but kept in creating for the reconciler, which finds it
// paid.
func TestPrepayPaidButQueryRefusedStaysOpen(t *testing.T) {
	paidButQueryRefusedStaysOpen(t, wxsim.FaultOrderPaid, "oUser-paid-refused")
}

// paidButQueryRefusedStaysOpen: WeChat Pay answers the prepay with kind, a
// refusal under which the order may be paid (ORDERPAID, OUT_TRADE_NO_USED
// of a paid order), and refuses the query that was to tell (403). The order
// stays in creating, not closed as refused, and the sweep finds it paid.
func paidButQueryRefusedStaysOpen(t *testing.T, kind wxsim.FaultKind, user string) {
	t.Helper()
	rt := &refusingRT{refuse: func(method, path string, nth int) bool {
		return method == http.MethodGet && strings.HasPrefix(path, "/v3/pay/transactions/out-trade-no/") && nth == 1
	}}
	e := newEnv(t, envOptions{client: func(c *wechatpay.Config) { c.Transport = rt }})
	ctx := context.Background()
	e.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: kind})
	res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
	if errors.Is(err, payments.ErrPrepayRejected) || !errors.Is(err, payments.ErrPaymentUnavailable) || res == nil {
		t.Fatalf("create: %+v, %v; want ErrPaymentUnavailable (WeChat Pay holds the order), not ErrPrepayRejected", res, err)
	}
	no := res.Order.OrderNo
	if got := e.order(no); got.Status != store.StatusCreating {
		t.Fatalf("order %s; want creating, left to the reconciler", got.Status)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.order(no); got.Status != store.StatusPaid {
		t.Errorf("after the sweep: order %s; want paid", got.Status)
	}
}
