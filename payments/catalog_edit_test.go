package payments_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// catalogOf is a catalog of items, for a replica started after an edit.
func catalogOf(t *testing.T, items ...payments.CatalogItem) *payments.Catalog {
	t.Helper()
	c, err := payments.NewCatalog(items)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCatalogEditKeepsTheOrdersAmount: an order of 2 × 49.99 is opened;
// the merchant then raises the price (a replica restarted on the new
// config, the other still on the old) and later removes the SKU. Every
// answer about the order tells the amount it was made at: the repeated
// create_order on the repriced replica (the same order, not a second one),
// the payment WeChat Pay reports (checked against the stored order, not
// the catalog), already_paid, and a refund proposed and confirmed on a
// replica whose catalog no longer sells the SKU.
func TestCatalogEditKeepsTheOrdersAmount(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { opts = *o }})
			ctx := context.Background()
			u := caller("oUser-catalog-edit")
			logs := slog.New(slog.NewJSONHandler(io.Discard, nil))
			first := call(t, newTools(e), u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			if first.result["status"] != "awaiting_payment" || first.result["amount"] != "99.98 CNY" {
				t.Fatalf("create: %s; want awaiting_payment at 99.98 CNY", first.out.Result)
			}
			no, _ := first.result["order_no"].(string)

			raised := opts
			raised.Catalog = catalogOf(t, payments.CatalogItem{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "59.99", MaxQuantity: 12})
			onRaised := payments.NewTools(otherReplica(t, raised), toolNames, logs)
			again := call(t, onRaised, u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			order, _ := again.action["order"].(map[string]any)
			if again.result["order_no"] != no || again.result["amount"] != "99.98 CNY" || again.result["status"] != "awaiting_payment" ||
				order["order_no"] != no || order["amount_fen"] != float64(9998) {
				t.Fatalf("asked again on the repriced replica: %s, action %s; want order %s at 99.98 CNY", again.out.Result, again.out.Action, no)
			}
			if d, err := e.sim.Pay(ctx, no); err != nil || !d.Acked {
				t.Fatalf("pay: %+v %v", d, err)
			}
			if o := e.order(no); o.Status != store.StatusPaid || o.AmountFen != 9998 {
				t.Fatalf("after payment: %s at %d fen; want paid at 9998", o.Status, o.AmountFen)
			}
			paid := call(t, onRaised, u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			if paid.result["status"] != "already_paid" || paid.result["order_no"] != no || paid.result["amount"] != "99.98 CNY" {
				t.Errorf("asked again once paid: %s; want already_paid, order %s at 99.98 CNY", paid.out.Result, no)
			}

			removed := opts
			removed.Catalog = catalogOf(t, payments.CatalogItem{SKU: "tip", Name: "Tip", Price: "0.01"})
			svcRemoved := otherReplica(t, removed)
			onRemoved := payments.NewTools(svcRemoved, toolNames, logs)
			q := call(t, onRemoved, u, "query_order", `{"order_no":"`+no+`"}`)
			if q.result["status"] != "paid" {
				t.Errorf("query_order on the replica without the SKU: %s; want paid", q.out.Result)
			}
			rf := call(t, onRemoved, u, "request_refund", `{"order_no":"`+no+`","reason":"no longer needed"}`)
			if rf.result["status"] != "awaiting_user_confirmation" || rf.result["amount"] != "99.98 CNY" {
				t.Fatalf("request_refund on the replica without the SKU: %s; want 99.98 CNY awaiting confirmation", rf.out.Result)
			}
			id, _ := rf.result["refund_id"].(string)
			res, err := svcRemoved.ConfirmRefund(ctx, u.Client, u.User, id)
			if err != nil || res.Status != payments.RefundProcessing || res.Proposal.AmountFen != 9998 {
				t.Fatalf("confirm: %+v %v; want 9998 fen sent", res, err)
			}
			if d, err := e.sim.CompleteRefund(ctx, res.Proposal.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("complete: %+v %v", d, err)
			}
			if o := e.order(no); o.Status != store.StatusRefunded || o.RefundedFen != 9998 {
				t.Errorf("after the refund: %s, %d fen refunded; want refunded, 9998", o.Status, o.RefundedFen)
			}
		})
	}
}

// TestHeldOrderOfARemovedSKU: an order of 11 × 49.99 waits for a manager;
// the SKU is then taken out of the catalog. A replica started without it
// takes the manager's yes: the order opens at the held amount, once at
// WeChat Pay, and is paid.
func TestHeldOrderOfARemovedSKU(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			rules := payments.Rules{ApprovalAboveFen: payments.FenPtr(50000)}
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { o.Rules = rules }})
			ctx := context.Background()
			a, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-held-removed", SKU: "premium-monthly", Quantity: 11})
			if err != nil || a.Order.Status != store.StatusApprovalRequired {
				t.Fatalf("create: %+v %v; want it held", a, err)
			}
			other := replicaWith(t, e, catalogOf(t, payments.CatalogItem{SKU: "tip", Name: "Tip", Price: "0.01"}), rules)
			res, err := other.Approve(ctx, a.Order.OrderNo)
			if err != nil || res.Order.Status != store.StatusAwaitingPayment || res.Order.AmountFen != 54989 {
				t.Fatalf("approve on the replica without the SKU: %+v %v; want awaiting_payment at 54989 fen", res, err)
			}
			if tx, ok := e.sim.Order(a.Order.OrderNo); !ok || tx.Amount.Total != 54989 || e.sim.Prepays(a.Order.OrderNo) != 1 {
				t.Fatalf("at WeChat Pay: %+v (known %v), %d prepay(s); want one of 54989 fen", tx.Amount, ok, e.sim.Prepays(a.Order.OrderNo))
			}
			if d, err := e.sim.Pay(ctx, a.Order.OrderNo); err != nil || !d.Acked {
				t.Fatalf("pay: %+v %v", d, err)
			}
			if o := e.order(a.Order.OrderNo); o.Status != store.StatusPaid {
				t.Errorf("after payment: %s; want paid", o.Status)
			}
		})
	}
}
