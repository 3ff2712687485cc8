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

// rewriteQuery is the official client with WeChat Pay's query answers edited:
// the simulator refuses to open an order in anything but CNY, so a payment in
// another currency can only reach the query path this way.
type rewriteQuery struct {
	*wechatpay.Client
	edit func(*wechatpay.Transaction)
}

func (b rewriteQuery) QueryOrder(ctx context.Context, no string) (*wechatpay.Transaction, error) {
	tx, err := b.Client.QueryOrder(ctx, no)
	if err == nil && b.edit != nil {
		b.edit(tx)
	}
	return tx, err
}

// TestPaymentInAnotherCurrencyNeedsReview: WeChat Pay's word that an order was
// paid counts only in the order's currency. The same integer total in another
// currency is not the money asked for, on the notification path and the query
// path alike: the order goes to needs_review (currency_mismatch) with the
// transaction kept, never to paid. What the payer paid (payer_total) is not
// compared: a coupon makes it differ from the total.
func TestPaymentInAnotherCurrencyNeedsReview(t *testing.T) {
	tests := []struct {
		name                    string
		currency, payerCurrency string
		payerTotalOff           int64
		want                    store.OrderStatus
		wantReason              string
	}{
		{name: "CNY", currency: "CNY", payerCurrency: "CNY", want: store.StatusPaid},
		{name: "CNY with a coupon", currency: "CNY", payerCurrency: "CNY", payerTotalOff: 500, want: store.StatusPaid},
		{name: "USD", currency: "USD", payerCurrency: "USD", want: store.StatusNeedsReview, wantReason: "currency_mismatch"},
		{name: "no currency", currency: "", payerCurrency: "", want: store.StatusNeedsReview, wantReason: "currency_mismatch"},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, tt := range tests {
				check := func(t *testing.T, e *env, o *store.Order, txid string) {
					t.Helper()
					got := e.order(o.OrderNo)
					if got.Status != tt.want || !strings.HasPrefix(got.ReviewReason, tt.wantReason) {
						t.Errorf("got %s %q; want %s %q", got.Status, got.ReviewReason, tt.want, tt.wantReason)
					}
					if got.TransactionID != txid {
						t.Errorf("transaction_id: got %q; want %q", got.TransactionID, txid)
					}
					if tt.wantReason != "" && !strings.Contains(e.logs.String(), "ALERT: wechat pay disagrees with the order record") {
						t.Errorf("no alert logged")
					}
				}
				t.Run(tt.name+"/notification", func(t *testing.T) {
					e := newEnv(t, envOptions{driver: driver})
					o := e.create("oUser-currency", 1)
					tx := e.paidTx(o)
					tx.Amount.Currency, tx.Amount.PayerCurrency = tt.currency, tt.payerCurrency
					tx.Amount.PayerTotal -= tt.payerTotalOff
					n := e.buildPayment(tx, nil)
					if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
						t.Fatalf("notification: got %d %q; want 204 (WeChat's word is acknowledged)", status, body)
					}
					check(t, e, o, tx.TransactionID)
				})
				t.Run(tt.name+"/query", func(t *testing.T) {
					e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", service: func(opts *payments.Options) {
						opts.Backend = rewriteQuery{Client: opts.Backend.(*wechatpay.Client), edit: func(tx *wechatpay.Transaction) {
							tx.Currency = tt.currency
							tx.PayerTotal -= tt.payerTotalOff
						}}
					}})
					o := e.create("oUser-currency", 1)
					if _, err := e.sim.Pay(context.Background(), o.OrderNo); err != nil {
						t.Fatal(err)
					}
					e.clock.Advance(time.Minute) // past ActiveQueryAfter
					if st, err := e.svc.Sweep(context.Background()); err != nil || st.Errors != 0 {
						t.Fatalf("sweep: %+v %v", st, err)
					}
					tx, _ := e.sim.Order(o.OrderNo)
					check(t, e, o, tx.TransactionID)
				})
			}
		})
	}
}
