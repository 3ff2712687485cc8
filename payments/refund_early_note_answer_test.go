package payments_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// earlyEnd is an end an early notification brings a refund to, with the
// confirmation's answer and the order's status that must follow from it.
type earlyEnd struct {
	status     string
	wantStatus string
	wantOrder  store.OrderStatus
}

// earlyEnds are the cases of the tests of a confirmation's answer after an
// early refund notification.
var earlyEnds = []earlyEnd{
	{status: wechatpay.RefundSuccess, wantStatus: payments.RefundSucceeded, wantOrder: store.StatusRefunded},
	{status: wechatpay.RefundClosed, wantStatus: payments.RefundClosed, wantOrder: store.StatusPaid},
}

// confirmAnswersEnd confirms p and wants the answer to name tt's end of
// the refund and tt's status of the order.
func confirmAnswersEnd(t *testing.T, e *env, o *store.Order, p *store.RefundProposal, tt earlyEnd) *payments.RefundResult {
	t.Helper()
	res, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID)
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if res.Status != tt.wantStatus || res.Order.Status != tt.wantOrder {
		t.Errorf("confirm answered refund %s, order %s; want %s, %s", res.Status, res.Order.Status, tt.wantStatus, tt.wantOrder)
	}
	return res
}

// answeredOrderIsCurrent wants res to carry o as the store holds it now.
func answeredOrderIsCurrent(t *testing.T, e *env, o *store.Order, res *payments.RefundResult) {
	t.Helper()
	if got := e.order(o.OrderNo); res.Order.Version != got.Version {
		t.Errorf("confirm answered the order at v%d; it is at v%d", res.Order.Version, got.Version)
	}
}

// secondTapAnswersAlike confirms p again and wants the answer res gave.
func secondTapAnswersAlike(t *testing.T, e *env, o *store.Order, p *store.RefundProposal, res *payments.RefundResult) {
	t.Helper()
	again, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID)
	if err != nil {
		t.Fatalf("second tap: %v", err)
	}
	if again.Status != res.Status {
		t.Errorf("second tap answered %s; the first %s", again.Status, res.Status)
	}
}

// TestConfirmAnswerAfterAnEarlyRefundNotification: when WeChat Pay's
// notification of a refund (SUCCESS or CLOSED) is applied before the
// create call's own PROCESSING answer gets back, the confirmation answers
// with how the refund ended, as the order records it, and with the order
// as it stands: the same answer a second tap of the same confirmation
// gets. It answered "processing" with the order still refunding, so the
// bot told the user a refund that had already gone through, or had been
// closed with nothing refunded, was on its way.
func TestConfirmAnswerAfterAnEarlyRefundNotification(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, tt := range earlyEnds {
			t.Run(driver+"/"+tt.status, func(t *testing.T) {
				e := earlyNoteEnv(t, driver, tt.status, nil)
				o := paidOrder(t, e, "oUser-early-answer", 1)
				p := propose(t, e, o, 0)
				res := confirmAnswersEnd(t, e, o, p, tt)
				answeredOrderIsCurrent(t, e, o, res)
				secondTapAnswersAlike(t, e, o, p, res)
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
	for _, driver := range drivers(t) {
		for _, tt := range earlyEnds {
			t.Run(driver+"/"+tt.status, func(t *testing.T) {
				e := earlyNoteEnv(t, driver, tt.status, func(b earlyNoteBackend) payments.Backend { return lostAnswerBackend{b} })
				o := paidOrder(t, e, "oUser-lost-answer", 1)
				p := propose(t, e, o, 0)
				res := confirmAnswersEnd(t, e, o, p, tt)
				secondTapAnswersAlike(t, e, o, p, res)
				oneRefundAtWeChat(t, e, o)
			})
		}
	}
}
