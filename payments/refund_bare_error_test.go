package payments_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
)

// bareErrBackend is a WeChat Pay backend whose refund create reaches WeChat
// Pay, which takes the refund, and answers with err, which wraps none of
// the client's sentinels: a backend other than the official client (a
// wrapper, a future one) that lets a stop or a timeout through as it came.
type bareErrBackend struct {
	payments.Backend
	err error
}

func (b bareErrBackend) CreateRefund(ctx context.Context, req wechatpay.RefundRequest) (*wechatpay.Refund, error) {
	if _, err := b.Backend.CreateRefund(ctx, req); err != nil {
		return nil, err
	}
	return nil, b.err
}

// TestRefundBareErrorIsPending: a refund create answered with an error that
// is not the client's refusal (a bare context.Canceled or DeadlineExceeded,
// an unrecognised error) may have reached WeChat Pay, so its outcome is
// unknown: the confirmation is pending, the order stays refunding and held
// (no second proposal sends a second refund under another number), and the
// sweep asks WeChat Pay by the same number and sends nothing more. Read as
// a refusal, the order was put back and the user told nothing was refunded
// while WeChat Pay had the refund.
func TestRefundBareErrorIsPending(t *testing.T) {
	for _, driver := range drivers(t) {
		for name, bare := range map[string]error{
			"canceled":     context.Canceled,
			"deadline":     context.DeadlineExceeded,
			"unrecognised": errors.New("connection reset by peer"),
			// A number WeChat Pay says is used holds a refund there: not
			// WeChat Pay's word that it made none.
			"number_used": fmt.Errorf("wechatpay refund: %w", wechatpay.ErrNumberUsed),
		} {
			t.Run(driver+"/"+name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(opts *payments.Options) {
					opts.Backend = bareErrBackend{Backend: opts.Backend, err: bare}
				}})
				o := paidOrder(t, e, "oUser-bare-err-"+name, 1)
				p := propose(t, e, o, 2000)
				confirmPendingThenSweep(t, e, o, p)
				if n := e.sim.RefundCount(o.OrderNo); n != 1 {
					t.Errorf("refunds at WeChat Pay: %d; want 1", n)
				}
			})
		}
	}
}
