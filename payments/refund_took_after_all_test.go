package payments_test

import (
	"context"
	"errors"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestTookAfterAllRefusedKeepsTheOtherTapsRefund: the user double-taps
// confirm. Tap A reserves the order; tap B goes on under that reservation,
// takes the user's word, records the refund and sends it: WeChat Pay makes
// it, its answer is lost and the client's query finds nothing yet (B is
// answered pending). A's own taking of the word is answered with its reply
// lost; read back, the word is spent and the order still reserved for the
// proposal at the same version, so A goes on (consumedAfterAll) and sends
// the same out_refund_no, which WeChat Pay refuses (NOT_ENOUGH). That
// refusal says nothing of B's send: the order goes to needs_review with the
// refund kept, as a sweep's refused resend does (resendRefused). Put back
// to paid with the user told it failed, a new proposal took a new
// out_refund_no and WeChat Pay held two refunds for one request.
func TestTookAfterAllRefusedKeepsTheOtherTapsRefund(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true, client: func(c *wechatpay.Config) {
				c.MaxAttempts = 1
				c.AttemptTimeout = faultAttemptTimeout
			}})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-took-after-all", 1)
			p := propose(t, e, o, 2000)
			committed := func(o *payments.Options) {
				o.Committed = func(tr payments.Transition) {
					select {
					case e.trans <- tr:
					default:
					}
				}
			}
			a := replicaOn(t, e, &beforeConsume{Store: e.st, lost: true, hook: func() {
				answerLostNotFound(e)
				if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundPending {
					t.Errorf("tap B: %v, %v; want pending", resStatus(res), err)
				}
				e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultNotEnough})
			}}, committed)
			res, err := a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if err != nil || res.Status != payments.RefundPending {
				t.Errorf("tap A, refused after B's send: %v, %v; want pending (B's refund may be made)", resStatus(res), err)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusNeedsReview || got.RefundReservedBy != p.RefundID || len(got.RefundOutcomes) != 0 {
				t.Errorf("order %s reserved by %q with outcomes %+v; want needs_review with the refund in flight, nothing told failed",
					got.Status, got.RefundReservedBy, got.RefundOutcomes)
			}
			if p2, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "again", AmountFen: 2000}); err == nil {
				_, _ = e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p2.RefundID)
				t.Errorf("a second proposal %s (out_refund_no %s beside %s) was made", p2.RefundID, p2.OutRefundNo, p.OutRefundNo)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("%d refunds at WeChat Pay for one request; want 1", n)
			}
			if _, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusPaid); !errors.Is(err, payments.ErrCannotResolve) {
				t.Errorf("resolved as paid with its refund in flight: %v", err)
			}
			// The review is tap A's, committed under its confirmation (audit).
			tr := e.await(func(tr payments.Transition) bool {
				return tr.After.OrderNo == o.OrderNo && tr.After.Status == store.StatusNeedsReview
			})
			if tr.Cause != "refund" || tr.Refund == nil || tr.Refund.RefundID != p.RefundID {
				t.Errorf("transition to needs_review: cause %q refund %+v; want the user's confirmation (refund) of %s", tr.Cause, tr.Refund, p.RefundID)
			}
		})
	}
}
