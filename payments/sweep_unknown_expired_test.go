package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestSweepExpiresAnOrderWeChatPayDoesNotKnowAsAnExpiry: an order awaiting
// payment past its deadline that WeChat Pay answers ORDER_NOT_EXIST for is
// expired as every other expiry is, cause "expire" (its audit record,
// paygate_transitions_total and paygate_reconcile_total{action="expire"}),
// not under the sweep's or a query's name.
func TestSweepExpiresAnOrderWeChatPayDoesNotKnowAsAnExpiry(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{driver: driver})
			o := e.creatingOrder(payments.NewOrderNo(e.clock.Now()), "oUser-expire-unknown", time.Hour)
			o.Status = store.StatusAwaitingPayment // prepaid, then unknown to WeChat Pay
			if err := e.st.UpdateOrder(ctx, o, store.StatusCreating); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			tr := e.await(func(tr payments.Transition) bool {
				return tr.After.OrderNo == o.OrderNo && tr.After.Status == store.StatusExpired
			})
			if tr.Cause != "expire" {
				t.Errorf("transition %s -> %s, cause %q; want cause expire", tr.Before.Status, tr.After.Status, tr.Cause)
			}
			if n := e.counter("paygate_reconcile_total", map[string]string{"action": "expire", "outcome": "expired"}); n != 1 {
				t.Errorf("paygate_reconcile_total{action=expire,outcome=expired} = %v; want 1", n)
			}
		})
	}
}
