package payments_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// stepHook is a store that runs a function, once, just before a
// confirmation spends a proposal (ConsumeRefundProposal) or a cancel ends
// one (CancelRefundProposal): the other answer of the user lands exactly
// there, on another replica.
type stepHook struct {
	payments.Store
	beforeConsume, beforeCancel func()
	once                        sync.Once
}

func (h *stepHook) ConsumeRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	if h.beforeConsume != nil {
		h.once.Do(h.beforeConsume)
	}
	return h.Store.ConsumeRefundProposal(ctx, id, user, events...)
}

func (h *stepHook) CancelRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	if h.beforeCancel != nil {
		h.once.Do(h.beforeCancel)
	}
	return h.Store.CancelRefundProposal(ctx, id, user, events...)
}

// TestConfirmAndCancelInterleaved: the user's "yes" and "no" to one
// proposal reach two replicas, each answer landing inside the other's
// steps. A cancel taken between a confirmation's reservation of the order
// and its spending of the proposal wins: it is answered cancelled, the
// confirmation is told the proposal is gone, nothing goes to WeChat Pay
// and the order is paid and unreserved, refundable in full by a new
// proposal. A confirmation taken between a cancel's read of the proposal
// and its write wins: its refund is sent once, and the cancel is told the
// refund was already confirmed, not that it was cancelled.
func TestConfirmAndCancelInterleaved(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, cancelInside := range []bool{true, false} {
			name := "confirm inside the cancel"
			if cancelInside {
				name = "cancel inside the confirmation"
			}
			t.Run(driver+"/"+name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-yes-no-"+fmt.Sprint(cancelInside), 1) // 49.99
				p := propose(t, e, o, 0)
				hook := &stepHook{Store: e.st}
				a := replicaOn(t, e, hook)
				var inner error
				var cancelled *store.RefundProposal
				var res *payments.RefundResult
				var outer error
				if cancelInside {
					hook.beforeConsume = func() { cancelled, inner = e.svc.CancelRefund(ctx, "shop-bot", o.User, p.RefundID) }
					res, outer = a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				} else {
					hook.beforeCancel = func() { res, inner = e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID) }
					cancelled, outer = a.CancelRefund(ctx, "shop-bot", o.User, p.RefundID)
				}
				got := e.order(o.OrderNo)
				if cancelInside {
					if inner != nil || cancelled == nil || cancelled.RefundID != p.RefundID {
						t.Fatalf("cancel inside the confirmation: %+v, %v; want it cancelled", cancelled, inner)
					}
					if !errors.Is(outer, store.ErrGone) {
						t.Errorf("confirmation that lost to the cancel: %+v, %v; want store.ErrGone", res, outer)
					}
					if n := e.sim.RefundCount(o.OrderNo); n != 0 || got.Status != store.StatusPaid || got.RefundReservedBy != "" {
						t.Fatalf("after the cancel won: %d refunds at WeChat Pay, order %s reserved by %q; want none, paid, unreserved", n, got.Status, got.RefundReservedBy)
					}
					again := propose(t, e, o, 0)
					if again.RefundID == p.RefundID || again.AmountFen != o.AmountFen {
						t.Fatalf("proposal after the cancel: %s of %d; want a new one of %d", again.RefundID, again.AmountFen, o.AmountFen)
					}
					if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, again.RefundID); err != nil {
						t.Fatalf("confirm of the new proposal: %v", err)
					}
					if rf, ok := e.sim.Refund(again.OutRefundNo); !ok || rf.Amount.Refund != o.AmountFen || e.sim.RefundCount(o.OrderNo) != 1 {
						t.Errorf("new proposal's refund %+v (found %v), %d at WeChat Pay; want one of %d", rf, ok, e.sim.RefundCount(o.OrderNo), o.AmountFen)
					}
					return
				}
				if inner != nil || res == nil || res.Status != payments.RefundProcessing {
					t.Fatalf("confirmation inside the cancel: %+v, %v; want it sent, processing", res, inner)
				}
				var already *payments.AlreadyConfirmedError
				if !errors.As(outer, &already) || already.Result.Proposal.RefundID != p.RefundID {
					t.Errorf("cancel that lost to the confirmation: %+v, %v; want *AlreadyConfirmedError", cancelled, outer)
				}
				if rf, ok := e.sim.Refund(p.OutRefundNo); !ok || e.sim.RefundCount(o.OrderNo) != 1 || rf.Amount.Refund != o.AmountFen || got.Status != store.StatusRefunding {
					t.Errorf("after the confirmation won: refund %+v (found %v), %d at WeChat Pay, order %s; want one of %d, refunding", rf, ok, e.sim.RefundCount(o.OrderNo), got.Status, o.AmountFen)
				}
			})
		}
	}
}

// TestConfirmAndCancelAtOnceOnTwoReplicas: the user's "yes" and "no" to one
// proposal race on two replicas of one store (on Redis, each its own
// client), round after round. Never
// both are answered as done; a cancel answered cancelled leaves nothing at
// WeChat Pay and the order paid and unreserved; a confirmation answered
// sent has its one refund there, and the cancel is told it was confirmed.
func TestConfirmAndCancelAtOnceOnTwoReplicas(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e, other, _ := twoReplicas(t, driver, nil, nil) // on Redis, two clients
			ctx := context.Background()
			for r := range 8 {
				o := paidOrder(t, e, fmt.Sprintf("oUser-yes-no-race-%d", r), 1)
				p := propose(t, e, o, 0)
				confirmOn, cancelOn := e.svc, other
				if r%2 == 1 {
					confirmOn, cancelOn = other, e.svc
				}
				var cerr, xerr error
				var wg sync.WaitGroup
				start := make(chan struct{})
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					_, cerr = confirmOn.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				}()
				go func() {
					defer wg.Done()
					<-start
					_, xerr = cancelOn.CancelRefund(ctx, "shop-bot", o.User, p.RefundID)
				}()
				close(start)
				wg.Wait()
				var already *payments.AlreadyConfirmedError
				got, sent := e.order(o.OrderNo), e.sim.RefundCount(o.OrderNo)
				switch {
				case cerr == nil && xerr == nil:
					t.Fatalf("round %d: both the confirmation and the cancel were answered as done", r)
				case xerr == nil:
					if !errors.Is(cerr, store.ErrGone) || sent != 0 || got.Status != store.StatusPaid || got.RefundReservedBy != "" {
						t.Errorf("round %d: cancelled; confirmation %v, %d refunds at WeChat Pay, order %s reserved by %q; want ErrGone, none, paid, unreserved",
							r, cerr, sent, got.Status, got.RefundReservedBy)
					}
				case cerr == nil:
					if !errors.As(xerr, &already) || sent != 1 || got.Status != store.StatusRefunding {
						t.Errorf("round %d: confirmed; cancel %v, %d refunds at WeChat Pay, order %s; want *AlreadyConfirmedError, 1, refunding", r, xerr, sent, got.Status)
					}
				default:
					t.Fatalf("round %d: neither won: confirm %v, cancel %v", r, cerr, xerr)
				}
			}
		})
	}
}
