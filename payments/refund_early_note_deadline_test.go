package payments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
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
	tests := []struct {
		status     string
		wantStatus string
		wantOrder  store.OrderStatus
	}{
		{status: wechatpay.RefundSuccess, wantStatus: payments.RefundSucceeded, wantOrder: store.StatusRefunded},
		{status: wechatpay.RefundClosed, wantStatus: payments.RefundClosed, wantOrder: store.StatusPaid},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.status, func(t *testing.T) {
				var e *env
				e = newEnv(t, envOptions{driver: driver, service: func(opts *payments.Options) {
					opts.Backend = spentBudgetBackend{earlyNoteBackend{Client: opts.Backend.(*wechatpay.Client), note: func(ctx context.Context, no string) {
						rf, ok := e.sim.Refund(no)
						if !ok {
							t.Errorf("refund %s unknown to the simulator", no)
							return
						}
						res := wxsim.RefundResource{MchID: e.sim.MchID(), TransactionID: rf.TransactionID, OutTradeNo: rf.OutTradeNo,
							RefundID: rf.RefundID, OutRefundNo: no, RefundStatus: tt.status, UserReceivedAccount: rf.UserReceivedAccount}
						res.Amount.Total, res.Amount.Refund = rf.Amount.Total, rf.Amount.Refund
						res.Amount.PayerTotal, res.Amount.PayerRefund = rf.Amount.PayerTotal, rf.Amount.PayerRefund
						n, err := e.sim.BuildNotification(wxsim.NotificationSpec{EventType: "REFUND." + tt.status, Summary: "退款", OriginalType: "refund", Resource: res})
						if err != nil {
							t.Error(err)
							return
						}
						if status, body := e.post(n.Header, n.Body); status/100 != 2 {
							t.Errorf("early notification: %d %s", status, body)
						}
					}}, t}
				}})
				// Time enough for the confirmation's steps and the notification
				// under -race on a loaded machine; the create's answer never
				// comes within it.
				payments.SetRefundCallTimeout(e.svc, 2*time.Second)
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-timed-out-answer", 1)
				p := propose(t, e, o, 0)
				res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				if err != nil {
					t.Fatalf("confirm: %v", err)
				}
				if res.Status != tt.wantStatus || res.Order.Status != tt.wantOrder {
					t.Errorf("confirm answered refund %s, order %s; want %s, %s", res.Status, res.Order.Status, tt.wantStatus, tt.wantOrder)
				}
				if got := e.order(o.OrderNo); res.Order.Version != got.Version {
					t.Errorf("confirm answered the order at v%d; it is at v%d", res.Order.Version, got.Version)
				}
				again, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				if err != nil {
					t.Fatalf("second tap: %v", err)
				}
				if again.Status != res.Status {
					t.Errorf("second tap answered %s; the first %s", again.Status, res.Status)
				}
				if n := e.sim.RefundCount(o.OrderNo); n != 1 {
					t.Errorf("simulator refunds %d; want 1", n)
				}
			})
		}
	}
}
