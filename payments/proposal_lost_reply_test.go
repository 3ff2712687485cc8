package payments_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
)

// proposalReplyLost is a store whose first refund proposal write fails:
// written, and then answered as a write whose reply was lost (written), or
// refused before it was made. With unread, the first read of a proposal
// after that write (the read-back of what it did) fails too.
type proposalReplyLost struct {
	payments.Store
	written bool
	unread  bool
	failed  atomic.Bool
	read    atomic.Bool
}

// eachProposalWriteFailure runs f for each driver, with the first proposal
// write written and its reply lost, and refused (proposalReplyLost).
func eachProposalWriteFailure(t *testing.T, f func(t *testing.T, driver string, written bool)) {
	for _, driver := range drivers(t) {
		for _, written := range []bool{true, false} {
			name := driver + "/written, its reply lost"
			if !written {
				name = driver + "/refused"
			}
			t.Run(name, func(t *testing.T) { f(t, driver, written) })
		}
	}
}

func (s *proposalReplyLost) GetRefundProposal(ctx context.Context, id string) (*store.RefundProposal, error) {
	if s.unread && s.failed.Load() && !s.read.Swap(true) {
		return nil, fmt.Errorf("read refund proposal %s: %w", id, store.ErrUnavailable)
	}
	return s.Store.GetRefundProposal(ctx, id)
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
	eachProposalWriteFailure(t, func(t *testing.T, driver string, written bool) {
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

// TestProposalUnconfirmedIsToldAsMaybeStanding: request_refund whose
// proposal write the store did not confirm (written with its reply lost,
// or refused: the caller cannot tell) and whose read-back failed too.
// Answered "refunds are temporarily unavailable; nothing was changed", the
// model told the user no refund was asked for while the proposal, written,
// stood with its confirm button in the user's order and its refund.proposed
// audited. The answer says the outcome is unknown instead: the proposal
// may stand, nothing moves unless the user taps it, and asking again
// returns it. Nothing is sent before the user's own tap (a sweep sends
// nothing), the ask again names the same refund (never a second proposal,
// a second refund.proposed, or a second refund), and two taps refund once.
func TestProposalUnconfirmedIsToldAsMaybeStanding(t *testing.T) {
	eachProposalWriteFailure(t, func(t *testing.T, driver string, written bool) {
		var st *proposalReplyLost
		e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
			st = &proposalReplyLost{Store: o.Store, written: written, unread: true}
			o.Store = st
			o.ProposalEvents = audit.ProposalEvents
		}})
		ctx := context.Background()
		tools := newTools(e)
		o := paidOrder(t, e, "oUser-proposal-unconfirmed", 1)
		args := `{"order_no":"` + o.OrderNo + `","reason":"it broke"}`
		tc := call(t, tools, caller(o.User), "request_refund", args)
		if !st.read.Load() {
			t.Fatalf("result %s: the proposal was never read back; the test means its read-back failed", tc.out.Result)
		}
		msg, _ := tc.result["error"].(string)
		id, _ := tc.result["refund_id"].(string)
		if tc.result["status"] != "unknown" || id == "" || tc.out.Action != nil || !tc.out.Failed ||
			strings.Contains(msg, "nothing was changed") || !strings.Contains(msg, "may have been") || !strings.Contains(msg, "tap") {
			t.Errorf("result %s, action %s, failed %v; want status unknown naming the refund id: the proposal may stand, nothing moves before the user taps it, no button offered",
				tc.out.Result, tc.out.Action, tc.out.Failed)
		}
		open, err := e.svc.OpenRefunds(ctx, "shop-bot", o.User)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[written]; len(open) != want || written && open[0].RefundID != id {
			t.Fatalf("%d open proposals %+v; want %d, %s", len(open), open, want, id)
		}
		if _, err := e.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.sim.RefundCount(o.OrderNo); n != 0 || e.order(o.OrderNo).Status != store.StatusPaid {
			t.Fatalf("before the user's tap: %d refunds at WeChat Pay, order %s; want none, paid", n, e.order(o.OrderNo).Status)
		}

		again := call(t, tools, caller(o.User), "request_refund", args)
		if again.result["status"] != payments.RefundAwaitingConfirmation || again.result["refund_id"] != id || again.action["type"] != "refund_proposed" {
			t.Fatalf("asked again: %s %s; want proposal %s awaiting the user's confirmation", again.out.Result, again.out.Action, id)
		}
		if open, err = e.svc.OpenRefunds(ctx, "shop-bot", o.User); err != nil || len(open) != 1 {
			t.Fatalf("after the ask again: %d open proposals, %v; want 1", len(open), err)
		}
		for range 2 {
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, id); err != nil {
				t.Fatalf("tap: %v", err)
			}
		}
		if n := e.sim.RefundCount(o.OrderNo); n != 1 {
			t.Errorf("after two taps: %d refunds at WeChat Pay; want 1", n)
		}
		want := []string{"refund.confirmed/confirm", "refund.proposed/request_refund"}
		if got := refundAudit(t, e, id); !slices.Equal(got, want) {
			t.Errorf("audit of refund %s: %v; want %v (one proposal, one confirmation)", id, got, want)
		}
	})
}
