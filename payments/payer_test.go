package payments_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestJSAPIPaymentByAnotherPayerNeedsReview: a JSAPI order is prepaid for
// one payer (payer.openid, the order's user) and WeChat Pay lets no one else
// pay it, so WeChat's word that someone else paid it contradicts the record
// as an amount would: the order goes to needs_review (payer_mismatch), and
// no "payment confirmed" reaches the user, who did not pay. The same payer,
// and a native order (paid by whoever scans its code), are paid. Both the
// notification path and the query path.
func TestJSAPIPaymentByAnotherPayerNeedsReview(t *testing.T) {
	tests := []struct {
		name       string
		payer      string // "" keeps the order's user
		want       store.OrderStatus
		wantReason string
	}{
		{name: "same payer", want: store.StatusPaid},
		{name: "another payer", payer: "oSomeoneElse-1234", want: store.StatusNeedsReview, wantReason: "payer_mismatch"},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, tt := range tests {
				check := func(t *testing.T, e *env, o *store.Order) {
					t.Helper()
					got := e.order(o.OrderNo)
					if got.Status != tt.want || !strings.HasPrefix(got.ReviewReason, tt.wantReason) {
						t.Errorf("got %s %q; want %s %q", got.Status, got.ReviewReason, tt.want, tt.wantReason)
					}
					if tt.wantReason != "" && !strings.Contains(e.logs.String(), "ALERT: wechat pay disagrees with the order record") {
						t.Errorf("no alert logged")
					}
				}
				t.Run(tt.name+"/notification", func(t *testing.T) {
					e := newEnv(t, envOptions{driver: driver})
					o := e.create("oUser-payer", 1)
					tx := e.paidTx(o)
					if tt.payer != "" {
						tx.Payer.OpenID = tt.payer
					}
					n := e.buildPayment(tx, nil)
					if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
						t.Fatalf("notification: got %d %q; want 204", status, body)
					}
					check(t, e, o)
				})
				t.Run(tt.name+"/query", func(t *testing.T) {
					e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", service: func(opts *payments.Options) {
						opts.Backend = rewriteQuery{Client: opts.Backend.(*wechatpay.Client), edit: func(tx *wechatpay.Transaction) {
							if tt.payer != "" {
								tx.PayerOpenID = tt.payer
							}
						}}
					}})
					o := e.create("oUser-payer", 1)
					if _, err := e.sim.Pay(context.Background(), o.OrderNo); err != nil {
						t.Fatal(err)
					}
					e.clock.Advance(time.Minute) // past ActiveQueryAfter
					if st, err := e.svc.Sweep(context.Background()); err != nil || st.Errors != 0 {
						t.Fatalf("sweep: %+v %v", st, err)
					}
					check(t, e, o)
				})
			}
			t.Run("native order paid by its scanner", func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver})
				res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: "oUser-native", SKU: "premium-monthly", Quantity: 1, PayMethod: "native"})
				if err != nil || res.Order.Status != store.StatusAwaitingPayment {
					t.Fatalf("create native order: %v %+v", err, res)
				}
				tx := e.paidTx(res.Order)
				tx.TradeType, tx.Payer.OpenID = "NATIVE", "oScanner-5678"
				n := e.buildPayment(tx, nil)
				if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
					t.Fatalf("notification: got %d %q; want 204", status, body)
				}
				if got := e.order(res.Order.OrderNo); got.Status != store.StatusPaid {
					t.Errorf("got %s %q; want paid", got.Status, got.ReviewReason)
				}
			})
		})
	}
}
