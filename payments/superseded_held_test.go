package payments_test

import (
	"context"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestSupersededHeldOrderLeavesTheQueue: as TestSupersededOrderLeftCreatingIsNotPrepaid,
// for a purchase above approval_above: the claimer that stalled past its
// claim's life records its order held for a manager, finds the purchase
// moved on to another caller's held order when it re-checks, and expires
// its own. Left waiting, the queue showed one purchase twice, and a manager
// approving both opened two payments of it.
func TestSupersededHeldOrderLeavesTheQueue(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var l *lapsedClaimer
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				l = &lapsedClaimer{fullStore: o.Store.(fullStore), aStalled: make(chan struct{}), bDone: make(chan struct{}), closes: true}
				o.Store = l
				o.Rules.ApprovalAboveFen = payments.FenPtr(1000)
			}})
			user := "oUser-superseded-held-" + driver
			rb, err := lapseClaimer(t, e, l, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
			if err != nil || rb.Order.Status != store.StatusApprovalRequired {
				t.Fatalf("B: %+v, %v; want its order held", rb, err)
			}
			queue, err := e.svc.Approvals(context.Background(), 0)
			if err != nil {
				t.Fatal(err)
			}
			var held []string
			for _, o := range queue {
				if o.User == user {
					held = append(held, o.OrderNo)
				}
			}
			if len(held) != 1 || held[0] != rb.Order.OrderNo {
				t.Errorf("the purchase's orders in the approval queue: %v; want only %s", held, rb.Order.OrderNo)
			}
			supersededAs(t, e, user, rb.Order.OrderNo, store.StatusExpired)
		})
	}
}
