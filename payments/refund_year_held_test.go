package payments_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestHeldRefundConfirmedPastTheYearSendsNothing: a confirmation made in the
// last minutes of the order's year reserved the order and was cut short
// (its replica died before spending the user's word); the user's tap after
// the year ended went on under that reservation and sent the refund, which
// WeChat Pay takes no refund of (交易时间超过一年): the user heard only
// "WeChat Pay refused the refund". The tap refuses it itself, as a tap on
// an order not held does, and sends nothing.
func TestHeldRefundConfirmedPastTheYearSendsNothing(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
			o := paidOrder(t, e, "oUser-refund-year-held", 1)
			end := o.PaidAt.In(cst).AddDate(1, 0, 0)
			e.clock.Advance(end.Add(-5 * time.Minute).Sub(e.clock.Now()))
			p := propose(t, e, o, 0)
			if _, err := a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("confirmation on A: %v; want it cut short", err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || got.RefundReservedBy != p.RefundID {
				t.Fatalf("after A died: order %s reserved by %q; want refunding, held for %s", got.Status, got.RefundReservedBy, p.RefundID)
			}
			e.clock.Advance(6 * time.Minute)

			_, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if !errors.Is(err, payments.ErrRefundWindowPassed) {
				t.Errorf("tap a minute past the year under the reservation: %v; want ErrRefundWindowPassed", err)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 0 {
				t.Errorf("refunds sent to WeChat Pay past the order's year: %d; want 0", n)
			}
		})
	}
}
