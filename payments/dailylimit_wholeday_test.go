package payments_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
)

// TestDailyCountLastsItsWholeDay: a day's order count is kept, by the
// store, until its day in Beijing has ended, however early in the day it
// began: a user at the limit from an order at 00:00:01 is still refused at
// 23:59:59 and may order again at the next midnight. A counter kept for
// less than a day from its first count (a TTL of 12 hours, say) let the
// user order again at midday.
func TestDailyCountLastsItsWholeDay(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 1
			}})
			y, m, d := e.clock.Now().In(cst).Date()
			e.clock.Advance(time.Date(y, m, d+1, 0, 0, 1, 0, cst).Sub(e.clock.Now())) // 00:00:01 tomorrow in Beijing
			ctx := context.Background()
			const user = "oUser-whole-day"
			order := func(qty int) error {
				_, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: qty})
				return err
			}
			if err := order(1); err != nil {
				t.Fatalf("00:00:01 in Beijing, the day's first order: %v", err)
			}
			e.clock.Advance(24*time.Hour - 3*time.Second)
			if got := e.clock.Now().In(cst); got.Hour() != 23 || got.Minute() != 59 {
				t.Fatalf("clock at %s; want 23:59:58 in Beijing", got)
			}
			if err := order(2); !errors.Is(err, payments.ErrDailyLimit) {
				t.Fatalf("23:59:58 in Beijing, the same day, a second order: %v; want ErrDailyLimit", err)
			}
			e.clock.Advance(3 * time.Second)
			if err := order(3); err != nil {
				t.Errorf("00:00:01 the next day in Beijing: %v; want the order made", err)
			}
		})
	}
}
