package payments_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestRepeatedConfirmOfARefundClosedInReview: the user's confirmed refund is
// with WeChat Pay when money the order's record never asked for goes back
// (a refund on the merchant platform), which puts the order in
// needs_review; WeChat Pay then closes the user's refund (no money moved).
// A confirm sent again is answered 200 closed, as the README promises of a
// refund WeChat Pay settled so, and as it is outside review: the order
// keeps the refund's number among those WeChat Pay closed. It was 410
// "already used, cancelled or has expired; ask again in the chat". A late
// copy of the CLOSED stays a duplicate.
func TestRepeatedConfirmOfARefundClosedInReview(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-review-closed", 2) // 99.98 CNY
			p := propose(t, e, o, 4999)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm: %v, %v; want processing", resStatus(res), err)
			}
			tx := e.order(o.OrderNo).TransactionID
			if status, body := e.postRefund(o, tx, refundWord{outRefundNo: "RFmerchantplatform0002", status: wechatpay.RefundSuccess, fen: 1000}); status != http.StatusNoContent {
				t.Fatalf("merchant platform refund: %d %s", status, body)
			}
			closed := refundWord{outRefundNo: p.OutRefundNo, status: wechatpay.RefundClosed, fen: 4999}
			if status, body := e.postRefund(o, tx, closed); status != http.StatusNoContent {
				t.Fatalf("refund closed: %d %s", status, body)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusNeedsReview || got.RefundReservedBy != "" || !slices.Contains(got.ClosedRefundNos, p.OutRefundNo) {
				t.Errorf("order %s held by %q, closed refunds %v; want needs_review, no longer held, %s among the closed", got.Status, got.RefundReservedBy, got.ClosedRefundNos, p.OutRefundNo)
			}
			res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if err != nil || res.Status != payments.RefundClosed {
				t.Errorf("confirm again: %v, %v; want closed", resStatus(res), err)
			}
			before := e.order(o.OrderNo)
			if status, body := e.postRefund(o, tx, closed); status != http.StatusNoContent {
				t.Fatalf("a copy of the close: %d %s", status, body)
			}
			if after := e.order(o.OrderNo); after.Version != before.Version || after.ReviewReason != before.ReviewReason {
				t.Errorf("a copy of the close changed the order: %q; want it a duplicate", after.ReviewReason)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("refunds at WeChat Pay: %d; want 1", n)
			}
		})
	}
}
