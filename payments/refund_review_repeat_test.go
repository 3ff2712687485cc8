package payments_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestRepeatedConfirmOfARefundInReview: the user's confirmed refund is with
// WeChat Pay when its order goes to needs_review: WeChat Pay reports the
// refund ABNORMAL (the user's card was cancelled), or reports money going
// back that paygate never asked for while its own refund is processing. A
// confirm sent again (a bot's retry after a timeout, a second tap) sends
// nothing and is answered with the refund's state, as the README promises
// of every confirm repeated after it was taken: its outcome is still to
// come (a person handles the order, and WeChat Pay's SUCCESS of it is
// still counted), so pending, not 410 "already used, cancelled or
// expired; ask again in the chat", which told the user the refund they
// confirmed had not happened, and sent them to ask for one the order,
// in review, cannot give. Once WeChat Pay reports it SUCCESS, the answer
// is succeeded.
func TestRepeatedConfirmOfARefundInReview(t *testing.T) {
	tests := []struct {
		name string
		// word is what WeChat Pay reports while the refund is in flight;
		// own says it is about the confirmed refund itself.
		word refundWord
		own  bool
	}{
		{name: "abnormal", word: refundWord{status: wechatpay.RefundAbnormal, fen: 4999}, own: true},
		{name: "another refund", word: refundWord{outRefundNo: "RFmerchantplatform0001", status: wechatpay.RefundSuccess, fen: 1000}},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-review-repeat", 2) // 99.98 CNY
				p := propose(t, e, o, 4999)
				if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
					t.Fatalf("confirm: %v, %v; want processing", resStatus(res), err)
				}
				w := tt.word
				if tt.own {
					w.outRefundNo = p.OutRefundNo
				}
				if status, body := e.postRefund(o, e.order(o.OrderNo).TransactionID, w); status/100 != 2 {
					t.Fatalf("refund notification: %d %s", status, body)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview || got.RefundReservedBy != p.RefundID {
					t.Fatalf("order %s held by %q; want needs_review, still held for %s", got.Status, got.RefundReservedBy, p.RefundID)
				}
				res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				if errors.Is(err, store.ErrGone) || err != nil || res.Status != payments.RefundPending {
					t.Errorf("confirm again: %v, %v; want pending (its outcome is still to come), not gone", resStatus(res), err)
				}
				if res != nil && res.Order != nil && res.Order.Status != store.StatusNeedsReview {
					t.Errorf("confirm again answered the order as %s; want needs_review", res.Order.Status)
				}
				// WeChat Pay's SUCCESS of the refund (re-handled by the
				// merchant, or simply done) is counted on the order in
				// review; a repeat is then told it succeeded.
				if status, body := e.postRefund(o, e.order(o.OrderNo).TransactionID, refundWord{outRefundNo: p.OutRefundNo, status: wechatpay.RefundSuccess, fen: 4999}); status != http.StatusNoContent {
					t.Fatalf("refund success: %d %s", status, body)
				}
				if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundSucceeded {
					t.Errorf("confirm after its SUCCESS: %v, %v; want succeeded", resStatus(res), err)
				}
				if n := e.sim.RefundCount(o.OrderNo); n != 1 {
					t.Errorf("refunds at WeChat Pay: %d; want 1", n)
				}
			})
		}
	}
}
