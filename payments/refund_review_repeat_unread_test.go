package payments_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// inFlightDown is a store whose refunds in flight cannot be read: on a
// Redis Cluster, the node holding the record (a key of its own, not on the
// order's slot) is down while the order's answers.
type inFlightDown struct{ payments.Store }

func (s inFlightDown) GetExchange(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, "refund-inflight:") {
		return nil, store.ErrUnavailable
	}
	return s.Store.GetExchange(ctx, key)
}

// TestRepeatedConfirmOfARefundCountedInReviewWhileItsRecordIsUnread: the
// user's refund went ABNORMAL (the order to needs_review), then WeChat Pay
// reported it SUCCESS, counted on the order in review. A confirm sent again
// while the refund's record cannot be read is answered succeeded, as the
// order says, because the record is needed only to tell a refund still open
// in review: it was read before the order's own word was, and its failure
// answered the user 503 "payments are temporarily unavailable" about a
// refund that had gone through.
func TestRepeatedConfirmOfARefundCountedInReviewWhileItsRecordIsUnread(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-review-unread", 2) // 99.98 CNY
			p := propose(t, e, o, 4999)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm: %v, %v; want processing", resStatus(res), err)
			}
			tx := e.order(o.OrderNo).TransactionID
			if status, body := e.postRefund(o, tx, refundWord{outRefundNo: p.OutRefundNo, status: wechatpay.RefundAbnormal, fen: 4999}); status/100 != 2 {
				t.Fatalf("abnormal: %d %s", status, body)
			}
			if status, body := e.postRefund(o, tx, refundWord{outRefundNo: p.OutRefundNo, status: wechatpay.RefundSuccess, fen: 4999}); status != http.StatusNoContent {
				t.Fatalf("refund success: %d %s", status, body)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview || got.RefundedFen != 4999 {
				t.Fatalf("order %s, %d fen refunded; want needs_review with the refund counted", got.Status, got.RefundedFen)
			}
			b := replicaOn(t, e, inFlightDown{e.st})
			if res, err := b.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundSucceeded {
				t.Errorf("confirm again, the refund's record unread: %v, %v; want succeeded", resStatus(res), err)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("refunds at WeChat Pay: %d; want 1", n)
			}
		})
	}
}
