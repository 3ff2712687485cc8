package redis

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// TestSkewedReplicasShareWindows: every lease, claim, mark and window one
// replica takes for a ttl holds, on a replica whose clock runs further
// ahead than the ttl, until the ttl has run out; a replica behind does not
// take a refund proposal past its expiry. Judged by each replica's own
// clock, a sweep lease let two replicas query one order, a purchase claim
// let the replica ahead bind a second order number to one purchase, an
// announcement mark announced an order twice, a notification mark applied
// one twice, a rate window admitted twice its limit, and a replica behind
// consumed a refund proposal its user confirmed after it expired.
func TestSkewedReplicasShareWindows(t *testing.T) {
	ctx := context.Background()
	const ttl = 30 * time.Second
	type step func(t *testing.T, s *Store) bool // whether s got the window (first)
	cases := []struct {
		name string
		take func(holder string) step
	}{
		{"sweep lease", func(holder string) step {
			return func(t *testing.T, s *Store) bool {
				got, err := s.TakeLeases(ctx, holder, []string{"SW-1"}, ttl)
				if err != nil || len(got) != 1 {
					t.Fatalf("TakeLeases: %v, %v", got, err)
				}
				return got[0]
			}
		}},
		{"purchase claim", func(holder string) step {
			return func(t *testing.T, s *Store) bool {
				c, created, err := s.ClaimPurchase(ctx, "purchase-1", "NO-"+holder, ttl)
				if err != nil {
					t.Fatalf("ClaimPurchase: %v", err)
				}
				if created != (c.OrderNo == "NO-"+holder) {
					t.Fatalf("ClaimPurchase by %s: %+v, created %v", holder, c, created)
				}
				return created
			}
		}},
		{"announcement", func(string) step {
			return func(t *testing.T, s *Store) bool {
				first, err := s.ClaimAnnouncement(ctx, "shop", "u1", "paid:", "AN-1", ttl)
				if err != nil {
					t.Fatalf("ClaimAnnouncement: %v", err)
				}
				return first
			}
		}},
		{"notification", func(string) step {
			return func(t *testing.T, s *Store) bool {
				first, err := s.SeenNotification(ctx, "notify-1", ttl)
				if err != nil {
					t.Fatalf("SeenNotification: %v", err)
				}
				return first
			}
		}},
		{"counter", func(string) step {
			return func(t *testing.T, s *Store) bool {
				n, err := s.IncrCounter(ctx, "c-1", ttl)
				if err != nil {
					t.Fatalf("IncrCounter: %v", err)
				}
				return n == 1
			}
		}},
		{"rate window", func(holder string) step {
			return func(t *testing.T, s *Store) bool {
				ok, err := s.AllowWindow(ctx, "w-1", 1, ttl, "tok-"+holder+s.now().String())
				if err != nil {
					t.Fatalf("AllowWindow: %v", err)
				}
				return ok
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock, a, b := skewedReplicas(t)
			if !tc.take("A")(t, a) {
				t.Fatal("the first replica did not get it")
			}
			if tc.take("B")(t, b) {
				t.Fatalf("a replica %v ahead got it right after the first replica took it for %v", replicaSkew, ttl)
			}
			clock.Advance(ttl)
			if !tc.take("B")(t, b) {
				t.Errorf("the replica ahead, once the ttl ran out: did not get it")
			}
		})
	}

	t.Run("refund proposal", func(t *testing.T) {
		clock, behind, ahead := skewedReplicas(t)
		p := &store.RefundProposal{RefundID: "RP-SK", OrderNo: "O-SK", Client: "shop", User: "u1", AmountFen: 100}
		if err := ahead.PutRefundProposal(ctx, p, ttl); err != nil {
			t.Fatal(err)
		}
		// Each Store read the server's clock when it opened, a few ms
		// apart while the test's clock stood still: the replicas agree on
		// server time to within those reads, so the check is a second past
		// the expiry, not at its millisecond.
		clock.Advance(ttl + time.Second)
		if _, err := behind.GetRefundProposal(ctx, "RP-SK"); err == nil {
			t.Errorf("GetRefundProposal on a replica %v behind, past a %v proposal's expiry: live; want gone", replicaSkew, ttl)
		}
		if open, err := behind.OpenRefundProposals(ctx, "shop", "u1"); err != nil || len(open) != 0 {
			t.Errorf("OpenRefundProposals on the replica behind: %v, %v; want none", open, err)
		}
		if _, err := behind.ConsumeRefundProposal(ctx, "RP-SK", "u1"); err == nil {
			t.Errorf("ConsumeRefundProposal on the replica behind, past the expiry: consumed; want refused")
		}
	})
}
