package payments_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestConfirmAnswerAfterAnEarlyRefundNotification: when WeChat Pay's
// notification of a refund (SUCCESS or CLOSED) is applied before the
// create call's own PROCESSING answer gets back, the confirmation answers
// with how the refund ended, as the order records it, and with the order
// as it stands: the same answer a second tap of the same confirmation
// gets. It answered "processing" with the order still refunding, so the
// bot told the user a refund that had already gone through, or had been
// closed with nothing refunded, was on its way.
func TestConfirmAnswerAfterAnEarlyRefundNotification(t *testing.T) {
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
					opts.Backend = earlyNoteBackend{Client: opts.Backend.(*wechatpay.Client), note: func(ctx context.Context, no string) {
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
					}}
				}})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-early-answer", 1)
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
			})
		}
	}
}

// lostAnswerBackend is earlyNoteBackend whose create's answer is lost
// after WeChat Pay made the refund and its notification was delivered: the
// call ends with an error of unknown outcome.
type lostAnswerBackend struct{ earlyNoteBackend }

func (b lostAnswerBackend) CreateRefund(ctx context.Context, req wechatpay.RefundRequest) (*wechatpay.Refund, error) {
	if _, err := b.earlyNoteBackend.CreateRefund(ctx, req); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: the answer was lost", wechatpay.ErrTemporary)
}

// TestConfirmWithLostAnswerAfterAnEarlyRefundNotification: a refund whose
// create call ended with no answer (its outcome unknown to the call) while
// WeChat Pay's notification of its end was recorded meanwhile is answered
// with that end, and the order as it stands, not "pending" (202, the sweep
// will ask) with the order still refunding: the user was told a refund
// already made, or closed, was still on its way.
func TestConfirmWithLostAnswerAfterAnEarlyRefundNotification(t *testing.T) {
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
					opts.Backend = lostAnswerBackend{earlyNoteBackend{Client: opts.Backend.(*wechatpay.Client), note: func(ctx context.Context, no string) {
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
					}}}
				}})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-lost-answer", 1)
				p := propose(t, e, o, 0)
				res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				if err != nil {
					t.Fatalf("confirm: %v", err)
				}
				if res.Status != tt.wantStatus || res.Order.Status != tt.wantOrder {
					t.Errorf("confirm answered refund %s, order %s; want %s, %s", res.Status, res.Order.Status, tt.wantStatus, tt.wantOrder)
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
