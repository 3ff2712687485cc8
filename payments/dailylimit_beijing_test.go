package payments_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store/storetest"
)

// TestDailyLimitDayIsBeijingsDay: the day of max_orders_per_user_per_day
// is the calendar day in China Standard Time (README), as WeChat Pay's
// users live it: a user at the limit late in the evening in Beijing may
// order again just after Beijing's midnight (16:00 UTC, the same day in
// UTC), and not before it. A day in UTC (or the host's zone, or a rolling
// 24 hours) refused them until 08:00 the next morning.
func TestDailyLimitDayIsBeijingsDay(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	y, m, d := time.Now().In(cst).Date()
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, cst) // ahead, so orders do not expire at WeChat Pay
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := storetest.NewClock()
			clk.Advance(midnight.Add(-2 * time.Minute).Sub(clk.Now()))
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 1
				o.Now = clk.Now
			}})
			ctx := context.Background()
			const user = "oUser-beijing-day"
			order := func(qty int) error {
				_, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: qty})
				return err
			}
			if err := order(1); err != nil {
				t.Fatalf("23:58 in Beijing, the day's first order: %v", err)
			}
			clk.Advance(time.Minute)
			if err := order(2); !errors.Is(err, payments.ErrDailyLimit) {
				t.Fatalf("23:59 in Beijing, a second order: %v; want ErrDailyLimit", err)
			}
			clk.Advance(time.Minute + time.Second)
			if got := clk.Now().UTC(); got.Hour() != 16 {
				t.Fatalf("clock at %s; want just past 16:00 UTC", got)
			}
			if err := order(3); err != nil {
				t.Errorf("00:00:01 in Beijing (the same day in UTC), the new day's first order: %v; want it made", err)
			}
		})
	}
}
