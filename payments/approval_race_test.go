package payments_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestApproveAndRejectAtOnceOnTwoReplicas: two managers decide one held
// order at the same moment on two replicas, one approving, one rejecting,
// a few times over. One decision wins and the other is told the order is
// no longer waiting; WeChat Pay sees a prepay exactly when the approval
// won, and the order ends as that decision says.
func TestApproveAndRejectAtOnceOnTwoReplicas(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
				opts = *o
			}})
			other := otherReplica(t, opts)
			ctx := context.Background()
			for i := 1; i <= 6; i++ {
				held, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-decide-race", SKU: "premium-monthly", Quantity: i + 1})
				if err != nil || held.Order.Status != store.StatusApprovalRequired {
					t.Fatalf("held order: %+v, %v", held, err)
				}
				no := held.Order.OrderNo
				approver, rejecter := e.svc, other
				if i%2 == 0 {
					approver, rejecter = other, e.svc
				}
				var approveErr, rejectErr error
				var wg sync.WaitGroup
				start := make(chan struct{})
				wg.Add(2)
				go func() { defer wg.Done(); <-start; _, approveErr = approver.Approve(ctx, no) }()
				go func() { defer wg.Done(); <-start; _, rejectErr = rejecter.Reject(ctx, no) }()
				close(start)
				wg.Wait()
				got := e.order(no)
				switch {
				case approveErr == nil && errors.Is(rejectErr, payments.ErrNotAwaitingApproval):
					if got.Status != store.StatusAwaitingPayment || e.sim.Prepays(no) != 1 {
						t.Errorf("approval won: order %s, %d prepays; want awaiting_payment and 1", got.Status, e.sim.Prepays(no))
					}
				case rejectErr == nil && errors.Is(approveErr, payments.ErrNotAwaitingApproval):
					if got.Status != store.StatusRejected || e.sim.Prepays(no) != 0 {
						t.Errorf("rejection won: order %s, %d prepays; want rejected and none", got.Status, e.sim.Prepays(no))
					}
				default:
					t.Errorf("decisions: approve %v, reject %v; want exactly one to win", approveErr, rejectErr)
				}
			}
		})
	}
}
