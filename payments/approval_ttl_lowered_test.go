package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestLoweredApprovalTTLKeepsTheHeldOrdersPurchase: an order of 99.98
// (above approval_above 50.00) is held under approval_ttl 72h; the
// operator lowers it to 12h and restarts (README: an order already held
// stays held until the deadline it was held with). 30 hours on, its claim
// long lapsed, the user asks for the same purchase again: the held order,
// still waiting for a manager, is returned. Looked for only within the new
// config's horizon (dedupe_window + 2 × (approval_ttl + order_ttl), 28h10m
// here), it was passed over and a second held order of the same purchase
// was made: two queue entries a manager may both approve, two payable
// orders of one purchase. So too for one approved (awaiting payment), made
// as long ago.
func TestLoweredApprovalTTLKeepsTheHeldOrdersPurchase(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, approve := range []bool{false, true} {
			name := driver + ", held"
			if approve {
				name = driver + ", approved"
			}
			t.Run(name, func(t *testing.T) {
				var opts payments.Options
				e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
					o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
					o.Rules.ApprovalTTL = 72 * time.Hour
					opts = *o
				}})
				ctx := context.Background()
				req := payments.CreateRequest{Client: "shop-bot", User: "oUser-approval-ttl-lowered", SKU: "premium-monthly", Quantity: 2, KeepPayMethod: true}
				held, err := e.svc.CreateOrder(ctx, req)
				if err != nil || held.Order.Status != store.StatusApprovalRequired {
					t.Fatalf("create: %+v, %v; want approval_required", held, err)
				}
				no := held.Order.OrderNo
				e.clock.Advance(30 * time.Hour)
				want := store.StatusApprovalRequired
				if approve {
					if _, err := e.svc.Approve(ctx, no); err != nil {
						t.Fatalf("approve: %v", err)
					}
					want = store.StatusAwaitingPayment
				}
				opts.Rules.ApprovalTTL = 12 * time.Hour
				restarted := otherReplica(t, opts)
				again, err := restarted.CreateOrder(ctx, req)
				if err != nil {
					t.Fatalf("asked again after the restart: %v", err)
				}
				if again.Order.OrderNo != no || again.Order.Status != want {
					t.Errorf("asked again 30h on under approval_ttl 12h: order %s (%s); want %s, %s until %s, not a second order of the purchase",
						again.Order.OrderNo, again.Order.Status, no, want, e.order(no).ExpiresAt.UTC().Format(time.RFC3339))
				}
				if queue, _ := restarted.Approvals(ctx, 0); !approve && len(queue) != 1 {
					t.Errorf("approval queue holds %d orders; want the one", len(queue))
				}
			})
		}
	}
}
