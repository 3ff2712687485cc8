package payments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
)

// spentBudgetBackend is earlyNoteBackend whose create, after WeChat Pay
// made the refund and its notification was delivered, gets no answer
// before the confirmation's budget (refundCallTimeout) runs out: it ends
// as the official client's does then, ErrTemporary with the context's
// error, the context done.
type spentBudgetBackend struct {
	earlyNoteBackend
	t testing.TB
}

func (b spentBudgetBackend) CreateRefund(ctx context.Context, req wechatpay.RefundRequest) (*wechatpay.Refund, error) {
	if _, err := b.earlyNoteBackend.CreateRefund(ctx, req); err != nil {
		b.t.Errorf("create, within the confirmation's time: %v", err)
		return nil, err
	}
	if ctx.Err() != nil {
		b.t.Errorf("the confirmation's time ran out before its notification was recorded: %v", ctx.Err())
	}
	<-ctx.Done()
	return nil, fmt.Errorf("wechatpay refund %s: %w: %w", req.OutRefundNo, wechatpay.ErrTemporary, ctx.Err())
}

// TestConfirmWithTimedOutAnswerAfterAnEarlyRefundNotification: a refund
// whose create call ran out the confirmation's time with no answer, while
// WeChat Pay's notification of its end was recorded meanwhile, is answered
// with that end and the order as it stands, as one whose answer was lost
// before the time ran out is. The order was read under the confirmation's
// own context, done by then, so the read failed on either store and the
// tap was told "pending" (202, on its way) with the order still refunding
// for a refund already made, or closed with nothing refunded.
func TestConfirmWithTimedOutAnswerAfterAnEarlyRefundNotification(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, tt := range earlyEnds {
			t.Run(driver+"/"+tt.status, func(t *testing.T) {
				e := earlyNoteEnv(t, driver, tt.status, func(b earlyNoteBackend) payments.Backend { return spentBudgetBackend{b, t} })
				// Time enough for the confirmation's steps and the notification
				// under -race on a loaded machine; the create's answer never
				// comes within it.
				payments.SetRefundCallTimeout(e.svc, 2*time.Second)
				o := paidOrder(t, e, "oUser-timed-out-answer", 1)
				p := propose(t, e, o, 0)
				res := confirmAnswersEnd(t, e, o, p, tt)
				answeredOrderIsCurrent(t, e, o, res)
				secondTapAnswersAlike(t, e, o, p, res)
				oneRefundAtWeChat(t, e, o)
			})
		}
	}
}
