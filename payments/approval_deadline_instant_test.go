package payments_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestDecisionAtTheDeadlineInstant: a held order's expires_at, as the queue
// and the user's state show it, is the first instant it can no longer be
// decided: a manager's approval or rejection then is too late (the order
// expires, nothing reaches WeChat Pay), as the user's next turn no longer
// tells it as waiting then. A second earlier the decision is made. A
// deadline judged with After let a yes at expires_at open the order.
func TestDecisionAtTheDeadlineInstant(t *testing.T) {
	ctx := context.Background()
	decisions := []struct {
		name string
		made store.OrderStatus
		// decide returns the decision's error.
		decide func(e *env, no string) error
	}{
		{"approve", store.StatusAwaitingPayment, func(e *env, no string) error { _, err := e.svc.Approve(ctx, no); return err }},
		{"reject", store.StatusRejected, func(e *env, no string) error { _, err := e.svc.Reject(ctx, no); return err }},
	}
	for _, driver := range drivers(t) {
		for _, d := range decisions {
			t.Run(driver+"/"+d.name, func(t *testing.T) {
				clk := storetest.NewClock()
				clk.Advance(time.Now().Sub(clk.Now()))
				e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
					o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
					o.Now = clk.Now
				}})
				before := holdOrder(t, e, "oUser-deadline-instant-before-"+d.name)
				at := holdOrder(t, e, "oUser-deadline-instant-at-"+d.name)
				if !at.ExpiresAt.Equal(before.ExpiresAt) {
					t.Fatalf("two orders held at one instant expire at %v and %v", before.ExpiresAt, at.ExpiresAt)
				}

				clk.Advance(at.ExpiresAt.Add(-time.Second).Sub(clk.Now()))
				if err := d.decide(e, before.OrderNo); err != nil {
					t.Fatalf("%s a second before the deadline: %v", d.name, err)
				}
				if got := e.order(before.OrderNo).Status; got != d.made {
					t.Errorf("%s a second before the deadline: order %s; want %s", d.name, got, d.made)
				}

				clk.Advance(at.ExpiresAt.Sub(clk.Now()))
				if err := d.decide(e, at.OrderNo); !errors.Is(err, payments.ErrApprovalExpired) {
					t.Errorf("%s at the deadline instant: %v; want ErrApprovalExpired", d.name, err)
				}
				if got := e.order(at.OrderNo).Status; got != store.StatusExpired {
					t.Errorf("%s at the deadline instant: order %s; want expired", d.name, got)
				}
				if n := e.sim.Prepays(at.OrderNo); n != 0 {
					t.Errorf("%s at the deadline instant: %d prepays; want none", d.name, n)
				}
			})
		}
	}
}
