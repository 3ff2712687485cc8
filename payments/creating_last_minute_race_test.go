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

// meanwhileBackend runs meanwhile once, after the next query WeChat Pay
// answered and before that answer reaches its caller: what another caller
// did while the answer was on its way.
type meanwhileBackend struct {
	*wechatpay.Client
	mu        sync.Mutex
	meanwhile func()
}

func (b *meanwhileBackend) QueryOrder(ctx context.Context, no string) (*wechatpay.Transaction, error) {
	tx, err := b.Client.QueryOrder(ctx, no)
	b.mu.Lock()
	f := b.meanwhile
	b.meanwhile = nil
	b.mu.Unlock()
	if f != nil {
		f()
	}
	return tx, err
}

// TestLastMinuteExpiryKeepsAnOrderPrepaidMeanwhile: the sweep finds an
// order left creating 62s before its deadline; WeChat Pay has no order
// under its number (ORDER_NOT_EXIST). While that answer is on its way the
// same purchase is asked again: that ask finds the order unknown too, with
// more than a minute to go, opens it at WeChat Pay (time_expire its
// expires_at), records it awaiting_payment and hands the user
// wx.requestPayment parameters. The sweep's answer arrives 5s later, in the
// order's last minute: it must not expire the order the user now holds
// parameters for. Expired here (its update took any pending order, an
// awaiting_payment one too) and left open at WeChat Pay, it took the
// user's payment 30s before the deadline they were shown, and that
// payment landed on an expired order.
func TestLastMinuteExpiryKeepsAnOrderPrepaidMeanwhile(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var b *meanwhileBackend
			e, simClock := justPaidEnvWith(t, driver, func(o *payments.Options) {
				o.OrderTTL = 3 * time.Minute
				b = &meanwhileBackend{Client: o.Backend.(*wechatpay.Client)}
				o.Backend = b
			})
			simClock.Store(true)
			req := payments.CreateRequest{Client: "shop-bot", User: "oUser-last-minute-race", SKU: "premium-monthly"}
			e.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultSystemError, Times: 3})
			res, err := e.svc.CreateOrder(ctx, req)
			if !errors.Is(err, payments.ErrPaymentUnavailable) || res == nil || res.Order.Status != store.StatusCreating {
				t.Fatalf("got %+v, %v; want the order kept creating and ErrPaymentUnavailable", res, err)
			}
			no := res.Order.OrderNo
			e.clock.Advance(res.Order.ExpiresAt.Sub(e.clock.Now()) - 62*time.Second)
			var again *payments.CreateResult
			var againErr error
			b.mu.Lock()
			b.meanwhile = func() {
				again, againErr = e.svc.CreateOrder(ctx, req)
				e.clock.Advance(5 * time.Second)
			}
			b.mu.Unlock()
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			if againErr != nil || again == nil || again.Order.OrderNo != no || again.Payment == nil {
				t.Fatalf("asked again meanwhile: %+v, %v; want order %s with its payment parameters", again, againErr, no)
			}
			got := e.order(no)
			if got.Status != store.StatusAwaitingPayment {
				t.Errorf("after the sweep: %s; want awaiting_payment (prepaid meanwhile, its parameters with the user)", got.Status)
			}
			e.clock.Advance(got.ExpiresAt.Sub(e.clock.Now()) - 30*time.Second)
			if _, err := e.sim.Pay(ctx, no); err != nil {
				t.Fatalf("pay 30s before the deadline: %v", err)
			}
			if st := e.order(no).Status; st != store.StatusPaid {
				t.Errorf("paid 30s before its expires_at: %s; want paid", st)
			}
		})
	}
}
