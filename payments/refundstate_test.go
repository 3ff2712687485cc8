package payments_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestQueryFindingRefundNotRequestedNeedsReview: the notifications were lost,
// the user paid and the merchant refunded on the merchant platform. Every
// path that learns it by querying (the sweep of an awaiting_payment order, of
// one left in creating, a close answered ORDERPAID) sees trade_state REFUND
// for a refund paygate never made. It ends where the refund's notification
// would have put it: needs_review (refund_not_requested) with the
// transaction kept and the same alert, never a plain paid order with
// refunded_fen 0 (an order.paid to the merchant for money that went back).
func TestQueryFindingRefundNotRequestedNeedsReview(t *testing.T) {
	ctx := context.Background()
	payAndRefund := func(e *env, no string) {
		e.t.Helper()
		if _, err := e.sim.Pay(ctx, no); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: no, OutRefundNo: "RFplatform" + no[len(no)-8:], Refund: 4999, Total: 4999}); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.sim.CompleteRefund(ctx, "RFplatform"+no[len(no)-8:]); err != nil {
			e.t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// run makes an order, has WeChat Pay pay and refund it, and lets
		// paygate find out by a query; it returns the order's number.
		run func(t *testing.T, e *env) string
	}{
		{name: "sweep of awaiting_payment", run: func(t *testing.T, e *env) string {
			o := e.create("oUser-refund-state", 1)
			payAndRefund(e, o.OrderNo)
			e.clock.Advance(time.Minute)
			if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
				t.Fatalf("sweep: %+v %v", st, err)
			}
			return o.OrderNo
		}},
		{name: "sweep of creating", run: func(t *testing.T, e *env) string {
			o := e.creatingOrder(payments.NewOrderNo(time.Now()), "oUser-refund-state", time.Minute)
			e.prepayAtWeChat(o)
			payAndRefund(e, o.OrderNo)
			if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
				t.Fatalf("sweep: %+v %v", st, err)
			}
			return o.OrderNo
		}},
		{name: "close answered ORDERPAID", run: func(t *testing.T, e *env) string {
			o := e.create("oUser-refund-state", 1)
			payAndRefund(e, o.OrderNo)
			if _, err := e.svc.CloseOrder(ctx, o.OrderNo); err != nil {
				t.Fatalf("close: %v", err)
			}
			return o.OrderNo
		}},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					e := newEnv(t, envOptions{driver: driver, notifyTo: "sink"})
					no := tt.run(t, e)
					tx, _ := e.sim.Order(no)
					if tx.TradeState != wechatpay.TradeRefund {
						t.Fatalf("at the simulator: %s; want REFUND", tx.TradeState)
					}
					got := e.order(no)
					if got.Status != store.StatusNeedsReview || !strings.HasPrefix(got.ReviewReason, "refund_not_requested") {
						t.Errorf("got %s %q (refunded_fen %d); want needs_review refund_not_requested", got.Status, got.ReviewReason, got.RefundedFen)
					}
					if got.TransactionID != tx.TransactionID {
						t.Errorf("transaction_id: got %q; want %q", got.TransactionID, tx.TransactionID)
					}
					for len(e.trans) > 0 {
						if tr := <-e.trans; tr.After.Status == store.StatusPaid {
							t.Errorf("went through paid (%s -> paid, %s): the merchant hears order.paid", tr.Before.Status, tr.Cause)
						}
					}
					if !strings.Contains(e.logs.String(), "ALERT: wechat pay's refund disagrees with the order record") {
						t.Errorf("no refund alert logged")
					}
				})
			}
		})
	}
}
