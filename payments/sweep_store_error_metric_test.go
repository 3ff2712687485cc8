package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// TestSweepCountsAnOrderItCouldNotRecordAsAnError: the sweep's errors are
// each counted in paygate_reconcile_total{outcome="error"} (README), also
// when WeChat Pay answered and the store did not take what it said (a
// payment found by the sweep, then a write the store refused): the sweep's
// line said errors 1 while the metric an operator alerts on stayed 0.
func TestSweepCountsAnOrderItCouldNotRecordAsAnError(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			l := newLifecycle(t, driver, "sink")
			o := l.create("oUser-sweep-store-error", 1)
			if _, err := l.sim.Pay(ctx, o.OrderNo); err != nil {
				t.Fatal(err)
			}
			l.clock.Advance(time.Minute) // past the active query gap
			l.st.down.Store(true)
			st, err := l.svc.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Errors != 1 {
				t.Fatalf("sweep: %+v; want 1 error", st)
			}
			if got := l.order(o.OrderNo).Status; got != store.StatusAwaitingPayment {
				t.Fatalf("order %s; want awaiting_payment, nothing written", got)
			}
			if n := l.counter("paygate_reconcile_total", map[string]string{"outcome": "error"}); n != 1 {
				t.Errorf("paygate_reconcile_total{outcome=error} = %v; want 1 (the sweep's 1 error)", n)
			}
		})
	}
}
