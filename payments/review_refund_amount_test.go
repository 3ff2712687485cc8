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

// TestInFlightRefundOfAnotherAmountInReviewIsNotCounted: a confirmed
// refund WeChat Pay reports ABNORMAL puts its order in needs_review; a
// SUCCESS that follows for that refund in flight, of an amount other than
// the one the user confirmed, contradicts the record. Outside review the
// same word is refund_amount_mismatch: noted for a person, alerted, not
// counted. In review it was counted into refunded_fen as
// refunded_while_in_review, and the user's refund was recorded as having
// succeeded with an amount the user never confirmed: the money on record
// depended on whether the word came before or after the order went to
// review. It is noted as refund_amount_mismatch, alerted, and not counted,
// once: a copy is a duplicate.
func TestInFlightRefundOfAnotherAmountInReviewIsNotCounted(t *testing.T) {
	const asked = 4999
	for _, driver := range drivers(t) {
		for _, fen := range []int64{asked + 1, asked - 1} {
			t.Run(fmt.Sprintf("%s/%d fen", driver, fen), func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver})
				o := paidOrder(t, e, "oUser-review-amount", 2) // 99.98 CNY
				p := propose(t, e, o, asked)
				if _, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); err != nil {
					t.Fatalf("confirm: %v", err)
				}
				if status, body := e.postRefund(o, o.TransactionID, refundWord{p.OutRefundNo, wechatpay.RefundAbnormal, asked}); status != http.StatusNoContent {
					t.Fatalf("abnormal: got %d %q; want 204", status, body)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview {
					t.Fatalf("after the abnormal: got %s; want needs_review", got.Status)
				}
				alerts := strings.Count(e.logs.String(), "ALERT: wechat pay's refund disagrees with the order record")
				word := refundWord{p.OutRefundNo, wechatpay.RefundSuccess, fen}
				for i, want := range []string{payments.OutcomeReview, payments.OutcomeDuplicate} {
					labels := map[string]string{"event": word.event(), "outcome": want, "reason": "refund_amount_mismatch"}
					if want == payments.OutcomeDuplicate {
						labels["reason"] = "ok"
					}
					n0 := e.counter("paygate_notifications_total", labels)
					if status, body := e.postRefund(o, o.TransactionID, word); status != http.StatusNoContent {
						t.Fatalf("success #%d: got %d %q; want 204", i+1, status, body)
					}
					got := e.order(o.OrderNo)
					if got.Status != store.StatusNeedsReview || got.RefundedFen != 0 || len(got.RefundNos) != 0 {
						t.Errorf("success #%d of %d fen: %s refunded_fen %d refund_nos %q; want needs_review with nothing counted",
							i+1, fen, got.Status, got.RefundedFen, got.RefundNos)
					}
					for _, r := range got.RefundOutcomes {
						if r.Status == store.RefundSucceeded {
							t.Errorf("success #%d: the user's refund recorded as succeeded (%d fen); want it not", i+1, r.AmountFen)
						}
					}
					if n := strings.Count(got.ReviewReason, "refund_amount_mismatch: wechat pay refund "+p.OutRefundNo+" (SUCCESS)"); n != 1 {
						t.Errorf("success #%d: review reason %q; want the mismatch noted once", i+1, got.ReviewReason)
					}
					if n := e.counter("paygate_notifications_total", labels); n != n0+1 {
						t.Errorf("success #%d: counted %s/%s %v times; want once", i+1, want, labels["reason"], n-n0)
					}
				}
				if n := strings.Count(e.logs.String(), "ALERT: wechat pay's refund disagrees with the order record"); n != alerts+1 {
					t.Errorf("alerts: %d; want one more (%d)", n, alerts+1)
				}
			})
		}
	}
}
