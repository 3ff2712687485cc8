package payments_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestRepeatInLastMinuteRenewsOrder: the purchase asked again (SPEC 4:
// the same order back) less than a minute before its order's deadline got
// that order with payment parameters that die within seconds: WeChat Pay
// gives a payer at most until time_expire, so a user opening the sheet
// then was refused. Unless its payer is paying it (USERPAYING: handed
// back as it stands, ErrPayerPaying, never closed under them), the order
// is closed at WeChat Pay and the purchase's next generation opened with a
// full payment window (SPEC 4: closed → new out_trade_no); a payment
// racing the close ends as WeChat Pay says (ORDERPAID: already paid, no
// new order). With a minute or more left, or no order of the day left to
// the user (the daily limit), the same order comes back.
func TestRepeatInLastMinuteRenewsOrder(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		left     time.Duration // before the order's deadline, at the repeat
		paying   bool
		limit    int // max_orders_per_user_per_day
		fault    *wxsim.Fault
		wantNew  bool
		wantErr  error
		wantOld  store.OrderStatus
		simState string // the old order at WeChat Pay
	}{
		{name: "a minute and more left", left: 61 * time.Second, wantOld: store.StatusAwaitingPayment, simState: "NOTPAY"},
		{name: "last minute", left: 30 * time.Second, wantNew: true, wantOld: store.StatusClosed, simState: "CLOSED"},
		{name: "last minute, payer paying", left: 30 * time.Second, paying: true, wantErr: payments.ErrPayerPaying, wantOld: store.StatusAwaitingPayment, simState: "NOTPAY"},
		{name: "last minute, day's orders used up", left: 30 * time.Second, limit: 1, wantOld: store.StatusAwaitingPayment, simState: "NOTPAY"},
		{name: "last minute, paid racing the close", left: 30 * time.Second, fault: &wxsim.Fault{Op: "close", Kind: wxsim.FaultOrderPaid}, wantOld: store.StatusPaid, simState: "SUCCESS"},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				var b *payingBackend
				e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
					b = &payingBackend{Client: o.Backend.(*wechatpay.Client)}
					o.Backend = b
					o.Rules.MaxOrdersPerUserPerDay = tt.limit
				}})
				user := "oUser-last-minute-repeat-" + driver
				old := e.create(user, 1)
				e.clock.Advance(old.ExpiresAt.Sub(e.clock.Now()) - tt.left)
				b.paying.Store(tt.paying)
				if tt.fault != nil {
					e.sim.InjectFault(*tt.fault)
				}
				res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1})
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Fatalf("repeat %s before the deadline: %v; want %v", tt.left, err, tt.wantErr)
				}
				if res == nil || res.Order == nil {
					t.Fatalf("repeat: no order")
				}
				if isNew := res.Order.OrderNo != old.OrderNo; isNew != tt.wantNew {
					t.Errorf("repeat answered order %s (%s), the old %s; want new %v", res.Order.OrderNo, res.Order.Status, old.OrderNo, tt.wantNew)
				}
				if tt.wantNew {
					if res.Order.Status != store.StatusAwaitingPayment || res.Payment == nil || res.Order.ExpiresAt.Sub(e.clock.Now()) < payments.DefaultOrderTTL-time.Second {
						t.Errorf("the new order: %s, payment %v, %s to its deadline; want awaiting_payment with parameters and a full window", res.Order.Status, res.Payment != nil, res.Order.ExpiresAt.Sub(e.clock.Now()))
					}
				}
				if got := e.order(old.OrderNo).Status; got != tt.wantOld {
					t.Errorf("the old order: %s; want %s", got, tt.wantOld)
				}
				if tx, _ := e.sim.Order(old.OrderNo); tx.TradeState != tt.simState {
					t.Errorf("the old order at WeChat Pay: %s; want %s", tx.TradeState, tt.simState)
				}
				if tt.wantOld == store.StatusPaid && res.Order.Status != store.StatusPaid {
					t.Errorf("answer %s; want the paid order (already paid)", res.Order.Status)
				}
				if n := e.sim.OrderCount(); n > 2 || (!tt.wantNew && n != 1) {
					t.Errorf("orders at WeChat Pay: %d; want %d", n, map[bool]int{true: 2, false: 1}[tt.wantNew])
				}
			})
		}
	}
}

// TestConcurrentRepeatsInLastMinuteMakeOneOrder: two asks for the purchase
// at once in its order's last minute close it once and open one next
// order between them: never two payable orders of one purchase.
func TestConcurrentRepeatsInLastMinuteMakeOneOrder(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			user := "oUser-last-minute-race-" + driver
			old := e.create(user, 1)
			e.clock.Advance(old.ExpiresAt.Sub(e.clock.Now()) - 20*time.Second)
			var wg sync.WaitGroup
			res := make([]*payments.CreateResult, 2)
			errs := make([]error, 2)
			for i := range res {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[i], errs[i] = e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 1})
				}()
			}
			wg.Wait()
			fresh := map[string]bool{}
			for i := range res {
				if errs[i] != nil && !errors.Is(errs[i], payments.ErrInProgress) {
					t.Errorf("ask %d: %v; want the next order or in progress", i, errs[i])
				}
				if res[i] != nil && res[i].Order != nil && res[i].Order.OrderNo != old.OrderNo {
					fresh[res[i].Order.OrderNo] = true
				}
			}
			if len(fresh) != 1 {
				t.Errorf("next orders answered: %v; want one", fresh)
			}
			orders, _, err := e.svc.UserOrders(ctx, "shop-bot", user, "", 0)
			if err != nil {
				t.Fatalf("orders: %v", err)
			}
			open := 0
			for _, o := range orders {
				if payments.Pending(o.Status) {
					open++
				}
			}
			if open != 1 || e.sim.OrderCount() != 2 {
				t.Errorf("open orders of the purchase: %d, orders at WeChat Pay: %d; want 1 and 2", open, e.sim.OrderCount())
			}
			if got := e.order(old.OrderNo).Status; got != store.StatusClosed {
				t.Errorf("the old order: %s; want closed", got)
			}
		})
	}
}
