package payments_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestOpenOrderAfterTheCatalogNarrows: an order of 11 is open (or just
// paid) when the merchant lowers max_quantity to 5, takes the SKU out of
// the catalog or out of the client's allowed_skus. The same purchase asked
// again on a replica with the new config is its order, handed back as it
// stands (README: the order stays payable; an order of a pay method no
// longer offered is handed back so too), or already_paid: it was a
// clarification that the item "is not sold here" or that the quantity must
// be at most 5, beside the order the payment state lists as awaiting
// payment. Nothing new is priced or sent to WeChat Pay. Another pay method
// named is no hand back (a new order of an item not sold): a
// clarification, as before. A SKU renamed is another purchase (README): a
// new order, the old one left as it was.
func TestOpenOrderAfterTheCatalogNarrows(t *testing.T) {
	monthly := payments.CatalogItem{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99", MaxQuantity: 12}
	tip := payments.CatalogItem{SKU: "tip", Name: "Tip", Price: "0.01"}
	for _, driver := range drivers(t) {
		for _, tt := range []struct {
			name    string
			items   []payments.CatalogItem
			allowed []string // the client's allowed_skus after the edit
		}{
			{name: "max lowered", items: []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99", MaxQuantity: 5}, tip}},
			{name: "removed", items: []payments.CatalogItem{tip}},
			{name: "not allowed", items: []payments.CatalogItem{monthly, tip}, allowed: []string{"tip"}},
		} {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				var opts payments.Options
				e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { opts = *o }})
				ctx := context.Background()
				u := caller("oUser-narrowed")
				first := call(t, newTools(e), u, "create_order", `{"sku":"premium-monthly","quantity":11}`)
				no, _ := first.result["order_no"].(string)
				if first.result["status"] != "awaiting_payment" || no == "" {
					t.Fatalf("create: %s", first.out.Result)
				}
				tools := toolsOnEditedReplica(t, opts, tt.items...)
				after := u
				after.AllowedSKUs = tt.allowed
				requests := len(e.sim.Requests())

				other := call(t, tools, after, "create_order", `{"sku":"premium-monthly","quantity":11,"pay_method":"native"}`)
				if other.result["status"] != "needs_clarification" {
					t.Errorf("asked again for a QR code: %s; want a clarification, no order", other.out.Result)
				}
				for _, args := range []string{`{"sku":"premium-monthly","quantity":11}`, `{"sku":"premium-monthly","quantity":11,"pay_method":"jsapi"}`} {
					again := call(t, tools, after, "create_order", args)
					order, _ := again.action["order"].(map[string]any)
					if again.result["status"] != "awaiting_payment" || again.result["order_no"] != no || again.result["amount"] != "549.89 CNY" ||
						again.action["type"] != "order_created" || order["order_no"] != no || again.action["request_payment"] == nil {
						t.Errorf("asked again (%s): %s, action %s; want order %s handed back, payable, at 549.89 CNY", args, again.out.Result, again.out.Action, no)
					}
				}
				for _, rq := range e.sim.Requests()[requests:] {
					t.Errorf("WeChat Pay asked %s after the edit; want nothing asked by the hand backs", rq.Op)
				}
				if d, err := e.sim.Pay(ctx, no); err != nil || !d.Acked {
					t.Fatalf("pay: %+v %v", d, err)
				}
				paid := call(t, tools, after, "create_order", `{"sku":"premium-monthly","quantity":11}`)
				if paid.result["status"] != "already_paid" || paid.result["order_no"] != no || paid.action != nil {
					t.Errorf("asked again once paid: %s; want already_paid, order %s", paid.out.Result, no)
				}
				mine, err := e.st.ListOrders(ctx, store.OrderFilter{Client: u.Client, User: u.User})
				if err != nil || len(mine) != 1 {
					t.Errorf("the user's orders: %d (%v); want the one", len(mine), err)
				}
			})
		}
		t.Run(driver+"/renamed", func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { opts = *o }})
			u := caller("oUser-renamed")
			first := call(t, newTools(e), u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			no, _ := first.result["order_no"].(string)
			if d, err := e.sim.Pay(context.Background(), no); err != nil || !d.Acked {
				t.Fatalf("pay: %+v %v", d, err)
			}
			renamed := monthly
			renamed.SKU = "premium-month"
			tools := toolsOnEditedReplica(t, opts, renamed)
			again := call(t, tools, u, "create_order", `{"sku":"premium-month","quantity":2}`)
			if again.result["status"] != "awaiting_payment" || again.result["order_no"] == no {
				t.Errorf("under the new id: %s; want a new order (no mapping of ids)", again.out.Result)
			}
			if o := e.order(no); o.Status != store.StatusPaid {
				t.Errorf("the old id's order: %s; want paid", o.Status)
			}
		})
	}
}

// TestUnsoldPurchaseInItsLastMinute: the purchase of an order of 11 asked
// again within the order's last minute, after max_quantity was lowered to
// 5 (and the price raised), the SKU removed or taken out of the client's
// allowed_skus. The order is not renewed (no price the catalog no longer
// has, no order of an item not sold: nothing sent to WeChat Pay) and is
// still payable until its deadline, as the payment state says: it is
// handed back as it stands at 549.89 CNY, as at the day's order limit,
// not clarified as an item "not sold here" beside it. Another user's,
// another client's or another quantity's ask gets no such order.
func TestUnsoldPurchaseInItsLastMinute(t *testing.T) {
	tip := payments.CatalogItem{SKU: "tip", Name: "Tip", Price: "0.01"}
	for _, driver := range drivers(t) {
		for _, tt := range []struct {
			name    string
			items   []payments.CatalogItem
			allowed []string
		}{
			{name: "max lowered", items: []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "59.99", MaxQuantity: 5}, tip}},
			{name: "removed", items: []payments.CatalogItem{tip}},
			{name: "not allowed", items: []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "59.99", MaxQuantity: 12}, tip}, allowed: []string{"tip"}},
		} {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				var opts payments.Options
				e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { opts = *o }})
				u := caller("oUser-unsold-last-minute")
				first := call(t, newTools(e), u, "create_order", `{"sku":"premium-monthly","quantity":11}`)
				no, _ := first.result["order_no"].(string)
				if first.result["status"] != "awaiting_payment" || no == "" {
					t.Fatalf("create: %s", first.out.Result)
				}
				tools := toolsOnEditedReplica(t, opts, tt.items...)
				after := u
				after.AllowedSKUs = tt.allowed
				e.clock.Advance(e.order(no).ExpiresAt.Sub(e.clock.Now()) - 30*time.Second)
				requests := len(e.sim.Requests())

				for _, o := range []struct {
					c    payments.Caller
					args string
				}{
					{caller("oUser-unsold-last-minute-2"), `{"sku":"premium-monthly","quantity":11}`},
					{otherClient(u), `{"sku":"premium-monthly","quantity":11}`},
					{after, `{"sku":"premium-monthly","quantity":10}`},
					{after, `{"sku":"premium-monthly","quantity":11,"pay_method":"native"}`},
				} {
					o.c.AllowedSKUs = tt.allowed
					if got := call(t, tools, o.c, "create_order", o.args); got.result["status"] != "needs_clarification" {
						t.Errorf("%s/%s asked %s: %s; want a clarification, not order %s", o.c.Client, o.c.User, o.args, got.out.Result, no)
					}
				}
				again := call(t, tools, after, "create_order", `{"sku":"premium-monthly","quantity":11}`)
				order, _ := again.action["order"].(map[string]any)
				if again.result["status"] != "awaiting_payment" || again.result["order_no"] != no || again.result["amount"] != "549.89 CNY" ||
					order["order_no"] != no || again.action["request_payment"] == nil {
					t.Errorf("asked again 30s before its deadline: %s, action %s; want order %s handed back as it stands at 549.89 CNY", again.out.Result, again.out.Action, no)
				}
				for _, rq := range e.sim.Requests()[requests:] {
					t.Errorf("WeChat Pay asked %s in the order's last minute; want nothing (no renewal of an item not sold)", rq.Op)
				}
				mine, err := e.st.ListOrders(context.Background(), store.OrderFilter{Client: u.Client, User: u.User})
				if err != nil || len(mine) != 1 || mine[0].Status != store.StatusAwaitingPayment || mine[0].AmountFen != 54989 {
					t.Errorf("the user's orders: %d (%v); want the one, awaiting payment at 54989 fen", len(mine), err)
				}
			})
		}
	}
}

// TestUnsoldPurchaseNamedOutsideTheSchema: the user's open order of one
// premium-monthly (jsapi), the SKU then removed. A model that puts the
// quantity or the pay method under a name of its own ({"qty":11},
// {"payment_method":"native"}) asks for another purchase than that order:
// sold, it is asked which was meant; unsold, it is no hand back of the
// order of one in JSAPI either, but the clarification of an item not sold.
func TestUnsoldPurchaseNamedOutsideTheSchema(t *testing.T) {
	tip := payments.CatalogItem{SKU: "tip", Name: "Tip", Price: "0.01"}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { opts = *o }})
			u := caller("oUser-unsold-outside")
			first := call(t, newTools(e), u, "create_order", `{"sku":"premium-monthly"}`)
			no, _ := first.result["order_no"].(string)
			if first.result["status"] != "awaiting_payment" || no == "" {
				t.Fatalf("create: %s", first.out.Result)
			}
			tools := toolsOnEditedReplica(t, opts, tip)
			for _, args := range []string{`{"sku":"premium-monthly","qty":11}`, `{"sku":"premium-monthly","数量":11}`, `{"sku":"premium-monthly","payment_method":"native"}`} {
				if got := call(t, tools, u, "create_order", args); got.result["status"] != "needs_clarification" {
					t.Errorf("asked %s: %s; want a clarification, not order %s of one in JSAPI", args, got.out.Result, no)
				}
			}
			if got := call(t, tools, u, "create_order", `{"sku":"premium-monthly","payment_method":"jsapi"}`); got.result["order_no"] != no {
				t.Errorf("asked with its own method outside the schema: %s; want order %s handed back", got.out.Result, no)
			}
		})
	}
}

// TestHeldOrderOfAnUnsoldPurchaseHandedBack: an order of 11 × 49.99 waits
// for a manager (549.89 above 500.00) when the SKU is taken out of the
// catalog. The same purchase asked again on a replica without the SKU is
// that held order, approval_required at 549.89 CNY, nothing sent to WeChat
// Pay; once its approval_ttl lapsed, it is refused as an item not sold.
func TestHeldOrderOfAnUnsoldPurchaseHandedBack(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			rules := payments.Rules{ApprovalAboveFen: payments.FenPtr(50000)}
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { o.Rules = rules }})
			u := caller("oUser-held-unsold")
			first := call(t, newTools(e), u, "create_order", `{"sku":"premium-monthly","quantity":11}`)
			no, _ := first.result["order_no"].(string)
			if first.result["status"] != "approval_required" || no == "" {
				t.Fatalf("create: %s; want it held", first.out.Result)
			}
			tools := payments.NewTools(replicaWith(t, e, catalogOf(t, payments.CatalogItem{SKU: "tip", Name: "Tip", Price: "0.01"}), rules), toolNames, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			requests := len(e.sim.Requests())
			again := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":11}`)
			if again.result["status"] != "approval_required" || again.result["order_no"] != no {
				t.Errorf("asked again: %s; want held order %s handed back", again.out.Result, no)
			}
			if n := len(e.sim.Requests()) - requests; n != 0 {
				t.Errorf("WeChat Pay asked %d times; want 0", n)
			}
			e.clock.Advance(payments.DefaultApprovalTTL + time.Minute)
			if lapsed := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":11}`); lapsed.result["status"] != "needs_clarification" {
				t.Errorf("asked once its approval lapsed: %s; want a clarification of an item not sold", lapsed.out.Result)
			}
		})
	}
}

// toolsOnEditedReplica is the payment tools of a second replica sharing
// opts' store, started after the merchant edited the catalog to items: how
// a restart or a rolling deploy meets the orders of the catalog before.
func toolsOnEditedReplica(t *testing.T, opts payments.Options, items ...payments.CatalogItem) *payments.Tools {
	t.Helper()
	opts.Catalog = catalogOf(t, items...)
	return payments.NewTools(otherReplica(t, opts), toolNames, slog.New(slog.NewJSONHandler(io.Discard, nil)))
}
