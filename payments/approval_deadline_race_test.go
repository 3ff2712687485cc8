package payments_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestDecisionAtTheDeadlineAfterAnother: one manager approves a held order
// a moment before its approval deadline while another's rejection, which
// read it still held, reaches the deadline. The approval stands, and the
// late rejection is told the order was decided (it is being paid), as any
// decision that loses to another is. It was told the order's deadline had
// passed and it expired, naming as that deadline the approved order's
// payment deadline, beside an order that had not expired: the manager read
// that the user could no longer pay it. So was a late approval of an order
// just rejected.
func TestDecisionAtTheDeadlineAfterAnother(t *testing.T) {
	const ttl = time.Hour
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var st *decideOnRead
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
				o.Rules.ApprovalTTL = ttl
				st = &decideOnRead{fullStore: o.Store.(fullStore)}
				o.Store = st
			}})
			ctx := context.Background()
			approve := func(no string) (*store.Order, error) {
				res, err := e.svc.Approve(ctx, no)
				if res == nil {
					return nil, err
				}
				return res.Order, err
			}
			reject := func(no string) (*store.Order, error) { return e.svc.Reject(ctx, no) }
			for i, c := range []struct {
				name        string
				first, late func(string) (*store.Order, error)
				want        store.OrderStatus
			}{
				{"approved, then a late rejection", approve, reject, store.StatusAwaitingPayment},
				{"rejected, then a late approval", reject, approve, store.StatusRejected},
			} {
				held, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-deadline-race", SKU: "premium-monthly", Quantity: 2 + i})
				if err != nil || held.Order.Status != store.StatusApprovalRequired {
					t.Fatalf("%s: held order: %+v, %v", c.name, held, err)
				}
				no := held.Order.OrderNo
				e.clock.Advance(ttl - time.Minute)
				st.arm(no, func() {
					if _, err := c.first(no); err != nil {
						t.Errorf("%s: the decision before the deadline: %v", c.name, err)
					}
					e.clock.Advance(2 * time.Minute) // the late one decides past it
				})
				o, err := c.late(no)
				if errors.Is(err, payments.ErrApprovalExpired) || !errors.Is(err, payments.ErrNotAwaitingApproval) {
					t.Errorf("%s: %v; want ErrNotAwaitingApproval, not ErrApprovalExpired", c.name, err)
				}
				if o == nil || o.Status != c.want {
					t.Errorf("%s: returned %+v; want the order as decided, %s", c.name, o, c.want)
				}
				if got := e.order(no); got.Status != c.want {
					t.Errorf("%s: order %s; want %s: the first decision stands", c.name, got.Status, c.want)
				}
			}
		})
	}
}
