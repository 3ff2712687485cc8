package payments_test

import (
	"context"
	"strings"
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

// TestRefundAskedAgainAfterAbnormalSaysStaffHaveIt: the user's confirmed
// refund WeChat Pay answered ABNORMAL is with staff (the order in
// needs_review, the user's next turn told it is stuck and staff will
// handle it). Asked for again, request_refund said "this order cannot be
// refunded in its current state (needs_review)", which had the model tell
// the user no refund can be made of an order whose refund they confirmed
// and a person is settling; it says staff are reviewing the order and
// will handle it, and proposes nothing.
func TestRefundAskedAgainAfterAbnormalSaysStaffHaveIt(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { o.Backend = abnormalAnswer{o.Backend} }})
			o := paidOrder(t, e, "oUser-refund-abnormal-again", 1)
			p := propose(t, e, o, 0)
			if res, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); err != nil || res.Order.Status != store.StatusNeedsReview {
				t.Fatalf("confirm answered ABNORMAL: %v, %v; want the order in needs_review", resStatus(res), err)
			}
			tc := call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"again"}`)
			msg, _ := tc.result["error"].(string)
			if tc.result["order_status"] != "needs_review" || !strings.Contains(msg, "staff") || strings.Contains(msg, "cannot be refunded") || tc.action != nil {
				t.Errorf("asked again after ABNORMAL: %s, action %s; want the order in review told as with staff, nothing proposed", tc.out.Result, tc.out.Action)
			}
		})
	}
}
