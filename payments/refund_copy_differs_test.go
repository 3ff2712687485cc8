package payments_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestCopyOfAnAppliedRefundOfAnotherAmountGoesToReview: a refund the user
// confirmed succeeds and is counted; WeChat Pay then reports that same
// refund SUCCESS of another amount. It contradicts the record (the amount
// counted for it), as the same word for the refund in flight does
// (refund_amount_mismatch): the order goes to needs_review, alerted, with
// nothing counted again. It was acknowledged as a late copy, unseen. A
// copy of the amount counted still changes nothing.
func TestCopyOfAnAppliedRefundOfAnotherAmountGoesToReview(t *testing.T) {
	const asked = 4999
	e := newEnv(t, envOptions{})
	o := paidOrder(t, e, "oUser-refund-copy-amount", 2) // 99.98 CNY
	p := propose(t, e, o, asked)
	if _, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if status, body := e.postRefund(o, o.TransactionID, refundWord{p.OutRefundNo, wechatpay.RefundSuccess, asked}); status != http.StatusNoContent {
		t.Fatalf("success: got %d %q; want 204", status, body)
	}
	applied := e.order(o.OrderNo)
	if applied.Status != store.StatusPartiallyRefunded || applied.RefundedFen != asked {
		t.Fatalf("after the success: %s refunded_fen %d; want partially_refunded %d", applied.Status, applied.RefundedFen, asked)
	}
	if status, body := e.postRefund(o, o.TransactionID, refundWord{p.OutRefundNo, wechatpay.RefundSuccess, asked}); status != http.StatusNoContent {
		t.Fatalf("copy: got %d %q; want 204", status, body)
	}
	if got := e.order(o.OrderNo); got.Version != applied.Version {
		t.Fatalf("a copy of the same amount changed the order: %s v%d", got.Status, got.Version)
	}
	for i := range 2 { // its retry changes nothing more
		if status, body := e.postRefund(o, o.TransactionID, refundWord{p.OutRefundNo, wechatpay.RefundSuccess, asked + 1}); status != http.StatusNoContent {
			t.Fatalf("other amount #%d: got %d %q; want 204", i+1, status, body)
		}
	}
	got := e.order(o.OrderNo)
	if got.Status != store.StatusNeedsReview || !strings.HasPrefix(got.ReviewReason, "refund_amount_mismatch") {
		t.Fatalf("after the other amount: %s (%s); want needs_review refund_amount_mismatch", got.Status, got.ReviewReason)
	}
	if got.RefundedFen != asked || len(got.RefundNos) != 1 || got.Version != applied.Version+1 {
		t.Errorf("after the other amount: refunded_fen %d refund_nos %q v%d; want %d counted once, v%d", got.RefundedFen, got.RefundNos, got.Version, asked, applied.Version+1)
	}
	if !strings.Contains(e.logs.String(), "ALERT: wechat pay's refund disagrees with the order record") {
		t.Errorf("no alert")
	}
}
