package payments_test

import (
	"context"
	"testing"

	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestRefundAnswerUnverifiedStaysPending: WeChat Pay makes the refund and
// its 200 answer fails signature verification. The answer is never taken
// as success nor as a refusal: the confirmation is pending, the order stays
// refunding (no second proposal, no refund under another number), the
// sweep's verified query by the same out_refund_no finds the refund and
// sends nothing again, and its notification settles the order with one
// refund at WeChat Pay.
func TestRefundAnswerUnverifiedStaysPending(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-refund-unverified", 1) // 49.99
			p := propose(t, e, o, 2000)
			e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultBadResponseSignature})
			confirmPendingThenSweep(t, e, o, p)
			if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("refund notification: %+v %v", d, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPartiallyRefunded || got.RefundedFen != 2000 {
				t.Errorf("after the notification: %s %d; want partially_refunded 2000", got.Status, got.RefundedFen)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("refunds at WeChat Pay: %d; want 1", n)
			}
			creates := 0
			for _, l := range e.sim.Requests() {
				if l.Op == "refund" {
					creates++
					if l.OutRefundNo != p.OutRefundNo {
						t.Errorf("a refund request under another number: %s", l.OutRefundNo)
					}
				}
			}
			if creates != 1 {
				t.Errorf("refund creates sent: %d; want 1 (the sweep found it by query)", creates)
			}
		})
	}
}
