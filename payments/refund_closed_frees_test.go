package payments_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestProposalRefusedWhileAnotherRanGoesThroughOnceItClosed: two open
// proposals of one paid 99.98 order, everything left (made first) and
// 60.00, confirmed by the user at once on two replicas of one store: one
// refund goes to WeChat Pay, the other confirmation is refused (another
// refund in progress, or more than is left), with nothing sent. WeChat Pay
// closes the refund that went: its amount is the order's again, so the
// refused proposal, confirmed again, goes through and WeChat Pay takes it;
// then the rest. refunded_fen counts the succeeded refunds only, never
// more than was paid, and the order is refunded when they sum to 99.98.
func TestProposalRefusedWhileAnotherRanGoesThroughOnceItClosed(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { opts = *o }})
			other := otherReplica(t, opts)
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-closed-frees", 2) // 9998 fen
			all := propose(t, e, o, 0)
			part, _, err := other.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "one of two", AmountFen: 6000})
			if err != nil {
				t.Fatal(err)
			}
			if all.AmountFen != 9998 {
				t.Fatalf("everything left proposed as %d fen; want 9998", all.AmountFen)
			}
			replicas := []*payments.Service{e.svc, other}
			ps := []*store.RefundProposal{all, part}
			errs := make([]error, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 2 {
				wg.Go(func() {
					<-start
					_, errs[i] = replicas[i].ConfirmRefund(ctx, "shop-bot", o.User, ps[i].RefundID)
				})
			}
			close(start)
			wg.Wait()
			won := -1
			for i, err := range errs {
				switch {
				case err == nil:
					won = i
				case errors.Is(err, payments.ErrRefundInProgress), errors.Is(err, payments.ErrRefundAmount):
				default:
					t.Fatalf("confirm %d: %v; want it sent, or refused as in progress or above what is left", i, err)
				}
			}
			if won < 0 || errs[1-won] == nil || e.sim.RefundCount(o.OrderNo) != 1 {
				t.Fatalf("confirmations %v, %d refunds at WeChat Pay; want one sent", errs, e.sim.RefundCount(o.OrderNo))
			}
			lost := 1 - won
			if d, err := e.sim.CloseRefund(ctx, ps[won].OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("close: %+v %v", d, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPaid || got.RefundedFen != 0 {
				t.Fatalf("after the close: %s refunded_fen %d; want paid, 0", got.Status, got.RefundedFen)
			}
			res, err := replicas[lost].ConfirmRefund(ctx, "shop-bot", o.User, ps[lost].RefundID)
			if err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("the refused proposal confirmed again after the close: %v, %v; want it sent", resStatus(res), err)
			}
			if d, err := e.sim.CompleteRefund(ctx, ps[lost].OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("complete: %+v %v", d, err)
			}
			want := ps[lost].AmountFen
			if left := o.AmountFen - want; left > 0 {
				rest := propose(t, e, e.order(o.OrderNo), 0)
				if rest.AmountFen != left {
					t.Fatalf("the rest proposed as %d fen; want %d", rest.AmountFen, left)
				}
				if _, err := other.ConfirmRefund(ctx, "shop-bot", o.User, rest.RefundID); err != nil {
					t.Fatalf("the rest: %v", err)
				}
				if d, err := e.sim.CompleteRefund(ctx, rest.OutRefundNo); err != nil || !d.Acked {
					t.Fatalf("complete the rest: %+v %v", d, err)
				}
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusRefunded || got.RefundedFen != o.AmountFen {
				t.Errorf("order %s refunded_fen %d; want refunded, %d", got.Status, got.RefundedFen, o.AmountFen)
			}
			for _, rq := range e.sim.Requests() {
				if rq.Op == "refund" && rq.Status/100 != 2 {
					t.Errorf("a refund request refused by wechat pay: %+v", rq)
				}
			}
		})
	}
}
