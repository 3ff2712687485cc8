package payments_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestProposalOfACutConfirmationStaysListed: replica A reserves the order for
// the user's confirmation and dies before it spends it (nothing went to
// WeChat Pay). The proposal is still open and a tap on it goes on under A's
// reservation, so it must stay confirmable as the user API lists it
// (GET /v1/paygate/orders' refunds_proposed: open proposals the order is
// Confirmable for), the only place a bot whose SDK drops the paygate object
// (go-openai) finds the confirm button. It was left out as "a refund in
// progress": the user had no button for a refund nobody had sent, until the
// proposal expired and the sweep undid the reservation. A proposal another
// one holds the order for stays unlisted.
func TestProposalOfACutConfirmationStaysListed(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
			o := paidOrder(t, e, "oUser-cut-listed", 1) // 49.99
			p := propose(t, e, o, 0)
			other := propose(t, e, o, 1000)
			if _, err := a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("confirmation on A: %v; want it cut short", err)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusRefunding || got.RefundReservedBy != p.RefundID {
				t.Fatalf("after A died: order %s reserved by %q; want refunding, reserved by %s", got.Status, got.RefundReservedBy, p.RefundID)
			}
			open, err := e.svc.OpenRefunds(ctx, "shop-bot", o.User)
			if err != nil {
				t.Fatal(err)
			}
			listed := map[string]bool{}
			for _, q := range open {
				listed[q.RefundID] = e.svc.Confirmable(got, q)
			}
			if !listed[p.RefundID] {
				t.Errorf("the proposal the order is held for: confirmable %v among %d open; want listed", listed[p.RefundID], len(open))
			}
			if listed[other.RefundID] {
				t.Errorf("another proposal of the order held for %s is listed as confirmable", p.RefundID)
			}
			// What the listing offers is what a tap does: it goes through.
			res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("tap on the listed proposal: %v, %v; want processing", resStatus(res), err)
			}
			if open, _ := e.svc.OpenRefunds(ctx, "shop-bot", o.User); slices.ContainsFunc(open, func(q *store.RefundProposal) bool { return q.RefundID == p.RefundID }) {
				t.Errorf("the confirmed proposal is still open")
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("refunds at WeChat Pay: %d; want 1", n)
			}
		})
	}
}
