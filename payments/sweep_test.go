package payments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestSweepReachesOrdersCreatedAtOneInstant: the sweeps page through each
// status with the exact cursor (CreatedAt and OrderNo of a page's last
// order). Paging by time alone skipped, on every sweep, the orders created at
// the same instant as a page's last one that did not fit on it, so a crashed
// creating order, an expired awaiting_payment one, a held one past its
// deadline or a refunding one whose notification was lost could stay so for
// ever. Here several orders of each swept status share one CreatedAt (with
// one just after and one just before), the page holds two, and one sweep must
// reach them all.
func TestSweepReachesOrdersCreatedAtOneInstant(t *testing.T) {
	const page, tied = 2, 5
	tests := []struct {
		status store.OrderStatus
		// want is where the sweep leaves such an order: unknown at WeChat
		// Pay and past expiry, past its approval deadline, refunding with no
		// refund record.
		want store.OrderStatus
	}{
		{store.StatusCreating, store.StatusExpired},
		{store.StatusAwaitingPayment, store.StatusExpired},
		{store.StatusApprovalRequired, store.StatusExpired},
		{store.StatusRefunding, store.StatusNeedsReview},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", storeClock: true})
			payments.SetSweepPage(e.svc, page)
			instant := e.clock.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
			var made []*store.Order
			for i, tt := range tests {
				for j, at := range append([]time.Time{instant.Add(time.Millisecond), instant.Add(-time.Millisecond)}, repeat(instant, tied)...) {
					o := &store.Order{
						OrderNo: fmt.Sprintf("PGTIE%d%02d%d", i, j, instant.UnixMilli()%1000000), Client: "shop-bot", AppID: e.sim.AppID(),
						User: fmt.Sprintf("oUser-tie-%d-%d", i, j), SKU: "premium-monthly", Description: "Premium tier, 1 month",
						Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: tt.status,
						CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(30 * time.Minute).Truncate(time.Second),
					}
					if tt.status == store.StatusRefunding {
						o.TransactionID, o.PaidAt = fmt.Sprintf("42000%023d", i*100+j), at
					}
					if err := e.st.CreateOrder(ctx, o); err != nil {
						t.Fatal(err)
					}
					made = append(made, o)
				}
			}
			// The store stamps UpdatedAt when it writes; refunding orders are
			// queried once their notification is a minute late.
			e.clock.Advance(2 * time.Minute)
			st, err := e.svc.Sweep(ctx)
			if err != nil || st.Errors != 0 {
				t.Fatalf("sweep: %+v, %v", st, err)
			}
			if st.Checked != len(made) {
				t.Errorf("checked %d orders; want %d", st.Checked, len(made))
			}
			for _, o := range made {
				want := tests[0].want
				for _, tt := range tests {
					if tt.status == o.Status {
						want = tt.want
					}
				}
				if got := e.order(o.OrderNo); got.Status != want {
					t.Errorf("%s %s created %s: got %s after the sweep; want %s", o.Status, o.OrderNo, o.CreatedAt.Format(time.RFC3339Nano), got.Status, want)
				}
			}
		})
	}
}

func repeat(t time.Time, n int) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = t
	}
	return out
}
