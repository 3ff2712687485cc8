package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestExpiryCloseAnswerUnverified: the sweep closes an order past its
// deadline, and WeChat Pay's answer to the close (it closed the order)
// fails signature verification. The answer is not trusted: the order stays
// awaiting payment here, an ALERT counts bad_signature, and the next sweep's
// query, which verifies, finds the order closed and expires it. Never a
// close recorded on an answer paygate cannot trust.
func TestExpiryCloseAnswerUnverified(t *testing.T) {
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	var ahead atomic.Int64
	url, a := paymentApp(t, up.URL, "", withPaymentsClock(func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }))
	ctx := context.Background()

	ans := chatAs(t, url, "oUser-close-unverified", "premium please")
	no := ans.Get("paygate.actions.0.order.order_no").Str
	if no == "" {
		t.Fatalf("no order: %s", ans.Raw)
	}
	a.sim.InjectFault(wxsim.Fault{Op: "close", Kind: wxsim.FaultBadResponseSignature})
	ahead.Store(int64(3 * time.Hour)) // past the 2 h order TTL
	if _, err := a.payments.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if o, _ := a.store.GetOrder(ctx, no); o == nil || o.Status != store.StatusAwaitingPayment {
		t.Fatalf("order after a close whose answer did not verify: %+v; want awaiting_payment", o)
	}
	if tx, ok := a.sim.Order(no); !ok || tx.TradeState != "CLOSED" {
		t.Fatalf("the simulator's order %+v; want it closed (the close was carried out)", tx)
	}
	m := scrape(t, url)
	if n := metricSum(t, m, "paygate_wechatpay_merchant_errors_total", map[string]string{"code": "bad_signature"}); n != 1 {
		t.Errorf("merchant errors bad_signature %v; want 1", n)
	}
	if n := metricSum(t, m, "paygate_wechatpay_requests_total", map[string]string{"op": "close", "outcome": "unverified"}); n != 1 {
		t.Errorf("close calls unverified %v; want 1", n)
	}
	if _, err := a.payments.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if o, _ := a.store.GetOrder(ctx, no); o == nil || o.Status != store.StatusExpired {
		t.Errorf("order after the next sweep: %+v; want expired", o)
	}
}
