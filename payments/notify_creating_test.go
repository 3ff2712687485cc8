package payments_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// paidBeforeAnswer is a backend whose prepay answer reaches paygate only
// after WeChat Pay's payment notification for the order did (pay): the
// payer was fast, or the answer slow.
type paidBeforeAnswer struct {
	payments.Backend
	pay func(no string)
}

func (b *paidBeforeAnswer) Prepay(ctx context.Context, req wechatpay.PrepayRequest) (*wechatpay.PrepayResult, error) {
	res, err := b.Backend.Prepay(ctx, req)
	if err == nil {
		b.pay(req.OutTradeNo)
	}
	return res, err
}

// TestNotifyBeforePrepayAnswer: WeChat Pay's notification of a payment
// arrives while the order is still creating (its prepay's answer not yet
// recorded). It is applied at once (204, one transition to paid, with its
// audit and event), and the prepay's answer, recorded after, neither moves
// the paid order back to awaiting_payment nor hands payment parameters for
// it; a copy of the notification changes nothing.
func TestNotifyBeforePrepayAnswer(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var e *env
			type answer struct {
				status int
				body   string
				before store.OrderStatus
			}
			answers := make(chan answer, 1)
			e = newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Backend = &paidBeforeAnswer{Backend: o.Backend, pay: func(no string) {
					o := e.order(no)
					n := e.buildPayment(e.paidTx(o), nil)
					status, body := e.post(n.Header, n.Body)
					answers <- answer{status, body, o.Status}
				}}
			}})
			res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: "oUser-fast-payer", SKU: "premium-monthly", Quantity: 1})
			if err != nil {
				t.Fatalf("create order: %v", err)
			}
			a := <-answers
			if a.before != store.StatusCreating {
				t.Fatalf("the notification found the order %s; want creating", a.before)
			}
			if a.status != http.StatusNoContent || a.body != "" {
				t.Errorf("notification: got %d %q; want 204 empty", a.status, a.body)
			}
			if res.Order.Status != store.StatusPaid || res.Payment != nil || res.CodeURL != "" {
				t.Errorf("create result: %s, payment %v, code_url %q; want paid, no payment parameters", res.Order.Status, res.Payment, res.CodeURL)
			}
			got := e.order(res.Order.OrderNo)
			if got.Status != store.StatusPaid || got.TransactionID == "" || got.PaidAt.IsZero() {
				t.Errorf("order: %s txid=%q paid_at=%v; want paid with the transaction", got.Status, got.TransactionID, got.PaidAt)
			}
			if n := e.counter("paygate_order_transitions_total", map[string]string{"from": "creating", "to": "paid"}); n != 1 {
				t.Errorf("creating → paid transitions: %v; want 1", n)
			}
			if n := e.counter("paygate_order_transitions_total", map[string]string{"to": "awaiting_payment"}); n != 0 {
				t.Errorf("transitions to awaiting_payment: %v; want none", n)
			}
			n := e.buildPayment(e.paidTx(got), nil)
			if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent || body != "" {
				t.Errorf("copy: got %d %q; want 204 empty", status, body)
			}
			if again := e.order(got.OrderNo); again.Version != got.Version {
				t.Errorf("copy changed the order: version %d -> %d", got.Version, again.Version)
			}
		})
	}
}
