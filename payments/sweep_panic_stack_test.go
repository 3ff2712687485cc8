package payments_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// panicOnceList is a store whose first ListOrders panics: a bug outside
// any one order's reconcile, which only the sweeper's own recover catches.
type panicOnceList struct {
	payments.Store
	calls atomic.Int32
}

func (s *panicOnceList) ListOrders(ctx context.Context, f store.OrderFilter) ([]*store.Order, error) {
	if s.calls.Add(1) == 1 {
		var o *store.Order
		_ = o.OrderNo // nil dereference
	}
	return s.Store.ListOrders(ctx, f)
}

// TestSweepPanicLogsItsStack: a panic that ends a sweep pass is logged
// with its stack, as an order reconcile's panic is, so that an operator
// can report where it happened. It was logged with its value alone
// ("invalid memory address or nil pointer dereference"), which names no
// line of code, on every pass it recurred.
func TestSweepPanicLogsItsStack(t *testing.T) {
	var st *panicOnceList
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		st = &panicOnceList{Store: o.Store}
		o.Store = st
	}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one pass, then RunSweeper returns
	e.svc.RunSweeper(ctx)
	if st.calls.Load() == 0 {
		t.Fatal("the sweep listed no orders: the panic was not reached")
	}
	var line string
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, "sweep panicked") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no log line says the sweep panicked; log:\n%s", e.logs.String())
	}
	if !strings.Contains(line, `"stack"`) || !strings.Contains(line, "panicOnceList") {
		t.Errorf("the sweep's panic is logged without its stack: %s", line)
	}
}
