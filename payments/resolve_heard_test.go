package payments_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestResolveClosesAnOrderWhoseRefundWasHeard: the confirmed refund in
// flight when WeChat Pay's SUCCESS of it disagreed with the record (another
// amount than the user confirmed) sent the order to review with its
// reservation kept, and that word is final: nothing more comes of the
// refund, so nothing would end the reservation. Closing ends it; paid is
// still refused (money went back).
func TestResolveClosesAnOrderWhoseRefundWasHeard(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-resolve-heard", 2)
			p := propose(t, e, o, 4999)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
				t.Fatalf("confirm: %v", err)
			}
			if status, body := e.postRefund(o, o.TransactionID, refundWord{p.OutRefundNo, wechatpay.RefundSuccess, 1000}); status != http.StatusNoContent {
				t.Fatalf("refund notification: %d %s", status, body)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusNeedsReview || got.RefundReservedBy != p.RefundID || !strings.HasPrefix(got.ReviewReason, "refund_amount_mismatch") {
				t.Fatalf("after the refund's word: %s reserved by %q (%q); want needs_review reserved by %s for refund_amount_mismatch",
					got.Status, got.RefundReservedBy, got.ReviewReason, p.RefundID)
			}
			if _, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusPaid); err == nil {
				t.Errorf("resolve as paid: accepted; want refused")
			}
			res, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusClosed)
			if err != nil || res == nil || res.Status != store.StatusClosed {
				t.Fatalf("resolve as closed: %+v %v; want closed", res, err)
			}
			if now := e.order(o.OrderNo); now.Status != store.StatusClosed || now.RefundReservedBy != "" {
				t.Errorf("after the resolution: %s reserved by %q; want closed reserved by none", now.Status, now.RefundReservedBy)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("simulator refunds %d; want 1", n)
			}
		})
	}
}
