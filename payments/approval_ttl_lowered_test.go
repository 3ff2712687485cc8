package payments_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
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
				e := newEnv(t, envOptions{driver: driver, storeClock: true, service: heldUnder72h(&opts)})
				ctx := context.Background()
				req, held := holdPurchase(t, e, "oUser-approval-ttl-lowered")
				no := held.OrderNo
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

// TestLoweredApprovalTTLKeepsThePaidOrdersPurchase: as
// TestLoweredApprovalTTLKeepsTheHeldOrdersPurchase, the order held under
// approval_ttl 72h is approved 30 hours on and paid at once; the operator
// lowers approval_ttl to 12h and restarts, and the purchase is asked again
// right after the payment (the model calling create_order on "I paid").
// README (dedupe_window): one paid less than dedupe_window ago is answered
// already_paid however long the user took to pay. Made before the new
// config's horizon (28h10m), the paid order was passed over by the walk and
// not looked for by openBefore (open statuses only): the purchase got a
// second held order, which a manager's approval made payable, a second
// charge for one purchase.
func TestLoweredApprovalTTLKeepsThePaidOrdersPurchase(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e, simClock := justPaidEnvWith(t, driver, func(o *payments.Options) {
				o.DedupeWindow = 10 * time.Minute
				o.OrderTTL = 2 * time.Hour
				heldUnder72h(&opts)(o)
			})
			ctx := context.Background()
			req, held := holdPurchase(t, e, "oUser-approval-ttl-lowered-paid")
			no := held.OrderNo
			e.clock.Advance(30 * time.Hour)
			if _, err := e.svc.Approve(ctx, no); err != nil {
				t.Fatalf("approve: %v", err)
			}
			payAt(t, e, simClock, e.order(no))
			opts.Rules.ApprovalTTL = 12 * time.Hour
			restarted := otherReplica(t, opts)
			again, err := restarted.CreateOrder(ctx, req)
			if err != nil {
				t.Fatalf("asked again after the restart: %v", err)
			}
			if again.Order.OrderNo != no || again.Order.Status != store.StatusPaid || !again.Existing || again.Payment != nil {
				t.Errorf("asked again right after paying, 30h on under approval_ttl 12h: order %s (%s, existing %v); want %s, paid (already_paid), not a second order of the purchase",
					again.Order.OrderNo, again.Order.Status, again.Existing, no)
			}
			if queue, _ := restarted.Approvals(ctx, 0); len(queue) != 0 {
				t.Errorf("approval queue holds %d orders; want none: the purchase is paid", len(queue))
			}
			// Another purchase of the user's (3, not 2) is not the one paid.
			three := req
			three.Quantity = 3
			if next, err := restarted.CreateOrder(ctx, three); err != nil || next.Order.OrderNo == no || next.Existing {
				t.Errorf("another purchase (quantity 3): %+v, %v; want a new order, not %s paid for 2", next, err, no)
			}
		})
	}
}

// TestLoweredApprovalTTLKeepsOnlyTheUsersOwnPurchase: another user's order
// of the same SKU and quantity, held under approval_ttl 72h, is no order
// of this user's purchase: openBefore reads every client's and user's held
// orders of that age, and one matched by SKU alone was handed to the wrong
// user (their order number, its payment theirs to make). This user, with
// an order of their own older than the horizon, gets their own held order.
func TestLoweredApprovalTTLKeepsOnlyTheUsersOwnPurchase(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: heldUnder72h(&opts)})
			ctx := context.Background()
			other := payments.CreateRequest{Client: "shop-bot", User: "oUser-other-held", SKU: "premium-monthly", Quantity: 2, KeepPayMethod: true}
			_, theirs := holdPurchase(t, e, other.User)
			mine := other
			mine.User = "oUser-own-old-order"
			small := mine
			small.Quantity = 1 // below approval_above: an old order of their own
			if _, err := e.svc.CreateOrder(ctx, small); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(30 * time.Hour)
			opts.Rules.ApprovalTTL = 12 * time.Hour
			restarted := otherReplica(t, opts)
			got, err := restarted.CreateOrder(ctx, mine)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if got.Order.OrderNo == theirs.OrderNo || got.Order.User != mine.User || got.Existing {
				t.Errorf("this user's purchase: order %s of %s (existing %v); want a new order of their own, not %s of %s",
					got.Order.OrderNo, got.Order.User, got.Existing, theirs.OrderNo, other.User)
			}
		})
	}
}

// TestLoweredApprovalTTLKeepsTheApprovingOrdersPurchase: the order held
// under approval_ttl 72h is approved 30 hours on, and while the approval's
// prepay is on its way to WeChat Pay (the order `creating`) the purchase is
// asked again on a replica restarted with approval_ttl 12h. The order is
// made before that config's horizon and is neither held nor awaiting
// payment: passed over, the purchase got a second held order, a manager's
// approval of which made it payable beside the first. The ask waits for
// the approval's prepay (or gives up) and makes no order.
func TestLoweredApprovalTTLKeepsTheApprovingOrdersPurchase(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			h := &firstPrepayHeld{reached: make(chan struct{}), release: make(chan struct{})}
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, storeClock: true, client: func(c *wechatpay.Config) {
				c.Transport, c.AttemptTimeout = h, 10*time.Second
			}, service: heldUnder72h(&opts)})
			ctx := context.Background()
			req, held := holdPurchase(t, e, "oUser-approval-ttl-lowered-approving")
			no := held.OrderNo
			e.clock.Advance(30 * time.Hour)
			approved := approveWhilePrepayHeld(t, e, h, no)
			opts.Rules.ApprovalTTL = 12 * time.Hour
			restarted := otherReplica(t, opts)
			// A bot whose HTTP client gives up after a second.
			askCtx, cancel := context.WithTimeout(ctx, time.Second)
			again, askErr := restarted.CreateOrder(askCtx, req)
			cancel()
			close(h.release)
			if err := <-approved; err != nil {
				t.Fatalf("approve: %v", err)
			}
			orders, err := e.st.ListOrders(ctx, store.OrderFilter{Client: req.Client, User: req.User})
			if err != nil {
				t.Fatal(err)
			}
			if len(orders) != 1 || again != nil && again.Order != nil && again.Order.OrderNo != no {
				t.Errorf("asked during the approval's prepay under approval_ttl 12h: %+v, %v; %d orders of the purchase, want the one, %s", again, askErr, len(orders), no)
			}
		})
	}
}

// TestLoweredApprovalTTLFindsTheHeldOrderPastAPage: as
// TestLoweredApprovalTTLKeepsTheHeldOrdersPurchase, with a full page
// (store.MaxListLimit) of other users' orders held as long, made after
// this user's: openBefore reads every user's held orders of that age, and
// one past its first page was passed over, a second held order made.
func TestLoweredApprovalTTLFindsTheHeldOrderPastAPage(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: heldUnder72h(&opts)})
			ctx := context.Background()
			req, held := holdPurchase(t, e, "oUser-approval-ttl-lowered-paged")
			base := held.CreatedAt
			// Made 16 at a time: the embedded store commits them together.
			errs := make(chan error, store.MaxListLimit)
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Go(func() {
					for i := w; i < store.MaxListLimit; i += 16 {
						no := fmt.Sprintf("PGHELDOTHER%05d", i)
						errs <- e.st.CreateOrder(ctx, &store.Order{OrderNo: no, Client: "shop-bot", User: "oUser-" + no, SKU: "premium-monthly",
							Quantity: 2, AmountFen: 9998, Currency: "CNY", PayMethod: "jsapi", Status: store.StatusApprovalRequired, ClaimKey: "k" + no, Generation: 1,
							CreatedAt: base.Add(time.Duration(i+1) * time.Millisecond), ExpiresAt: base.Add(72 * time.Hour)})
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			e.clock.Advance(30 * time.Hour)
			opts.Rules.ApprovalTTL = 12 * time.Hour
			again, err := otherReplica(t, opts).CreateOrder(ctx, req)
			if err != nil {
				t.Fatalf("asked again after the restart: %v", err)
			}
			if again.Order.OrderNo != held.OrderNo || again.Order.Status != store.StatusApprovalRequired {
				t.Errorf("asked again 30h on under approval_ttl 12h, %d other held orders newer: order %s (%s); want %s, held",
					store.MaxListLimit, again.Order.OrderNo, again.Order.Status, held.OrderNo)
			}
		})
	}
}

// heldUnder72h sets a service's options to hold an order above 50.00 for
// a manager under approval_ttl 72h, and saves them in opts, for a replica
// restarted under another.
func heldUnder72h(opts *payments.Options) func(*payments.Options) {
	return func(o *payments.Options) {
		o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
		o.Rules.ApprovalTTL = 72 * time.Hour
		*opts = *o
	}
}

// holdPurchase asks for user's purchase of 2 premium-monthly (99.98) and
// returns the request and the order held for it.
func holdPurchase(t *testing.T, e *env, user string) (payments.CreateRequest, *store.Order) {
	t.Helper()
	req := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 2, KeepPayMethod: true}
	held, err := e.svc.CreateOrder(context.Background(), req)
	if err != nil || held.Order.Status != store.StatusApprovalRequired {
		t.Fatalf("create: %+v, %v; want approval_required", held, err)
	}
	return req, held.Order
}
