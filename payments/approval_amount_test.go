package payments_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

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
			repriced, err := payments.NewCatalog([]payments.CatalogItem{
				{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "99.99", MaxQuantity: 12},
			})
			if err != nil {
				t.Fatal(err)
			}
			other, err := payments.New(payments.Options{
				Store: e.st, Backend: e.client, Notify: e.client.NotifyVerifier(), Catalog: repriced,
				MchID: e.sim.MchID(), AppID: e.sim.AppID(), Registerer: prometheus.NewRegistry(),
				Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: e.clock.Now, Rules: rules,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = other.Close() })
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
