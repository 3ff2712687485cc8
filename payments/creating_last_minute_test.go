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

// TestCreatingOrderNotOpenedInItsLastMinute: an order left creating whose
// prepay never reached WeChat Pay, found by the sweep with less than a
// minute to its deadline, is not opened there then. WeChat Pay raises a
// time_expire under a minute after the order is placed to that minute, so
// the order it opened stayed payable past the expires_at the user was shown
// and past the end of its payment parameters here: a payer who paid 30s
// after that deadline was taken (recorded paid, or, had the sweep expired
// it first, needs_review as paid_after_expired), where WeChat Pay refuses
// every other order's payer at its expires_at.
func TestCreatingOrderNotOpenedInItsLastMinute(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			// A 3 minute order, so that WeChat Pay's clock can be the env's
			// throughout: it refuses requests signed more than 5 minutes
			// off its own.
			e, simClock := justPaidEnvWith(t, driver, func(o *payments.Options) { o.OrderTTL = 3 * time.Minute })
			simClock.Store(true)
			e.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultSystemError, Times: 3})
			res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-creating-last-minute", SKU: "premium-monthly"})
			if !errors.Is(err, payments.ErrPaymentUnavailable) || res == nil || res.Order.Status != store.StatusCreating {
				t.Fatalf("got %+v, %v; want the order kept creating and ErrPaymentUnavailable", res, err)
			}
			no := res.Order.OrderNo
			// 20 seconds before its deadline, the sweep finds it.
			e.clock.Advance(res.Order.ExpiresAt.Sub(e.clock.Now()) - 20*time.Second)
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			got := e.order(no)
			p, code, _ := e.svc.PayableParams(ctx, got)
			// 30 seconds past the deadline the user was shown, the payer
			// (holding parameters the sweep's prepay would have given)
			// pays at WeChat Pay.
			e.clock.Advance(30 * time.Second)
			_, payErr := e.sim.Pay(ctx, no)
			if payErr == nil {
				t.Errorf("WeChat Pay took a payment 30s after the order's expires_at %s (the sweep left it %s, payable %v %q); want none possible",
					got.ExpiresAt.UTC().Format(time.RFC3339), got.Status, p != nil, code)
			}
			if st := e.order(no).Status; st == store.StatusNeedsReview || st == store.StatusPaid {
				t.Errorf("order %s after a payment past its deadline; want it never payable", st)
			}
			if got.Status != store.StatusExpired {
				t.Errorf("after the sweep in the last minute: %s; want expired (never opened at WeChat Pay)", got.Status)
			}
		})
	}
}
