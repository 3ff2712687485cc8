package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestExpiryCloseAnsweredPaidQueriesOnce: the close of an expired order
// answered ORDERPAID while the query after it still says NOTPAY (WeChat
// Pay's replicas are eventually consistent). The expiry closed again on
// that NOTPAY, was answered ORDERPAID again, and so on: a loop of close and
// query requests until the sweep's deadline, or until WeChat Pay rate
// limited the merchant. The contradiction now leaves the order open, for
// the next reconciliation, after one close.
func TestExpiryCloseAnsweredPaidQueriesOnce(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{driver: driver})
			o := e.create("oUser-close-paid-lag", 1)
			e.clock.Advance(o.ExpiresAt.Sub(time.Now()) + time.Minute)
			e.sim.InjectFault(wxsim.Fault{Op: "close", Kind: wxsim.FaultOrderPaidUnseen, Times: 20})

			st, _ := e.svc.Sweep(ctx)
			closes := 0
			for _, r := range e.sim.Requests() {
				if r.Op == "close" && r.OutTradeNo == o.OrderNo {
					closes++
				}
			}
			if closes != 1 {
				t.Errorf("%d closes sent by one sweep; want 1", closes)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment || st.Checked != 1 {
				t.Errorf("order %s, sweep %+v; want awaiting_payment, checked and left for the next sweep", got.Status, st)
			}
		})
	}
}
