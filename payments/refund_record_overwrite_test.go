package payments_test

import (
	"context"
	"errors"
	"testing"

	"github.com/paygate/paygate/store"
)

// TestSweepRecordDoesNotOverwriteALaterRefund: with Redis replicas, a
// confirmation spent the user's word for half an order and recorded
// nothing; past takenGrace a sweep reads the order's refund record (none)
// and is about to record the refund itself. Meanwhile the stalled
// confirmation goes on after all (its refund sent and settled) and the
// user confirms a second refund of the rest, recorded and sent. The
// sweep's record of the first refund, at a version the order has left,
// must not replace the second refund's: with it replaced, the second
// refund's SUCCESS found no record of it and sent the order to
// needs_review although its money went back as asked.
func TestSweepRecordDoesNotOverwriteALaterRefund(t *testing.T) {
	e := newEnv(t, envOptions{driver: "redis", storeClock: true})
	ctx := context.Background()
	killed := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeRecord})
	o := paidOrder(t, e, "oUser-record-later", 1)
	p := propose(t, e, o, o.AmountFen/2)
	if _, err := killed.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("confirmation of the killed replica: %v; want it cut", err)
	}
	held := e.order(o.OrderNo)
	var later *store.RefundProposal
	sweeper := replicaOn(t, e, &beforeRecord{Store: e.st, hook: func() {
		// The stalled confirmation goes on: it records its refund, sends
		// it, and WeChat Pay settles it.
		confirmationGoesOn(ctx, t, e, o, held, p)
		// The user confirms the refund of the rest once the first settles.
		later = settleThenConfirmRest(ctx, t, e, o, p)
	}})

	sweepTwice(ctx, t, e, sweeper)
	if later == nil {
		t.Fatal("the sweep recorded no refund: the hook never ran")
	}
	settleSecondAndCheckRefunded(ctx, t, e, o, p, later, "")
}

// settleThenConfirmRest has WeChat Pay settle refund p of order o (its
// notification acknowledged), then the user confirm a refund of the rest
// of o: recorded and sent, WeChat Pay processing it. It returns that
// second refund.
func settleThenConfirmRest(ctx context.Context, t *testing.T, e *env, o *store.Order, p *store.RefundProposal) *store.RefundProposal {
	t.Helper()
	if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
		t.Fatalf("first refund's notification: %+v %v", d, err)
	}
	later := propose(t, e, e.order(o.OrderNo), 0)
	if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, later.RefundID); err != nil {
		t.Fatalf("second refund's confirmation: %v", err)
	}
	return later
}

// settleSecondAndCheckRefunded has WeChat Pay settle the second refund,
// later, and checks that order o is then refunded in full and that each of
// p and later was asked of WeChat Pay once and nothing else; firstBy says,
// in the error, who asked for p.
func settleSecondAndCheckRefunded(ctx context.Context, t *testing.T, e *env, o *store.Order, p, later *store.RefundProposal, firstBy string) {
	t.Helper()
	if d, err := e.sim.CompleteRefund(ctx, later.OutRefundNo); err != nil || !d.Acked {
		t.Fatalf("second refund's notification: %+v %v", d, err)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusRefunded || got.RefundedFen != o.AmountFen {
		t.Errorf("order %s, %d fen refunded (%s); want refunded, %d", got.Status, got.RefundedFen, got.ReviewReason, o.AmountFen)
	}
	asked := map[string]int{}
	for _, l := range e.sim.Requests() {
		if l.Op == "refund" {
			asked[l.OutRefundNo]++
		}
	}
	if asked[p.OutRefundNo] != 1 || asked[later.OutRefundNo] != 1 || len(asked) != 2 {
		t.Errorf("refunds asked of WeChat Pay: %v; want each of %s%s and %s once", asked, p.OutRefundNo, firstBy, later.OutRefundNo)
	}
}
