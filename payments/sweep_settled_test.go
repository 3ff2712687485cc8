package payments_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// listCounting counts the orders ListOrders hands the payments service.
type listCounting struct {
	payments.Store
	listed, calls int
}

func (c *listCounting) ListOrders(ctx context.Context, f store.OrderFilter) ([]*store.Order, error) {
	got, err := c.Store.ListOrders(ctx, f)
	c.listed += len(got)
	c.calls++
	return got, err
}

// TestSweepListsOnlyOpenOrders: a year at a busy merchant leaves the
// store with orders settled for good (paid, refunded, closed, expired,
// rejected) by the hundred thousand. The sweep runs every minute; it must
// read the orders it may act on (creating, awaiting_payment,
// approval_required, refunding, needs_review), through the status index,
// not page through every order. A sweep over many settled orders and a
// few open ones lists the open ones only. PAYGATE_SWEEP_SETTLED sets the
// number of settled orders (default 2000) to measure a larger store.
func TestSweepListsOnlyOpenOrders(t *testing.T) {
	settled := 2000
	if n, err := strconv.Atoi(os.Getenv("PAYGATE_SWEEP_SETTLED")); err == nil {
		settled = n
	}
	statuses := []store.OrderStatus{store.StatusPaid, store.StatusRefunded, store.StatusPartiallyRefunded,
		store.StatusClosed, store.StatusExpired, store.StatusRejected}
	open := []store.OrderStatus{store.StatusAwaitingPayment, store.StatusAwaitingPayment, store.StatusNeedsReview}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			var counting *listCounting
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", storeClock: true, service: func(o *payments.Options) {
				counting = &listCounting{Store: o.Store}
				o.Store = counting
			}})
			at := e.clock.Now().Add(-48 * time.Hour)
			put := func(i int, st store.OrderStatus) {
				o := &store.Order{
					OrderNo: fmt.Sprintf("PGSET%010d", i), Client: "shop-bot", AppID: e.sim.AppID(),
					User: fmt.Sprintf("oUser-settled-%d", i%97), SKU: "premium-monthly", Description: "Premium tier, 1 month",
					Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: st,
					CreatedAt: at, ExpiresAt: at.Add(30 * time.Minute).Truncate(time.Second),
				}
				if st != store.StatusAwaitingPayment && st != store.StatusExpired && st != store.StatusRejected {
					o.TransactionID, o.PaidAt = fmt.Sprintf("42000%023d", i), at
				}
				if st == store.StatusAwaitingPayment {
					o.CreatedAt = e.clock.Now() // not yet due for a query
					o.ExpiresAt = o.CreatedAt.Add(30 * time.Minute).Truncate(time.Second)
				}
				if err := e.st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			for i := range settled {
				put(i, statuses[i%len(statuses)])
			}
			for i, st := range open {
				put(settled+i, st)
			}
			start := time.Now()
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("one sweep with %d settled and %d open orders: %v, %d orders listed in %d pages", settled, len(open), time.Since(start), counting.listed, counting.calls)
			if counting.listed > len(open) {
				t.Errorf("a sweep listed %d orders; want at most the %d open ones, not the %d settled", counting.listed, len(open), settled)
			}
		})
	}
}
