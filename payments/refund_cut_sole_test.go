package payments_test

import (
	"context"
	"slices"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestCrashAfterTheConfirmationWasSpentSendsTheRefund: with the embedded
// store, paygate is killed as a user's refund confirmation has spent the
// proposal and not yet recorded the refund (nothing went to WeChat Pay).
// The process that opens the file next is its only writer: once its sweep
// holds the order as its own, no confirmation is on its way to record or
// send that refund, and the user's word was taken. The sweep records and
// sends it under its one out_refund_no, at once; the user's tap again is
// told it is on its way, and it ends refunded, sent once. Replicas, which
// cannot tell a dead confirmation from a slow one, send it past
// takenGrace (TestReservationLeftByACutConfirmation).
func TestCrashAfterTheConfirmationWasSpentSendsTheRefund(t *testing.T) {
	e := newEnv(t, envOptions{driver: "embedded", storeClock: true, service: func(o *payments.Options) { o.SoleWriter = true }})
	ctx := context.Background()
	o, p := spentAndCut(t, e, "oUser-cut-sole")
	if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || got.RefundReservedBy != p.RefundID {
		t.Fatalf("after the kill the order is %s reserved by %q; want refunding, reserved by %s", got.Status, got.RefundReservedBy, p.RefundID)
	}

	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if r, ok := e.sim.Refund(p.OutRefundNo); !ok || r.Status != "PROCESSING" {
		t.Fatalf("after the restart's sweep WeChat Pay holds refund %s: %+v (found %v); want it sent", p.OutRefundNo, r, ok)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
		t.Fatalf("after the sweep the order is %s (%s); want refunding", got.Status, got.ReviewReason)
	}
	res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
	if err != nil || res.Status != payments.RefundPending {
		t.Fatalf("tap again: %+v %v; want the refund pending", res, err)
	}
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil {
		t.Fatal(err)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusRefunded || got.RefundedFen != o.AmountFen {
		t.Fatalf("after the refund's notification the order is %s, %d fen refunded; want refunded, %d", got.Status, got.RefundedFen, o.AmountFen)
	}
	if n := e.sim.RefundCount(o.OrderNo); n != 1 {
		t.Fatalf("WeChat Pay holds %d refunds of %s; want 1", n, o.OrderNo)
	}
}

// TestSweepsFirstSendRefusedPutsTheOrderBack: the sweep sends the refund a
// killed confirmation took and never sent (its first send: no earlier one
// can have reached WeChat Pay), and WeChat Pay refuses it (NOT_ENOUGH).
// Nothing was refunded: the order is paid again and the refund's outcome
// kept failed for the user's next turn, not sent to review as a refused
// resend after a lost answer is (TestResendRefusedAfterAnUnknownSendKeepsTheRefund).
// On both drivers, each as paygate runs it: the embedded store's sole
// writer sends at once, Redis replicas past takenGrace (sendTaken either
// way), and a first send's refusal means the same on both.
func TestSweepsFirstSendRefusedPutsTheOrderBack(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			sole := driver == "embedded" // serve's SoleWriter
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) { o.SoleWriter = sole }})
			ctx := context.Background()
			o, p := spentAndCut(t, e, "oUser-cut-sole-refused")
			e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultNotEnough})
			if sole {
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Logf("sweep: %v", err)
				}
			} else {
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
				if slices.ContainsFunc(e.sim.Requests(), func(l wxsim.RequestLog) bool { return l.Op == "refund" }) {
					t.Fatalf("the first sweep sent refund %s; want it left to the confirmation that took it for takenGrace", p.OutRefundNo)
				}
				sweepPastTakenGrace(t, e)
			}
			if !slices.ContainsFunc(e.sim.Requests(), func(l wxsim.RequestLog) bool { return l.Op == "refund" && l.OutRefundNo == p.OutRefundNo }) {
				t.Fatalf("refund %s was never sent; the test means the sweep's first send refused", p.OutRefundNo)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusPaid || got.RefundReservedBy != "" || !slices.ContainsFunc(got.RefundOutcomes, func(r store.RefundOutcome) bool {
				return r.OutRefundNo == p.OutRefundNo && r.Status == store.RefundFailed
			}) {
				t.Errorf("after the sweep's refused first send: order %s reserved by %q, outcomes %+v, review reason %q; want paid, the refund failed",
					got.Status, got.RefundReservedBy, got.RefundOutcomes, got.ReviewReason)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 0 {
				t.Errorf("WeChat Pay holds %d refunds of %s; want 0", n, o.OrderNo)
			}
		})
	}
}
