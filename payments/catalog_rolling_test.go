package payments_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestOnePurchaseOnTwoReplicasWithTwoPrices: mid rolling deploy one
// replica sells the monthly plan at 49.99, the other at 59.99, and the
// same purchase is asked on both at once (a bot's retry landing on the
// other replica). One order is made, once at WeChat Pay, at the price of
// the replica that created it, and both answers, and every later one on
// either replica, tell that order's amount.
func TestOnePurchaseOnTwoReplicasWithTwoPrices(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			replicas := []*payments.Service{e.svc, replicaWith(t, e, monthlyAt(t, "59.99"), payments.Rules{})}
			req := payments.CreateRequest{Client: "shop-bot", User: "oUser-two-prices", SKU: "premium-monthly", Quantity: 2}
			got := make([]*store.Order, len(replicas))
			errs := make([]error, len(replicas))
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, svc := range replicas {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res, err := svc.CreateOrder(ctx, req)
					errs[i] = err
					if res != nil {
						got[i] = res.Order
					}
				}()
			}
			close(start)
			wg.Wait()
			for i := range replicas {
				if errs[i] != nil || got[i] == nil {
					t.Fatalf("replica %d: %v, %+v", i, errs[i], got[i])
				}
			}
			no, fen := got[0].OrderNo, got[0].AmountFen
			if got[1].OrderNo != no || got[1].AmountFen != fen || (fen != 9998 && fen != 11998) {
				t.Fatalf("answers: %s at %d fen, %s at %d fen; want one order, at 9998 or 11998 fen", no, fen, got[1].OrderNo, got[1].AmountFen)
			}
			if tx, ok := e.sim.Order(no); !ok || tx.Amount.Total != fen || e.sim.Prepays(no) != 1 {
				t.Errorf("at WeChat Pay: %+v (known %v), %d prepay(s); want one of %d fen", tx.Amount, ok, e.sim.Prepays(no), fen)
			}
			for i, svc := range replicas {
				res, err := svc.CreateOrder(ctx, req)
				if err != nil || res.Order.OrderNo != no || res.Order.AmountFen != fen {
					t.Errorf("asked again on replica %d: %+v %v; want order %s at %d fen", i, res, err, no, fen)
				}
			}
			mine, err := e.st.ListOrders(ctx, store.OrderFilter{Client: req.Client, User: req.User})
			if err != nil || len(mine) != 1 {
				t.Errorf("the user's orders: %d (%v); want one", len(mine), err)
			}
		})
	}
}

// TestHeldOrderRepricedBelowTheLimit: 11 × 49.99 = 549.89 waits for a
// manager under approval_above 500.00; the price is then cut to 39.99
// (11 × = 439.89, under the limit). Asked again on the repriced replica it
// is the held order at 549.89, its message quoting no limit it is not
// above; once approval_ttl lapses without a decision, the same purchase is
// a new order at 439.89, payable at once.
func TestHeldOrderRepricedBelowTheLimit(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			rules := payments.Rules{ApprovalAboveFen: payments.FenPtr(50000), ApprovalTTL: time.Hour}
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) { o.Rules = rules }})
			u := caller("oUser-held-cut")
			first := call(t, newTools(e), u, "create_order", `{"sku":"premium-monthly","quantity":11}`)
			if first.result["status"] != "approval_required" || first.result["amount"] != "549.89 CNY" {
				t.Fatalf("create: %s; want 549.89 CNY held", first.out.Result)
			}
			tools := payments.NewTools(replicaWith(t, e, monthlyAt(t, "39.99"), rules), toolNames, nil)
			again := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":11}`)
			msg, _ := again.result["message"].(string)
			if again.result["status"] != "approval_required" || again.result["order_no"] != first.result["order_no"] ||
				again.result["amount"] != "549.89 CNY" || !strings.Contains(msg, "orders above 500.00 CNY") {
				t.Errorf("asked again on the repriced replica: %s; want the held order at 549.89 CNY, above 500.00", again.out.Result)
			}
			e.clock.Advance(rules.ApprovalTTL + time.Minute)
			later := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":11}`)
			if later.result["status"] != "awaiting_payment" || later.result["order_no"] == first.result["order_no"] || later.result["amount"] != "439.89 CNY" {
				t.Errorf("asked once the hold lapsed: %s; want a new order at 439.89 CNY, payable", later.out.Result)
			}
			no, _ := first.result["order_no"].(string)
			if o := e.order(no); o.Status != store.StatusExpired {
				t.Errorf("the held order: %s; want expired", o.Status)
			}
		})
	}
}
