package payments_test

import (
	"context"
	"errors"
	"testing"

	"github.com/paygate/paygate/payments"
)

// TestConfirmWhileAnotherRefundRunsSaysWhatWillBeLeft: the user was offered
// everything left of a paid 99.98 order, then asked for 10.00 instead and
// confirmed that; it is with WeChat Pay when they tap the first button. The
// tap was told "another refund is in progress; try again when it is done",
// and tapped again once it was done, to be told the 99.98 is more than the
// 89.98 left: a wait for nothing. The refusal says how much the refund in
// flight takes and what it leaves, so the user can be told at once this
// one cannot go through if it succeeds (it still wraps
// ErrRefundInProgress). A proposal that fits beside the one in flight is
// refused as before, "try again". Nothing is sent for either.
func TestConfirmWhileAnotherRefundRunsSaysWhatWillBeLeft(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-in-progress-left", 2) // 9998
			all := propose(t, e, o, 0)
			fits := propose(t, e, o, 2000)
			part := propose(t, e, o, 1000)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, part.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm 10.00: %v, %v", resStatus(res), err)
			}
			_, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, all.RefundID)
			var busy *payments.RefundInProgressError
			if !errors.Is(err, payments.ErrRefundInProgress) || !errors.As(err, &busy) {
				t.Fatalf("confirm of everything while 10.00 runs: %v; want ErrRefundInProgress saying what will be left", err)
			}
			if busy.InFlightFen != 1000 || busy.LeftAfterFen != 8998 || busy.AskedFen != 9998 {
				t.Errorf("refusal says %+v; want 1000 in flight, 8998 left after it, 9998 asked", busy)
			}
			_, err = e.svc.ConfirmRefund(ctx, "shop-bot", o.User, fits.RefundID)
			if !errors.Is(err, payments.ErrRefundInProgress) || errors.As(err, &busy) {
				t.Errorf("confirm of 20.00 while 10.00 runs: %v; want ErrRefundInProgress alone (it fits beside it)", err)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("%d refunds at WeChat Pay; want the 10.00 alone", n)
			}
			if d, err := e.sim.CompleteRefund(ctx, part.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("complete: %+v %v", d, err)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, all.RefundID); !errors.Is(err, payments.ErrRefundAmount) {
				t.Errorf("confirm of everything after 10.00 went: %v; want ErrRefundAmount, as the refusal foretold", err)
			}
		})
	}
}
