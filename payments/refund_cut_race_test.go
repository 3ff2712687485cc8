package payments_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// raceOutcome is what came of a race over an order a cut confirmation left
// reserved for proposal p: the tap's and the other step's answers, and
// what the user's request_refund got.
type raceOutcome struct {
	tap      *payments.RefundResult
	tapErr   error
	otherErr error
	next     *store.RefundProposal
	nextErr  error
}

// checkCutRace checks the money of a race over order no, whose proposal p
// a cut confirmation had reserved the order for: whatever won, WeChat Pay
// got one refund at most, never more than was paid, and p's refund never
// while the order was released (then a second proposal could refund the
// same money again). A new proposal the user's request_refund got is
// confirmed last, as the user would: it goes through only when p's did
// not.
func checkCutRace(t *testing.T, e *env, svc *payments.Service, i int, o *store.Order, p *store.RefundProposal, r raceOutcome) {
	t.Helper()
	ctx := context.Background()
	_, pSent := e.sim.Refund(p.OutRefundNo)
	got := e.order(o.OrderNo)
	switch {
	case pSent && r.tapErr == nil && r.tap.Status == payments.RefundProcessing &&
		got.Status == store.StatusRefunding && got.RefundReservedBy == p.RefundID:
	case !pSent && errors.Is(r.tapErr, store.ErrGone) && got.Status != store.StatusRefunding && got.RefundReservedBy == "":
	default:
		t.Fatalf("race %d: p sent %v, tap %v %v, other %v, order %s reserved by %q",
			i, pSent, resStatus(r.tap), r.tapErr, r.otherErr, got.Status, got.RefundReservedBy)
	}
	if r.next != nil && r.next.RefundID != p.RefundID {
		res, err := svc.ConfirmRefund(ctx, "shop-bot", o.User, r.next.RefundID)
		switch {
		case pSent && !errors.Is(err, payments.ErrRefundInProgress):
			t.Errorf("race %d: a second proposal made while p's refund went out, confirmed: %v %v; want refund_in_progress", i, resStatus(res), err)
		case !pSent && (err != nil || res.Status != payments.RefundProcessing):
			t.Errorf("race %d: the new proposal after p ended unused: %v %v; want it sent", i, resStatus(res), err)
		}
	} else if !pSent && !errors.Is(r.nextErr, payments.ErrRefundInProgress) && r.nextErr != nil {
		t.Errorf("race %d: request_refund: %v", i, r.nextErr)
	}
	var total int64
	for _, no := range []string{p.OutRefundNo, nextNo(r.next)} {
		if rf, ok := e.sim.Refund(no); ok && no != "" {
			total += rf.Amount.Refund
		}
	}
	if n := e.sim.RefundCount(o.OrderNo); n > 1 || total > o.AmountFen {
		t.Errorf("race %d: %d refunds at WeChat Pay of %d fen in all; want one at most, within the %d paid", i, n, total, o.AmountFen)
	}
}

func nextNo(p *store.RefundProposal) string {
	if p == nil {
		return ""
	}
	return p.OutRefundNo
}

// TestCutReservationReleaseRacesATap: replica A reserved the order for the
// user's confirmation of p and died before spending it. The user then taps
// p again on replica 1 (which goes on under A's reservation and sends the
// refund) while, on replica 2, they say no (CancelRefund frees the order at
// once) and ask for a refund anew (request_refund, which frees an order
// held for a proposal that ended unused). The freeing is a compare-and-set
// behind the proposal's single use: either the tap took p, its refund
// went out and the order stays held for it (the cancel is gone, no new
// proposal), or the cancel ended p, nothing of p was sent, the order is
// free and a new proposal goes through. Never two refunds, never p's
// refund with the order free. Both drivers. Retried: the store does not
// confirm the cancel that took p (its write on no replica in time); read
// back, it frees the order (cancelledAfterAll), racing the tap as a first
// cancel's freeing does, and one the read-back could not settle is sent
// again, whose retry frees it (cancelEnded).
func TestCutReservationReleaseRacesATap(t *testing.T) {
	for _, tc := range driverModes(t, "once", "retried") {
		t.Run(tc.name, func(t *testing.T) {
			e, svc2, _ := twoReplicas(t, tc.driver, nil, nil)
			ctx := context.Background()
			a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
			for i := range 16 {
				a := a
				if i > 0 {
					a = replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
				}
				o := paidOrder(t, e, fmt.Sprintf("oUser-cut-race-%d", i), 1)
				p := propose(t, e, o, 0)
				if _, err := a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("confirmation on A: %v; want it cut short", err)
				}
				canceller := svc2
				if tc.mode == "retried" {
					canceller = replicaOn(t, e, &unackedRefundSteps{fullStore: e.st, cancel: true})
				}
				var r raceOutcome
				var wg sync.WaitGroup
				wg.Go(func() { r.tap, r.tapErr = e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID) })
				wg.Go(func() {
					_, r.otherErr = canceller.CancelRefund(ctx, "shop-bot", o.User, p.RefundID)
					if errors.Is(r.otherErr, store.ErrUnavailable) {
						_, r.otherErr = canceller.CancelRefund(ctx, "shop-bot", o.User, p.RefundID)
					}
					r.next, _, r.nextErr = svc2.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "again"})
				})
				wg.Wait()
				if (r.otherErr == nil) == (r.tapErr == nil) {
					t.Errorf("race %d: tap %v and cancel %v; want exactly one to take p", i, r.tapErr, r.otherErr)
				}
				checkCutRace(t, e, e.svc, i, o, p, r)
			}
		})
	}
}

// TestCutReservationExpiryRacesATap: as TestCutReservationReleaseRacesATap,
// p having lapsed by replica 1's clock and not by replica 2's, 30 s behind:
// the user's request_refund on replica 1 ends p in the store and frees the
// order, while their tap on replica 2, which reads p live, goes on under A's
// reservation. Whichever reaches p first decides; never two refunds, never
// p's refund with the order free. Replicas with clocks apart share a
// Redis.
func TestCutReservationExpiryRacesATap(t *testing.T) {
	requireRedis(t)
	clk1, clk2 := realClocks()
	e, svc2 := edgeReplicas(t, "redis", clk1, clk2)
	ctx := context.Background()
	for i := range 12 {
		setTo(clk1, time.Now())
		setTo(clk2, time.Now())
		a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
		o := paidOrder(t, e, fmt.Sprintf("oUser-cut-expiry-race-%d", i), 1)
		p := propose(t, e, o, 0)
		if _, err := a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("confirmation on A: %v; want it cut short", err)
		}
		setTo(clk1, p.ExpiresAt.Add(time.Second))
		setTo(clk2, p.ExpiresAt.Add(-30*time.Second))
		var r raceOutcome
		var wg sync.WaitGroup
		wg.Go(func() { r.tap, r.tapErr = svc2.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID) })
		wg.Go(func() {
			r.next, _, r.nextErr = e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "again"})
		})
		wg.Wait()
		checkCutRace(t, e, svc2, i, o, p, r)
	}
	setTo(clk1, time.Now())
	setTo(clk2, time.Now())
}
