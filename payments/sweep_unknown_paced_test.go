package payments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestSweepUnknownOrderWarnPaced: WeChat Pay, restarted, knows none of 3
// orders awaiting payment, none past its deadline. The sweep's warning
// that such an order is unknown was written for each order on each pass
// until it expired (hours, a pass every sweep_interval). It is paced as
// the sweep's other warnings are: one line for the first pass, and one on
// the next pass past a minute saying how many were left out. Each is
// still counted (paygate_reconcile_total{action="sweep",
// outcome="not_found"}), and a user's own query keeps its line.
func TestSweepUnknownOrderWarnPaced(t *testing.T) {
	const n = 3
	const msg = "awaiting_payment order unknown to wechat pay"
	ctx := context.Background()
	e := newEnv(t, envOptions{notifyTo: "sink"})
	var orders []*store.Order
	for i := range n {
		o := e.creatingOrder(payments.NewOrderNo(e.clock.Now()), fmt.Sprintf("oUser-unknown-paced-%d", i), time.Minute)
		o.Status = store.StatusAwaitingPayment // prepaid, then unknown to WeChat Pay
		if err := e.st.UpdateOrder(ctx, o, store.StatusCreating); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	if st, err := e.svc.Sweep(ctx); err != nil || st.Checked != n || st.Changed != 0 || st.Errors != 0 {
		t.Fatalf("first pass: %+v, %v; want %d checked, none changed", st, err, n)
	}
	if w := logRecords(e.logs.String(), msg); len(w) != 1 {
		t.Errorf("first pass: %d warnings for %d unknown orders; want 1: %v", len(w), n, w)
	}
	logged := len(e.logs.String())
	e.clock.Advance(time.Minute)
	if st, err := e.svc.Sweep(ctx); err != nil || st.Checked != n {
		t.Fatalf("second pass: %+v, %v; want %d checked", st, err, n)
	}
	if w := logRecords(e.logs.String()[logged:], msg); len(w) != 1 || w[0]["suppressed"] != float64(n-1) {
		t.Errorf("second pass's warnings %v; want 1, saying %d were left out", w, n-1)
	}
	if got := e.counter("paygate_reconcile_total", map[string]string{"action": "sweep", "outcome": "not_found"}); got != 2*n {
		t.Errorf("paygate_reconcile_total{action=sweep,outcome=not_found} = %v; want %d", got, 2*n)
	}
	logged = len(e.logs.String())
	e.svc.RefreshPending(ctx, []*store.Order{e.order(orders[0].OrderNo)})
	if w := logRecords(e.logs.String()[logged:], msg); len(w) != 1 || w[0]["order_no"] != orders[0].OrderNo {
		t.Errorf("a user's query within the minute: warnings %v; want its own, naming %s", w, orders[0].OrderNo)
	}
}
