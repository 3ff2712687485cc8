package payments_test

import (
	"context"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// abnormalAnswer is a WeChat Pay whose answer to a refund's create is
// ABNORMAL: the payer's account or card cannot take the money back.
type abnormalAnswer struct{ payments.Backend }

func (b abnormalAnswer) CreateRefund(ctx context.Context, req wechatpay.RefundRequest) (*wechatpay.Refund, error) {
	r, err := b.Backend.CreateRefund(ctx, req)
	if err == nil {
		r.Status = wechatpay.RefundAbnormal
	}
	return r, err
}

// TestConfirmAnsweredAbnormalIsPending: WeChat Pay answered the user's
// confirmed refund ABNORMAL, and the order went to needs_review with it
// open (a person re-handles it, or the merchant under the same number).
// The confirmation answered "processing", which says WeChat Pay accepted
// it and its notification settles the order, while the same tap repeated
// answered "pending" (refundState: in review with its refund open); both
// answer pending, its outcome still to come.
func TestConfirmAnsweredAbnormalIsPending(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { o.Backend = abnormalAnswer{o.Backend} }})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-refund-abnormal-answer", 1)
			p := propose(t, e, o, 0)
			first, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if err != nil || first.Order.Status != store.StatusNeedsReview {
				t.Fatalf("confirm answered ABNORMAL: %v, %v; want the order in needs_review", resStatus(first), err)
			}
			again, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if err != nil {
				t.Fatal(err)
			}
			if first.Status != payments.RefundPending || again.Status != payments.RefundPending {
				t.Errorf("confirm answered ABNORMAL: %s, repeated: %s; want pending both", first.Status, again.Status)
			}
		})
	}
}
