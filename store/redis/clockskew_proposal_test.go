package redis

import (
	"context"
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
