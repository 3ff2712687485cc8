package payments_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestExpiredCreatingOrderGivesBackItsCount: an order left creating whose
// prepay never reached WeChat Pay, found by the sweep past its deadline and
// unknown there, is recorded expired: WeChat Pay never opened it, so its
// count of the day's orders goes back, as a refused prepay's does. It kept
// it, and a user on a day limited to one order was refused a purchase
// though no order of theirs was ever opened.
func TestExpiredCreatingOrderGivesBackItsCount(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 1
			}})
			e.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultSystemError, Times: 3})
			const user = "oUser-creating-expired-count"
			res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
			if !errors.Is(err, payments.ErrPaymentUnavailable) || res == nil || res.Order.Status != store.StatusCreating {
				t.Fatalf("got %+v, %v; want the order kept creating and ErrPaymentUnavailable", res, err)
			}
			e.clock.Advance(payments.DefaultOrderTTL + time.Second)
			if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
				t.Fatalf("sweep: %+v, %v", st, err)
			}
			if got := e.order(res.Order.OrderNo); got.Status != store.StatusExpired {
				t.Fatalf("after the sweep: %s; want expired", got.Status)
			}
			if n := e.sim.OrderCount(); n != 0 {
				t.Fatalf("orders at the simulator: %d; want 0 (never opened)", n)
			}
			oneOrderLeft(t, e, user, 2)
		})
	}
}

// oneOrderLeft asserts that user, under a daily limit of one whose only
// order of the day came to nothing unopened, can still make one order
// (quantity q of premium-monthly, payable at once) and then no more.
func oneOrderLeft(t *testing.T, e *env, user string, q int) {
	t.Helper()
	ctx := context.Background()
	next, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: q})
	if err != nil {
		t.Fatalf("an order once the unopened one ended: %v; want it made (no order of today was opened)", err)
	}
	if next.Order.Status != store.StatusAwaitingPayment {
		t.Errorf("status %s; want awaiting_payment", next.Order.Status)
	}
	if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: q + 1}); !errors.Is(err, payments.ErrDailyLimit) {
		t.Errorf("a second opened order: %v; want ErrDailyLimit (the limit still counts real orders)", err)
	}
}
