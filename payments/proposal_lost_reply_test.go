package payments_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// proposalReplyLost is a store whose first refund proposal write fails:
// written, and then answered as a write whose reply was lost (written), or
// refused before it was made.
type proposalReplyLost struct {
	payments.Store
	written bool
	failed  atomic.Bool
}

func (s *proposalReplyLost) PutRefundProposal(ctx context.Context, p *store.RefundProposal, ttl time.Duration, events ...store.Event) error {
	if s.failed.Swap(true) {
		return s.Store.PutRefundProposal(ctx, p, ttl, events...)
	}
	return failWrite(s.written, func() error { return s.Store.PutRefundProposal(ctx, p, ttl, events...) })
}

// TestProposalWrittenWithItsReplyLostIsAnswered: request_refund whose
// proposal the store wrote but did not confirm (a lost reply, a write not
// on a replica in time) answers that proposal, read back, as proposed: it
// is live, its confirm button is in the user's order list and its
// refund.proposed went to the merchant. Answered "refunds are temporarily
// unavailable; nothing was changed", the model told the user no refund
// was asked for while a button to confirm one stood. A write refused
// before it was made is still a failure, with nothing proposed.
func TestProposalWrittenWithItsReplyLostIsAnswered(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, written := range []bool{true, false} {
			name := driver + "/written, its reply lost"
			if !written {
				name = driver + "/refused"
			}
			t.Run(name, func(t *testing.T) {
				var proposed atomic.Int32
				e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
					o.Store = &proposalReplyLost{Store: o.Store, written: written}
					o.Proposed = func(context.Context, store.RefundProposal) { proposed.Add(1) }
				}})
				o := paidOrder(t, e, "oUser-proposal-lost-reply", 1)
				tc := call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"it broke"}`)
				open, err := e.svc.OpenRefunds(context.Background(), "shop-bot", o.User)
				if err != nil {
					t.Fatal(err)
				}
				if !written {
					if len(open) != 0 || tc.result["status"] != "failed" || tc.out.Action != nil {
						t.Errorf("refused: %s, action %s, %d open proposals; want failed, none", tc.out.Result, tc.out.Action, len(open))
					}
					return
				}
				if len(open) != 1 {
					t.Fatalf("%d open proposals; want the one written", len(open))
				}
				if tc.result["status"] != payments.RefundAwaitingConfirmation || tc.result["refund_id"] != open[0].RefundID || tc.action["type"] != "refund_proposed" || tc.out.Failed {
					t.Errorf("result %s, action %s, failed %v; want proposal %s awaiting the user's confirmation", tc.out.Result, tc.out.Action, tc.out.Failed, open[0].RefundID)
				}
				if n := proposed.Load(); n != 1 {
					t.Errorf("Proposed called %d times; want 1", n)
				}
			})
		}
	}
}
