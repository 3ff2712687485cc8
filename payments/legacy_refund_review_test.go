package payments_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestLegacyRefundCopyNotCountedTwice: an order refunded once before refund
// numbers were kept (R0, no number) and once since (R1) gets a late copy of
// R0's SUCCESS. Outside review it goes to review uncounted; in review it was
// added to refunded_fen a second time, so the user could no longer get what
// they were still owed. Only the refund in flight is counted in review.
func TestLegacyRefundCopyNotCountedTwice(t *testing.T) {
	for _, inReview := range []bool{false, true} {
		name := "partially_refunded"
		if inReview {
			name = "needs_review"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: "embedded"})
			o := paidOrder(t, e, "oUser-legacy-"+name, 2) // 9998 fen
			cur := e.order(o.OrderNo)
			next := *cur
			next.RefundedFen = 2000         // R0 (legacy, no number) 1000 + R1 1000
			next.RefundNos = []string{"R1"} // only R1 has its number
			next.Status = store.StatusPartiallyRefunded
			if inReview {
				next.Status = store.StatusNeedsReview
				next.ReviewReason = "paid_twice: another transaction"
			}
			if err := e.st.UpdateOrder(context.Background(), &next, cur.Status); err != nil {
				t.Fatal(err)
			}
			if status, body := e.postRefund(o, o.TransactionID, refundWord{"R0-legacy", wechatpay.RefundSuccess, 1000}); status != http.StatusNoContent {
				t.Fatalf("got %d %q", status, body)
			}
			got := e.order(o.OrderNo)
			if got.RefundedFen != 2000 {
				t.Errorf("refunded_fen %d after a copy of the legacy refund's SUCCESS; want 2000 (counted once already) — reason %q", got.RefundedFen, got.ReviewReason)
			}
		})
	}
}
