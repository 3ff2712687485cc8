package payments_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// beforeConsume runs hook once, right before a proposal is taken through
// it: another tap of the same proposal between this confirmation's
// reservation of the order and its taking of the user's word. lost: this
// taking is then answered with its reply lost, nothing written (the
// other tap took the word).
type beforeConsume struct {
	payments.Store
	once sync.Once
	hook func()
	lost bool
}

func (s *beforeConsume) ConsumeRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	s.once.Do(s.hook)
	if s.lost {
		return nil, failWrite(false, nil)
	}
	return s.Store.ConsumeRefundProposal(ctx, id, user, events...)
}

// sweepPastTakenGrace runs three sweeps two minutes apart: past takenGrace
// from the first, which any replica's sweep judges a refund taken and not
// recorded by.
func sweepPastTakenGrace(t *testing.T, e *env) {
	t.Helper()
	for range 3 {
		e.clock.Advance(2 * time.Minute)
		if _, err := e.svc.Sweep(context.Background()); err != nil {
			t.Errorf("sweep: %v", err)
		}
	}
}

// TestTapUnderALateTapsReservation: the user double-taps confirm. Tap B
// reserves the order and, before it takes the user's word, tap A goes on
// under B's reservation and takes it. B finds the proposal taken, notes so
// and is answered pending. The note is for a reservation nothing is sent
// under; what the sweeps past takenGrace do is A's refund's fate:
//   - A recorded and sent it, and WeChat Pay is making it: the sweeps
//     leave it alone (not undone, not told failed) and it settles once,
//     counted once;
//   - A died once it took the word, before recording the refund, so
//     nothing went to WeChat Pay: the sweep cannot tell this from a late
//     tap of a refund that ended before it
//     (TestLateTapOfARefusedRefundAfterAnotherIsNotSentBySweep) and sends
//     nothing; the order is free again and the user hears in their next
//     turn that the refund failed, never left pending.
func TestTapUnderALateTapsReservation(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, dies := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/A dies %v", driver, dies), func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, storeClock: true})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-late-tap-note", 1)
				p := propose(t, e, o, 1000)
				a := e.svc
				if dies {
					a = replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeRecord})
				}
				b := replicaOn(t, e, &beforeConsume{Store: e.st, hook: func() {
					res, err := a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
					if dies && !errors.Is(err, store.ErrUnavailable) || !dies && (err != nil || res.Status != payments.RefundProcessing) {
						t.Errorf("tap A under B's reservation: %v %v", resStatus(res), err)
					}
				}})
				if res, err := b.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundPending {
					t.Errorf("tap B: %v %v; want pending, A's", resStatus(res), err)
				}
				sweepPastTakenGrace(t, e)
				got := e.order(o.OrderNo)
				failed := func(o *store.Order) bool {
					return slices.ContainsFunc(o.RefundOutcomes, func(r store.RefundOutcome) bool {
						return r.OutRefundNo == p.OutRefundNo && r.Status == store.RefundFailed
					})
				}
				if dies {
					if _, sent := e.sim.Refund(p.OutRefundNo); sent || got.Status != store.StatusPaid || got.RefundReservedBy != "" || !failed(got) {
						t.Errorf("sent %v, order %s reserved by %q, outcomes %+v; want nothing sent, the order paid and the refund noted failed",
							sent, got.Status, got.RefundReservedBy, got.RefundOutcomes)
					}
					return
				}
				if got.Status != store.StatusRefunding || got.RefundReservedBy != p.RefundID {
					t.Fatalf("after the sweeps the order is %s reserved by %q; want refunding for A's refund, which WeChat Pay is making", got.Status, got.RefundReservedBy)
				}
				// WeChat Pay makes it; its notification, signed minutes
				// behind the clock the sweeps moved on, is refused, and a
				// sweep asks.
				if _, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil {
					t.Fatalf("refund completion: %v", err)
				}
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Errorf("sweep: %v", err)
				}
				got = e.order(o.OrderNo)
				if got.Status != store.StatusPartiallyRefunded || got.RefundedFen != 1000 || failed(got) {
					t.Errorf("order %s refunded %d (%s), outcomes %+v; want partially_refunded with 1000, nothing failed", got.Status, got.RefundedFen, got.ReviewReason, got.RefundOutcomes)
				}
				if n := e.sim.RefundCount(o.OrderNo); n != 1 {
					t.Errorf("%d refunds at WeChat Pay; want 1", n)
				}
			})
		}
	}
}
