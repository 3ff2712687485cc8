package payments_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestClosedRefundWordInReviewIsACopy: WeChat Pay closed the user's confirmed
// refund and paygate applied it (the sweep's query found it, say, before the
// notification came): the order is paid again and keeps the refund's
// number among those WeChat Pay closed. Then money the record never asked
// for goes back (a refund on the merchant platform) and the order goes to
// needs_review. The REFUND.CLOSED notification of the user's refund that
// arrives now is WeChat Pay's word already applied: a duplicate, as it is
// outside review, not a new fact that grows the review reason, sends the
// merchant order.needs_review again and raises a review alert for a refund
// paygate settled long before.
func TestClosedRefundWordInReviewIsACopy(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-review-closed-copy", 2) // 99.98 CNY
			p := propose(t, e, o, 4999)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm: %v, %v; want processing", resStatus(res), err)
			}
			tx := e.order(o.OrderNo).TransactionID
			closed := refundWord{outRefundNo: p.OutRefundNo, status: wechatpay.RefundClosed, fen: 4999}
			if status, body := e.postRefund(o, tx, closed); status != http.StatusNoContent {
				t.Fatalf("refund closed: %d %s", status, body)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPaid {
				t.Fatalf("after the close: order %s; want paid", got.Status)
			}
			if status, body := e.postRefund(o, tx, refundWord{outRefundNo: "RFmerchantplatform0003", status: wechatpay.RefundSuccess, fen: 1000}); status != http.StatusNoContent {
				t.Fatalf("merchant platform refund: %d %s", status, body)
			}
			before := e.order(o.OrderNo)
			if before.Status != store.StatusNeedsReview {
				t.Fatalf("after the merchant platform's refund: order %s; want needs_review", before.Status)
			}
			reviews := e.counter("paygate_notifications_total", map[string]string{"outcome": payments.OutcomeReview})
			if status, body := e.postRefund(o, tx, closed); status != http.StatusNoContent {
				t.Fatalf("the close's notification: %d %s", status, body)
			}
			after := e.order(o.OrderNo)
			if after.Version != before.Version || after.ReviewReason != before.ReviewReason {
				t.Errorf("the close, applied before, changed the order in review: %q; want %q, a duplicate", after.ReviewReason, before.ReviewReason)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"outcome": payments.OutcomeReview}); n != reviews {
				t.Errorf("notifications counted as review: %v, then %v; want the close's counted as a duplicate", reviews, n)
			}
		})
	}
}
