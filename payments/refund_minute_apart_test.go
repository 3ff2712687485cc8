package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestSecondRefundWithinTheMinuteIsSentByTheSweep: WeChat Pay takes the
// refund requests of one order a minute apart (the simulator's
// RefundInterval) and answers a new one sooner 429 FREQUENCY_LIMITED,
// nothing made. A paid 99.98 order: 10.00 refunded and succeeded, then
// 20.00 confirmed within the minute. The confirmation is not told it was
// refused (nothing refunded, the user's word spent) nor put back: it is
// pending, the order refunding for it; once the minute is over the sweep
// asks WeChat Pay, finds no such refund, and sends it again under the same
// out_refund_no, which WeChat Pay takes: refunded_fen 3000 once it
// succeeds. On both drivers.
func TestSecondRefundWithinTheMinuteIsSentByTheSweep(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			wx := &offsetClock{} // WeChat Pay's clock, moved with the service's
			e := newEnv(t, envOptions{driver: driver, sim: wxsim.Options{RefundInterval: time.Minute, Now: wx.Now}})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-minute-apart", 2) // 9998
			first := propose(t, e, o, 1000)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, first.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm 10.00: %v, %v", resStatus(res), err)
			}
			if d, err := e.sim.CompleteRefund(ctx, first.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("10.00 succeeded: %+v %v", d, err)
			}
			second := propose(t, e, e.order(o.OrderNo), 2000)
			res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, second.RefundID)
			if err != nil || res.Status != payments.RefundPending {
				t.Fatalf("confirm 20.00 within the minute: %v, %v; want pending (WeChat Pay asked for a minute between them)", resStatus(res), err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || got.RefundReservedBy != second.RefundID || got.RefundedFen != 1000 {
				t.Fatalf("after the 429: %s reserved by %q refunded_fen %d; want refunding for the 20.00, 1000", got.Status, got.RefundReservedBy, got.RefundedFen)
			}
			if _, ok := e.sim.Refund(second.OutRefundNo); ok {
				t.Fatalf("wechat pay made the 20.00 within the minute")
			}
			e.clock.Advance(2 * time.Minute)
			wx.Advance(2 * time.Minute)
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			r, ok := e.sim.Refund(second.OutRefundNo)
			if !ok || r.Amount.Refund != 2000 {
				t.Fatalf("after the minute, the sweep: wechat pay has %+v (known %v); want the 20.00 sent again under its number", r.Amount, ok)
			}
			if d, err := e.sim.CompleteRefund(ctx, second.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("20.00 succeeded: %+v %v", d, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPartiallyRefunded || got.RefundedFen != 3000 {
				t.Errorf("order %s refunded_fen %d; want partially_refunded 3000", got.Status, got.RefundedFen)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 2 {
				t.Errorf("%d refunds at WeChat Pay; want 2", n)
			}
		})
	}
}
