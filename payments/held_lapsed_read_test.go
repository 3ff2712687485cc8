package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestHeldOrderPastItsDeadlineReadAsExpired: an order held for a manager
// whose approval deadline passed before anyone decided can no longer be
// approved (Approve refuses it, and expires it). Read for its user before
// the sweep comes round (payments.reconcile.sweep_interval, a minute by
// default and as long as an operator sets it), it was still
// approval_required: the turn's payment state told the model "waiting for
// a manager's approval", query_order answered approval_required and GET
// /v1/paygate/orders listed it so, and the model told the user they could
// pay as soon as it was approved. Each of those reads expires it, as a
// decision or a new ask for the purchase does: audited, an order.closed to
// the merchant.
func TestHeldOrderPastItsDeadlineReadAsExpired(t *testing.T) {
	const ttl = 72 * time.Hour // the default
	reads := []struct {
		name string
		read func(e *env, o *store.Order) (*store.Order, error)
	}{
		{"the turn's payment state", func(e *env, o *store.Order) (*store.Order, error) {
			return e.svc.RefreshPending(context.Background(), []*store.Order{o})[0], nil
		}},
		{"query_order", func(e *env, o *store.Order) (*store.Order, error) {
			return e.svc.Order(context.Background(), o.Client, o.User, o.OrderNo)
		}},
		{"the user's order list", func(e *env, o *store.Order) (*store.Order, error) {
			got, _, err := e.svc.UserOrders(context.Background(), o.Client, o.User, "", 0)
			if err != nil || len(got) != 1 {
				return nil, err
			}
			return got[0], nil
		}},
	}
	for _, driver := range drivers(t) {
		for _, r := range reads {
			t.Run(driver+"/"+r.name, func(t *testing.T) {
				e := approvalEnv(t, driver)
				tc := call(t, newTools(e), caller("oUser-held-lapsed-read"), "create_order", `{"sku":"premium-monthly","quantity":2}`)
				no, _ := tc.result["order_no"].(string)
				if tc.result["status"] != "approval_required" {
					t.Fatalf("create: %s; want approval_required", tc.out.Result)
				}
				held := e.order(no)

				// Within the deadline it waits, as it was.
				e.clock.Advance(ttl - time.Minute)
				if got, err := r.read(e, held); err != nil || got == nil || got.Status != store.StatusApprovalRequired {
					t.Fatalf("read within the deadline: %v, %v; want approval_required", statusOf(got), err)
				}

				e.clock.Advance(2 * time.Minute) // past it, before any sweep
				got, err := r.read(e, held)
				if err != nil || got == nil || got.Status != store.StatusExpired {
					t.Fatalf("read past the deadline: %v, %v; want the order expired", statusOf(got), err)
				}
				tr := e.await(func(tr payments.Transition) bool {
					return tr.After.OrderNo == no && tr.After.Status == store.StatusExpired
				})
				if tr.Before.Status != store.StatusApprovalRequired || tr.Cause != "expire" {
					t.Errorf("transition %s -> %s (%s); want approval_required -> expired, cause expire", tr.Before.Status, tr.After.Status, tr.Cause)
				}
				if st := e.order(no).Status; st != store.StatusExpired {
					t.Errorf("stored order %s; want expired", st)
				}
				if n := e.sim.Prepays(no); n != 0 {
					t.Errorf("prepays %d; want none", n)
				}
			})
		}
	}
}

// statusOf is o's status, or "no order".
func statusOf(o *store.Order) string {
	if o == nil {
		return "no order"
	}
	return string(o.Status)
}
