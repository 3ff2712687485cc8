package payments_test

import (
	"context"
	"errors"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestRequestRefundAgainAfterACutConfirmation: replica A reserves the order
// for the user's confirmation and dies before it spends it: nothing went to
// WeChat Pay, and the proposal is open. The user, who saw nothing happen,
// asks the bot again. request_refund of that amount returns that open
// proposal, as the README promises of a proposal open for the same amount,
// so the user gets the button again and the tap goes through. It answered
// refund_in_progress, "a refund of this order is already being processed;
// tell the user to wait for it": the user waited for a refund nobody had
// sent, until the proposal expired and the sweep undid the reservation. Of
// another amount, the order's reservation stands (refund_in_progress).
func TestRequestRefundAgainAfterACutConfirmation(t *testing.T) {
	tests := []struct {
		name   string
		amount string // request_refund's amount ("": everything left)
		same   bool   // the open proposal is returned
	}{
		{name: "everything left", amount: "", same: true},
		{name: "the same amount", amount: `,"amount":"39.99"`, same: true},
		{name: "another amount", amount: `,"amount":"10.00"`},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, storeClock: true})
				ctx := context.Background()
				o, p := refundedThenCut(t, e, "oUser-cut-again")
				if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || got.RefundReservedBy != p.RefundID {
					t.Fatalf("after A died: order %s reserved by %q; want refunding, reserved by %s", got.Status, got.RefundReservedBy, p.RefundID)
				}
				tc := call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"still not refunded"`+tt.amount+`}`)
				if !tt.same {
					if tc.result["status"] != "refund_in_progress" || tc.action != nil {
						t.Errorf("request_refund of another amount: %s; want refund_in_progress", tc.out.Result)
					}
					return
				}
				if tc.result["status"] != "awaiting_user_confirmation" || tc.result["refund_id"] != p.RefundID || tc.action["type"] != "refund_proposed" {
					t.Fatalf("request_refund again: %s %s; want the open proposal %s, awaiting the user's confirmation", tc.out.Result, tc.out.Action, p.RefundID)
				}
				res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				if err != nil || res.Status != payments.RefundProcessing {
					t.Fatalf("tap: %v, %v; want processing", resStatus(res), err)
				}
				if rf, ok := e.sim.Refund(p.OutRefundNo); !ok || rf.Amount.Refund != 3999 {
					t.Errorf("refund at WeChat Pay: %+v %v; want 3999 fen under %s", rf, ok, p.OutRefundNo)
				}
				if n := e.sim.RefundCount(o.OrderNo); n != 2 {
					t.Errorf("refunds at WeChat Pay: %d; want 2", n)
				}
			})
		}
	}
}

// refundedThenCut pays user an order of 49.99, refunds 10.00 of it, and
// has the confirmation of a second proposal, of the 39.99 left, cut short
// on a replica before it spent the proposal: the order is reserved for
// that proposal, and nothing of it went to WeChat Pay.
func refundedThenCut(t *testing.T, e *env, user string) (*store.Order, *store.RefundProposal) {
	t.Helper()
	ctx := context.Background()
	a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
	o := paidOrder(t, e, user, 1) // 49.99
	first := propose(t, e, o, 1000)
	if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, first.RefundID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.CompleteRefund(ctx, first.OutRefundNo); err != nil {
		t.Fatal(err)
	}
	p := propose(t, e, o, 0) // 39.99, what is left
	if _, err := a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("confirmation on A: %v; want it cut short", err)
	}
	return o, p
}
