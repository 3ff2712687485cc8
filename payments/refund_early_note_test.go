package payments_test

import (
	"context"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// earlyNoteBackend is the official client whose refund creates WeChat Pay
// carries out and settles, its notification (ABNORMAL or SUCCESS) delivered
// and acknowledged, before the create's own PROCESSING answer gets back.
type earlyNoteBackend struct {
	*wechatpay.Client
	note func(ctx context.Context, outRefundNo string)
}

func (b earlyNoteBackend) CreateRefund(ctx context.Context, req wechatpay.RefundRequest) (*wechatpay.Refund, error) {
	r, err := b.Client.CreateRefund(ctx, req)
	if err == nil && b.note != nil {
		b.note(ctx, req.OutRefundNo)
	}
	return r, err
}

// earlyNoteEnv is an env on driver whose refund creates go through
// wrap(b), b an earlyNoteBackend whose notification is REFUND.<status>
// (deliverRefundNote); a nil wrap uses b as it is.
func earlyNoteEnv(t *testing.T, driver, status string, wrap func(earlyNoteBackend) payments.Backend) *env {
	t.Helper()
	var e *env
	e = newEnv(t, envOptions{driver: driver, service: func(opts *payments.Options) {
		b := earlyNoteBackend{Client: opts.Backend.(*wechatpay.Client), note: func(ctx context.Context, no string) {
			deliverRefundNote(t, e, no, status)
		}}
		if wrap == nil {
			opts.Backend = b
			return
		}
		opts.Backend = wrap(b)
	}})
	return e
}

// deliverRefundNote sends the service WeChat Pay's REFUND.<status>
// notification of the simulator's refund no, as WeChat Pay would, and
// wants it acknowledged.
func deliverRefundNote(t *testing.T, e *env, no, status string) {
	t.Helper()
	rf, ok := e.sim.Refund(no)
	if !ok {
		t.Errorf("refund %s unknown to the simulator", no)
		return
	}
	res := wxsim.RefundResource{MchID: e.sim.MchID(), TransactionID: rf.TransactionID, OutTradeNo: rf.OutTradeNo,
		RefundID: rf.RefundID, OutRefundNo: no, RefundStatus: status, UserReceivedAccount: rf.UserReceivedAccount}
	res.Amount.Total, res.Amount.Refund = rf.Amount.Total, rf.Amount.Refund
	res.Amount.PayerTotal, res.Amount.PayerRefund = rf.Amount.PayerTotal, rf.Amount.PayerRefund
	n, err := e.sim.BuildNotification(wxsim.NotificationSpec{EventType: "REFUND." + status, Summary: "退款", OriginalType: "refund", Resource: res})
	if err != nil {
		t.Error(err)
		return
	}
	if status, body := e.post(n.Header, n.Body); status/100 != 2 {
		t.Errorf("early notification: %d %s", status, body)
	}
}

// oneRefundAtWeChat wants the simulator to hold exactly one refund of o.
func oneRefundAtWeChat(t *testing.T, e *env, o *store.Order) {
	t.Helper()
	if n := e.sim.RefundCount(o.OrderNo); n != 1 {
		t.Errorf("simulator refunds %d; want 1", n)
	}
}

// TestRefundNotificationBeforeItsCreateAnswer: WeChat Pay's notification of a
// refund can arrive before the create call's answer (PROCESSING) does. The
// notification's word stands: a SUCCESS is counted once and the late
// PROCESSING answer neither undoes it nor counts it again; an ABNORMAL sends
// the order to needs_review (money stuck) and the late answer does not bring
// it back to refunding. One refund at WeChat Pay either way.
func TestRefundNotificationBeforeItsCreateAnswer(t *testing.T) {
	tests := []struct {
		status     string
		want       store.OrderStatus
		wantFen    int64
		wantReason string
	}{
		{status: wechatpay.RefundSuccess, want: store.StatusRefunded, wantFen: 4999},
		{status: wechatpay.RefundAbnormal, want: store.StatusNeedsReview, wantReason: "refund_abnormal"},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.status, func(t *testing.T) {
				e := earlyNoteEnv(t, driver, tt.status, nil)
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-early-note", 1)
				p := propose(t, e, o, 0)
				res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				if err != nil {
					t.Errorf("confirm: %v, %v", resStatus(res), err)
				}
				got := e.order(o.OrderNo)
				if got.Status != tt.want || got.RefundedFen != tt.wantFen {
					t.Errorf("order %s refunded %d (%q); want %s %d", got.Status, got.RefundedFen, got.ReviewReason, tt.want, tt.wantFen)
				}
				if tt.wantReason != "" && !strings.HasPrefix(got.ReviewReason, tt.wantReason) {
					t.Errorf("review reason %q; want %s…", got.ReviewReason, tt.wantReason)
				}
				// The sweep, later, changes nothing and sends nothing.
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
				if again := e.order(o.OrderNo); again.Status != tt.want || again.RefundedFen != tt.wantFen {
					t.Errorf("after the sweep: %s %d; want %s %d", again.Status, again.RefundedFen, tt.want, tt.wantFen)
				}
				oneRefundAtWeChat(t, e, o)
			})
		}
	}
}

func resStatus(r *payments.RefundResult) any {
	if r == nil {
		return nil
	}
	return r.Status
}
