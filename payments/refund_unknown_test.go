package payments_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestUnknownRefundClosedOrAbnormalIsRaised: a REFUND.ABNORMAL or
// REFUND.CLOSED of a refund paygate never made (an out_refund_no that is
// neither one it counted nor the one it sent for the order) disagrees with
// paygate's records as a REFUND.SUCCESS of one does (SPEC 2.4): the order
// goes to needs_review (refund_not_requested) with an alert, whether it is
// paid or has another refund in flight. It was acknowledged as a duplicate,
// no alert, no review: a refund started on the merchant platform and stuck
// (ABNORMAL: the money left the merchant and reached no one) went unseen.
// A copy of paygate's own refund's word stays a duplicate.
func TestUnknownRefundClosedOrAbnormalIsRaised(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	for i, tt := range []struct {
		status   string
		inFlight bool
	}{
		{wechatpay.RefundAbnormal, false},
		{wechatpay.RefundClosed, false},
		{wechatpay.RefundAbnormal, true},
		{wechatpay.RefundClosed, true},
	} {
		t.Run(fmt.Sprintf("%s, another in flight %v", tt.status, tt.inFlight), func(t *testing.T) {
			o := paidOrder(t, e, fmt.Sprintf("oUser-unknown-refund-%d", i), 2)
			// paygate's own refund, closed at WeChat Pay, and a copy of its word.
			own := propose(t, e, o, 1000)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, own.RefundID); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if status, body := e.postRefund(o, e.order(o.OrderNo).TransactionID, refundWord{own.OutRefundNo, wechatpay.RefundClosed, 1000}); status != http.StatusNoContent {
					t.Fatalf("own refund closed: %d %s", status, body)
				}
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPaid {
				t.Fatalf("after paygate's own refund closed (and its copy): %s %q; want paid", got.Status, got.ReviewReason)
			}
			if tt.inFlight {
				p := propose(t, e, o, 1000)
				if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
					t.Fatal(err)
				}
			}
			alerts := strings.Count(e.logs.String(), "ALERT: wechat pay's refund disagrees with the order record")
			n0 := e.counter("paygate_notifications_total", map[string]string{"outcome": payments.OutcomeReview, "reason": "refund_not_requested"})
			no := fmt.Sprintf("RFplatform%04d", 100+i)
			if status, body := e.postRefund(o, e.order(o.OrderNo).TransactionID, refundWord{no, tt.status, 3000}); status != http.StatusNoContent {
				t.Fatalf("unknown refund's word: %d %s; want 204", status, body)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusNeedsReview || !strings.HasPrefix(got.ReviewReason, "refund_not_requested") || !strings.Contains(got.ReviewReason, no) {
				t.Errorf("order: %s %q; want needs_review refund_not_requested naming %s", got.Status, got.ReviewReason, no)
			}
			if got.RefundedFen != 0 {
				t.Errorf("refunded_fen %d; want 0", got.RefundedFen)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"outcome": payments.OutcomeReview, "reason": "refund_not_requested"}); n != n0+1 {
				t.Errorf("notifications counted review/refund_not_requested: %v more; want 1", n-n0)
			}
			if n := strings.Count(e.logs.String(), "ALERT: wechat pay's refund disagrees with the order record"); n != alerts+1 {
				t.Errorf("alerts: %d more; want 1", n-alerts)
			}
		})
	}
}

// TestOwnClosedRefundLateCopyAfterAnotherRefund: a copy of WeChat Pay's
// REFUND.CLOSED of paygate's own refund that arrives after the user asked
// again (a second refund confirmed, in flight or settled) is paygate's own
// refund's word, a duplicate: the order is not put in review. WeChat Pay
// sends a refund notification again until it is acknowledged (for up to a
// day), and paygate may have learned of the close from its own query first,
// so such a copy may come minutes after the close. It was taken for a refund
// paygate never made (refund_not_requested): the order frozen in review and
// an alert about money that never moved.
func TestOwnClosedRefundLateCopyAfterAnotherRefund(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	for i, settled := range []bool{false, true} {
		t.Run(fmt.Sprintf("second refund settled %v", settled), func(t *testing.T) {
			o := paidOrder(t, e, fmt.Sprintf("oUser-own-closed-late-%d", i), 2)
			first := propose(t, e, o, 1000)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, first.RefundID); err != nil {
				t.Fatal(err)
			}
			txid := e.order(o.OrderNo).TransactionID
			if status, body := e.postRefund(o, txid, refundWord{first.OutRefundNo, wechatpay.RefundClosed, 1000}); status != http.StatusNoContent {
				t.Fatalf("own refund closed: %d %s", status, body)
			}
			second := propose(t, e, o, 1000)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, second.RefundID); err != nil {
				t.Fatal(err)
			}
			want := store.StatusRefunding
			if settled {
				if status, body := e.postRefund(o, txid, refundWord{second.OutRefundNo, wechatpay.RefundSuccess, 1000}); status != http.StatusNoContent {
					t.Fatalf("second refund succeeded: %d %s", status, body)
				}
				want = store.StatusPartiallyRefunded
			}
			alerts := strings.Count(e.logs.String(), "ALERT")
			// The late copy of the first refund's close.
			if status, body := e.postRefund(o, txid, refundWord{first.OutRefundNo, wechatpay.RefundClosed, 1000}); status != http.StatusNoContent {
				t.Fatalf("late copy of the close: %d %s", status, body)
			}
			if got := e.order(o.OrderNo); got.Status != want {
				t.Errorf("after the late copy of paygate's own refund's close: %s %q; want %s", got.Status, got.ReviewReason, want)
			}
			if n := strings.Count(e.logs.String(), "ALERT"); n != alerts {
				t.Errorf("alerts: %d more; want none", n-alerts)
			}
		})
	}
}
