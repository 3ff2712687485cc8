package payments_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestLateTapOfARefusedRefundAfterAnotherIsNotSentBySweep: the user
// double-taps confirm. Tap B reads the proposal while it is live; tap A
// takes it and WeChat Pay refuses its refund (the merchant's balance is
// short), the user told so; then another refund of the order is confirmed
// and settles, its record replacing A's (the record is one per order).
// Only then does B reserve the order for the proposal, and find it used.
// Nothing may be sent under B's reservation: the user was told that
// refund failed and never confirmed it again. The sweep, which sends a
// refund taken and left unrecorded, must not take B's reservation for one;
// nor when B's read of what became of the proposal, or of the refund's
// record, as it found the proposal gone failed (a store's blip).
func TestLateTapOfARefusedRefundAfterAnotherIsNotSentBySweep(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, blip := range []string{"", "refund-proposal", "refund-inflight:"} {
			t.Run(fmt.Sprintf("%s/blip %s", driver, blip), func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, storeClock: true})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-late-refused", 1) // 49.99
				p := propose(t, e, o, 1000)
				late := &onceGetOrder{Store: e.st, hook: func() {
					e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultNotEnough})
					if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, payments.ErrRefundFailed) {
						t.Errorf("tap A: %v; want the refund refused", err)
					}
					q := propose(t, e, e.order(o.OrderNo), 2000)
					if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, q.RefundID); err != nil {
						t.Errorf("the other refund: %v", err)
					}
					if d, err := e.sim.CompleteRefund(ctx, q.OutRefundNo); err != nil || !d.Acked {
						t.Errorf("the other refund's notification: %+v %v", d, err)
					}
				}}
				var st payments.Store = late
				if blip != "" {
					st = &readBlip{Store: late, what: blip}
				}
				b := replicaOn(t, e, st)
				if res, err := b.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err == nil && res.Status != payments.RefundPending {
					t.Errorf("tap B: %+v; want nothing sent", res)
				}
				sweepPastTakenGrace(t, e)
				if _, found := e.sim.Refund(p.OutRefundNo); found {
					t.Errorf("the refund WeChat Pay refused, of which the user was told, was sent again by the sweep")
				}
				got := e.order(o.OrderNo)
				if got.Status != store.StatusPartiallyRefunded || got.RefundedFen != 2000 {
					t.Errorf("order %s refunded %d (%s); want partially_refunded with 2000, the other refund's", got.Status, got.RefundedFen, got.ReviewReason)
				}
				// Tap B answered pending: the user's next turn tells them it
				// failed after all.
				if !slices.ContainsFunc(got.RefundOutcomes, func(r store.RefundOutcome) bool {
					return r.OutRefundNo == p.OutRefundNo && r.Status == store.RefundFailed
				}) {
					t.Errorf("refund outcomes %+v; want %s failed", got.RefundOutcomes, p.OutRefundNo)
				}
			})
		}
	}
}

// readBlip fails the first read of what (a refund record's key prefix,
// or "refund-proposal" for a proposal's state) after a proposal was found
// gone through it: the store's blip as the confirmation that found it so
// looks at what took it.
type readBlip struct {
	payments.Store
	what         string
	gone, failed atomic.Bool
}

func (s *readBlip) ConsumeRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	p, err := s.Store.ConsumeRefundProposal(ctx, id, user, events...)
	s.gone.Store(errors.Is(err, store.ErrGone))
	return p, err
}

func (s *readBlip) blip(what string) error {
	if s.gone.Load() && strings.HasPrefix(what, s.what) && s.failed.CompareAndSwap(false, true) {
		return fmt.Errorf("read %s: %w", what, store.ErrUnavailable)
	}
	return nil
}

func (s *readBlip) RefundProposalState(ctx context.Context, id string) (*store.RefundProposal, store.ProposalState, error) {
	if err := s.blip("refund-proposal"); err != nil {
		return nil, "", err
	}
	return s.Store.RefundProposalState(ctx, id)
}

func (s *readBlip) GetExchange(ctx context.Context, key string) ([]byte, error) {
	if err := s.blip(key); err != nil {
		return nil, err
	}
	return s.Store.GetExchange(ctx, key)
}
