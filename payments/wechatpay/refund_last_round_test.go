package wechatpay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestRefundLastRoundReturnsAtOnce: a refund create whose outcome is
// unknown (SYSTEM_ERROR) and whose query finds no refund is sent again
// after a pause, but only while rounds are left: after the last round
// CreateRefund answers ErrTemporary at once. It paused as if to send again
// first, a whole backoff (the confirming user's request waiting on it) for
// nothing; here a backoff of an hour, which the caller's deadline cut.
func TestRefundLastRoundReturnsAtOnce(t *testing.T) {
	r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) {
		c.MaxAttempts = 1
		c.RetryBackoff = time.Hour
	})
	ctx := context.Background()
	if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGlastround01", Description: "d", Total: 300}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.sim.Pay(ctx, "PGlastround01"); err != nil {
		t.Fatal(err)
	}
	r.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultSystemError})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a bound for the failure, not a timing assertion
	defer cancel()
	_, err := r.client.CreateRefund(cctx, wechatpay.RefundRequest{OutTradeNo: "PGlastround01", OutRefundNo: "RFlastround01", Refund: 300, Total: 300})
	if !errors.Is(err, wechatpay.ErrTemporary) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("refund: %v; want the create's ErrTemporary after its one round, not the caller's deadline", err)
	}
	if got := r.sim.RefundCount("PGlastround01"); got != 0 {
		t.Errorf("refunds at simulator: got %d; want 0", got)
	}
}
