package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestSweepMapsEveryTradeState: what an awaiting_payment order becomes when
// WeChat Pay's query answers each trade state, before and after its payment
// deadline. Unpaid states (NOTPAY, PAYERROR) leave it waiting until the
// deadline, then close it at WeChat Pay and expire it; CLOSED and REVOKED end
// it; USERPAYING never closes under the payer, even past the deadline;
// REFUND (paid, then refunded by no one paygate knows) is money to review.
func TestSweepMapsEveryTradeState(t *testing.T) {
	tests := []struct {
		state        string
		pastDeadline bool
		want         store.OrderStatus
		wantAtSim    string // the simulator's state after, "" unchecked
	}{
		{state: wechatpay.TradeNotPay, want: store.StatusAwaitingPayment, wantAtSim: "NOTPAY"},
		{state: wechatpay.TradeNotPay, pastDeadline: true, want: store.StatusExpired, wantAtSim: "CLOSED"},
		{state: wechatpay.TradePayError, want: store.StatusAwaitingPayment, wantAtSim: "NOTPAY"},
		{state: wechatpay.TradePayError, pastDeadline: true, want: store.StatusExpired, wantAtSim: "CLOSED"},
		{state: wechatpay.TradeClosed, want: store.StatusClosed},
		{state: wechatpay.TradeClosed, pastDeadline: true, want: store.StatusExpired},
		{state: wechatpay.TradeRevoked, want: store.StatusClosed},
		{state: wechatpay.TradeUserPaying, want: store.StatusAwaitingPayment, wantAtSim: "NOTPAY"},
		{state: wechatpay.TradeUserPaying, pastDeadline: true, want: store.StatusAwaitingPayment, wantAtSim: "NOTPAY"},
		{state: wechatpay.TradeRefund, want: store.StatusNeedsReview},
	}
	for _, tt := range tests {
		name := tt.state
		if tt.pastDeadline {
			name += "/past deadline"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{notifyTo: "sink", service: func(opts *payments.Options) {
				opts.Backend = rewriteQuery{Client: opts.Backend.(*wechatpay.Client), edit: func(tx *wechatpay.Transaction) {
					if tx.TradeState != wechatpay.TradeNotPay {
						return // the simulator's own word once it moved (closed by the sweep)
					}
					tx.TradeState = tt.state
					if tt.state == wechatpay.TradeRefund {
						tx.TransactionID, tx.SuccessTime = "4200001234"+"555555555555555555", time.Now()
						tx.Currency = "CNY"
					}
				}}
			}})
			o := e.create("oUser-trade-state", 1)
			if tt.pastDeadline {
				e.clock.Advance(payments.DefaultOrderTTL + time.Minute)
			} else {
				e.clock.Advance(payments.DefaultActiveQueryAfter)
			}
			if _, err := e.svc.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := e.order(o.OrderNo); got.Status != tt.want {
				t.Errorf("got %s %q; want %s", got.Status, got.ReviewReason, tt.want)
			}
			if tt.wantAtSim != "" {
				if tx, _ := e.sim.Order(o.OrderNo); tx.TradeState != tt.wantAtSim {
					t.Errorf("at the simulator: got %s; want %s", tx.TradeState, tt.wantAtSim)
				}
			}
		})
	}
}
