package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// TestSkewedReplicasExpireAProposalOnTheServersClock: a replica whose
// clock runs ahead finds a proposal's ExpiresAt (the proposing replica's
// clock) past and asks the store to end it (payments' proposalFate); the
// store judges on the server's clock, where the proposal's ttl has not run
// out, so it stays open and the user's confirmation is still taken.
func TestSkewedReplicasExpireAProposalOnTheServersClock(t *testing.T) {
	ctx := context.Background()
	const ttl = 30 * time.Second
	_, behind, ahead := skewedReplicas(t)
	p := &store.RefundProposal{RefundID: "RP-EX", OrderNo: "O-EX", Client: "shop", User: "u1", AmountFen: 100}
	if err := behind.PutRefundProposal(ctx, p, ttl); err != nil {
		t.Fatal(err)
	}
	if !ahead.now().After(p.ExpiresAt) {
		t.Fatalf("the replica ahead reads %v, not past ExpiresAt %v", ahead.now(), p.ExpiresAt)
	}
	if _, state, err := ahead.ExpireRefundProposal(ctx, "RP-EX"); err != nil || state != store.ProposalOpen {
		t.Errorf("ExpireRefundProposal on a replica %v ahead, within the %v ttl: %v, %v; want open", replicaSkew, ttl, state, err)
	}
	if _, err := behind.ConsumeRefundProposal(ctx, "RP-EX", "u1"); err != nil {
		t.Errorf("ConsumeRefundProposal within the ttl after the replica ahead asked to end it: %v", err)
	}
}

// TestSkewedReplicasHoldAStampedProposalToItsTTL: a proposal's expiry is
// stamped by its proposer (store.ProposalExpiry) and judged on the server's
// clock by every replica. A stamp from a clock ahead of the storing
// replica's cannot make the proposal outlive the ttl there (nor on the
// replica behind), and a stamp the replica ahead makes with its own clock
// is the ttl on the server's clock for the replica behind too.
func TestSkewedReplicasHoldAStampedProposalToItsTTL(t *testing.T) {
	ctx := context.Background()
	const ttl = 2 * time.Minute
	clock, behind, ahead := skewedReplicas(t)
	put := func(on *Store, id string, stamp time.Time) {
		t.Helper()
		p := &store.RefundProposal{RefundID: id, OrderNo: "O-" + id, Client: "shop", User: "u1", AmountFen: 100, ExpiresAt: stamp}
		if err := on.PutRefundProposal(ctx, p, ttl); err != nil {
			t.Fatal(err)
		}
	}
	put(behind, "RP-FAST", ahead.now().Add(ttl)) // a stamp replicaSkew later than behind's latest
	put(ahead, "RP-AHEAD", ahead.now().Add(ttl)) // ahead's own
	live := func(when string, want bool) {
		t.Helper()
		for _, id := range []string{"RP-FAST", "RP-AHEAD"} {
			for name, on := range map[string]*Store{"behind": behind, "ahead": ahead} {
				_, err := on.GetRefundProposal(ctx, id)
				if got := err == nil; got != want || err != nil && !errors.Is(err, store.ErrGone) {
					t.Errorf("%s: %s read on the replica %s: %v; want live %v", when, id, name, err, want)
				}
			}
		}
	}
	clock.Advance(ttl - time.Second)
	live("a second before the ttl ran out", true)
	clock.Advance(2 * time.Second)
	live("a second after the ttl ran out", false)
}
