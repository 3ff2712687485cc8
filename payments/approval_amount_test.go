package payments_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestApprovalNotCarriedToANewAmount: a manager approved 11 × 49.99; the
// price list then changed (a rolling deploy, another replica's config), and
// the user asked for the same purchase paid another way. The approved order
// is closed for the switch, and the new order, priced at 1099.89, must be
// held again: no manager saw that amount.
func TestApprovalNotCarriedToANewAmount(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			rules := payments.Rules{ApprovalAboveFen: payments.FenPtr(50000)}
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { o.Rules = rules }})
			ctx := context.Background()
			req := payments.CreateRequest{Client: "shop-bot", User: "oUser-new-price", SKU: "premium-monthly", Quantity: 11}
			a, err := e.svc.CreateOrder(ctx, req)
			if err != nil || a.Order.Status != store.StatusApprovalRequired {
				t.Fatalf("create: %+v %v; want it held", a, err)
			}
			if _, err := e.svc.Approve(ctx, a.Order.OrderNo); err != nil {
				t.Fatal(err)
			}
			other := replicaWith(t, e, monthlyAt(t, "99.99"), rules)
			native := req
			native.PayMethod = "native"
			b, err := other.CreateOrder(ctx, native)
			if err != nil {
				t.Fatal(err)
			}
			if b.Order.AmountFen != 109989 || b.Order.Status != store.StatusApprovalRequired || e.sim.Prepays(b.Order.OrderNo) != 0 {
				t.Errorf("new order %s: %d fen, %s, %d prepay(s); want 109989 fen held for approval, none at WeChat Pay (approved: %d fen)",
					b.Order.OrderNo, b.Order.AmountFen, b.Order.Status, e.sim.Prepays(b.Order.OrderNo), a.Order.AmountFen)
			}
		})
	}
}

// TestSwitchCarriesOnlyARecordedApproval: switching the pay method of a
// payable order above approval_above opens its replacement at once only when
// a manager approved that order at that amount (recorded on it); an approval
// is never inferred from the threshold. An order opened while approval was
// off or its threshold higher (a config change, another replica's rules mid
// deploy) was never seen by a manager, and neither was one approved before
// approvals were recorded (the safe side: held again). A carried approval is
// recorded on the replacement, so switching back works too.
func TestSwitchCarriesOnlyARecordedApproval(t *testing.T) {
	held := payments.Rules{ApprovalAboveFen: payments.FenPtr(5000)} // 99.98 waits for a manager
	cases := []struct {
		name    string
		opened  payments.Rules // the rules the first order was made under
		approve bool           // a manager approves the first order
		// unrecorded strips the recorded approval, as on an order approved
		// before approvals were recorded.
		unrecorded bool
		wantHeld   bool // the replacement waits for a manager
	}{
		{name: "opened with approval off", opened: payments.Rules{}, wantHeld: true},
		{name: "opened under a higher threshold", opened: payments.Rules{ApprovalAboveFen: payments.FenPtr(50000)}, wantHeld: true},
		{name: "approved before approvals were recorded", opened: held, approve: true, unrecorded: true, wantHeld: true},
		{name: "approved", opened: held, approve: true, wantHeld: false},
	}
	for _, driver := range drivers(t) {
		for _, tc := range cases {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { o.Rules = tc.opened }})
				ctx := context.Background()
				jsapi := payments.CreateRequest{Client: "shop-bot", User: "oUser-carry", SKU: "premium-monthly", Quantity: 2}
				native := jsapi
				native.PayMethod = "native"
				a, err := e.svc.CreateOrder(ctx, jsapi)
				if err != nil {
					t.Fatal(err)
				}
				if tc.approve {
					if _, err := e.svc.Approve(ctx, a.Order.OrderNo); err != nil {
						t.Fatal(err)
					}
				}
				first := e.order(a.Order.OrderNo)
				if first.Status != store.StatusAwaitingPayment {
					t.Fatalf("first order %s; want awaiting_payment", first.Status)
				}
				if want := map[bool]int64{true: first.AmountFen}[tc.approve]; first.ApprovedFen != want {
					t.Errorf("first order approved_fen %d; want %d", first.ApprovedFen, want)
				}
				if tc.unrecorded {
					first.ApprovedFen = 0
					if err := e.st.UpdateOrder(ctx, first, first.Status); err != nil {
						t.Fatal(err)
					}
				}
				other := replicaWith(t, e, e.catalog, held)
				b, err := other.CreateOrder(ctx, native)
				if err != nil {
					t.Fatal(err)
				}
				if b.Order.OrderNo == a.Order.OrderNo {
					t.Fatalf("switch kept order %s; want a replacement", a.Order.OrderNo)
				}
				if isHeld := b.Order.Status == store.StatusApprovalRequired; isHeld != tc.wantHeld || isHeld != (e.sim.Prepays(b.Order.OrderNo) == 0) {
					t.Fatalf("replacement %s of %d fen: %s, %d prepay(s); want held %v (approved_fen of the first: %d)",
						b.Order.OrderNo, b.Order.AmountFen, b.Order.Status, e.sim.Prepays(b.Order.OrderNo), tc.wantHeld, first.ApprovedFen)
				}
				if tc.wantHeld {
					return
				}
				if got := e.order(b.Order.OrderNo).ApprovedFen; got != b.Order.AmountFen {
					t.Errorf("replacement approved_fen %d; want the carried approval, %d", got, b.Order.AmountFen)
				}
				// Back to JSAPI: the carried approval carries again.
				c, err := other.CreateOrder(ctx, jsapi)
				if err != nil {
					t.Fatal(err)
				}
				if c.Order.OrderNo == b.Order.OrderNo || c.Order.Status != store.StatusAwaitingPayment || e.sim.Prepays(c.Order.OrderNo) != 1 {
					t.Errorf("second switch: %s %s, %d prepay(s); want a new payable order, not held again",
						c.Order.OrderNo, c.Order.Status, e.sim.Prepays(c.Order.OrderNo))
				}
			})
		}
	}
}

// TestApproveOpensTheHeldAmount: an order of 11 × 49.99 waits for a
// manager; the price list then changes (a deploy, another replica's config)
// and a replica that reads it takes the manager's yes. What the manager saw
// and approved is what WeChat Pay is asked for and the user pays: the held
// 549.89, not the SKU's price now. Priced again at approval, a manager's yes
// to 549.89 would open 1099.89 that nobody approved (or a cut price nobody
// sells at).
func TestApproveOpensTheHeldAmount(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			rules := payments.Rules{ApprovalAboveFen: payments.FenPtr(50000)}
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { o.Rules = rules }})
			ctx := context.Background()
			a, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-held-price", SKU: "premium-monthly", Quantity: 11})
			if err != nil || a.Order.Status != store.StatusApprovalRequired || a.Order.AmountFen != 54989 {
				t.Fatalf("create: %+v %v; want 54989 fen held", a, err)
			}
			for _, price := range []string{"99.99", "9.99"} {
				other := replicaWith(t, e, monthlyAt(t, price), rules)
				if price == "9.99" {
					// The second replica's yes comes after the first's:
					// it decides nothing and opens nothing more.
					if res, err := other.Approve(ctx, a.Order.OrderNo); !errors.Is(err, payments.ErrNotAwaitingApproval) || res == nil || res.Order.AmountFen != 54989 {
						t.Errorf("second approval: %+v, %v; want ErrNotAwaitingApproval with the order at 54989 fen", res, err)
					}
					break
				}
				res, err := other.Approve(ctx, a.Order.OrderNo)
				if err != nil {
					t.Fatal(err)
				}
				if res.Order.AmountFen != 54989 || res.Order.ApprovedFen != 54989 || res.Order.SKU != "premium-monthly" || res.Order.Quantity != 11 {
					t.Errorf("approved order: %d fen (approved %d), %s × %d; want the held 54989 fen of premium-monthly × 11",
						res.Order.AmountFen, res.Order.ApprovedFen, res.Order.SKU, res.Order.Quantity)
				}
			}
			tx, ok := e.sim.Order(a.Order.OrderNo)
			if !ok || tx.Amount.Total != 54989 || e.sim.Prepays(a.Order.OrderNo) != 1 {
				t.Errorf("at WeChat Pay: %+v (known %v), %d prepay(s); want one prepay of the held 54989 fen", tx.Amount, ok, e.sim.Prepays(a.Order.OrderNo))
			}
			if o := e.order(a.Order.OrderNo); o.Status != store.StatusAwaitingPayment || o.AmountFen != 54989 {
				t.Errorf("stored order: %s, %d fen; want awaiting_payment at 54989", o.Status, o.AmountFen)
			}
		})
	}
}

// replicaWith is another replica over e's store and WeChat Pay, selling
// catalog under rules (a config changed between two replicas' starts).
func replicaWith(t *testing.T, e *env, catalog *payments.Catalog, rules payments.Rules) *payments.Service {
	t.Helper()
	return otherReplica(t, payments.Options{
		Store: e.st, Backend: e.client, Notify: e.client.NotifyVerifier(), Catalog: catalog,
		MchID: e.sim.MchID(), AppID: e.sim.AppID(),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: e.clock.Now, Rules: rules,
	})
}

// monthlyAt is a catalog of the monthly plan at price.
func monthlyAt(t *testing.T, price string) *payments.Catalog {
	t.Helper()
	c, err := payments.NewCatalog([]payments.CatalogItem{
		{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: price, MaxQuantity: 12},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
