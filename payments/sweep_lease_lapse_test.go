package payments_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
)

// slowQueries is a replica's WeChat Pay whose every order query takes
// took (on the env's clock); during the query of the order named by
// during, fn runs once (another replica's tick).
type slowQueries struct {
	payments.Backend
	clock  *offsetClock
	took   time.Duration
	during string
	once   sync.Once
	fn     func()
}

func (b *slowQueries) QueryOrder(ctx context.Context, no string) (*wechatpay.Transaction, error) {
	b.clock.Advance(b.took)
	if no == b.during {
		b.once.Do(b.fn)
	}
	return b.Backend.QueryOrder(ctx, no)
}

// TestSweepLeaseHeldWhileAPassRunsLong: a replica's pass takes the sweep
// leases of a page's due orders at once, for a sweep interval, and
// reconciles them one after the other. When the pass runs longer than the
// interval (many pending orders, a slow WeChat Pay), the leases of the
// orders it has not reached yet run out: another replica's tick took them
// and swept them, and this pass then swept them again, two replicas asking
// WeChat Pay about one order (closing it, sending its refund again) at
// once, against the merchant's query rate and what the leases are for. A
// pass whose leases are old renews each order's before reconciling it and
// leaves the order to the replica that took it meanwhile.
func TestSweepLeaseHeldWhileAPassRunsLong(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			var slow *slowQueries
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", storeClock: true,
				service: func(o *payments.Options) {
					o.SoleWriter = false // two replicas on one store
					opts = *o
					slow = &slowQueries{Backend: o.Backend, took: payments.DefaultSweepInterval * 2 / 3}
					o.Backend = slow
				}})
			slow.clock = e.clock
			ctx := context.Background()
			other := otherReplica(t, opts) // the plain backend
			oldest := e.create("oUser-sweep-lapse-1", 1)
			e.clock.Advance(time.Millisecond)
			middle := e.create("oUser-sweep-lapse-2", 1)
			e.clock.Advance(time.Millisecond)
			e.create("oUser-sweep-lapse-3", 1) // the newest
			e.clock.Advance(10 * time.Second)
			// The sweep goes newest first: while this replica queries the
			// middle order, two thirds of an interval per query, the
			// other replica's tick comes.
			slow.during = middle.OrderNo
			slow.fn = func() {
				if st, err := other.Sweep(ctx); err != nil || st.Errors != 0 {
					t.Errorf("the other replica's sweep: %+v, %v", st, err)
				}
			}
			if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
				t.Fatalf("sweep: %+v, %v", st, err)
			}
			// The middle order is this replica's while it queries it (its
			// lease renewed as it started); the oldest, whose lease had run
			// out, went to the other replica's tick and is left to it. (The
			// newest, queried here two thirds of an interval before the
			// other tick and not again in this pass, was rightly the other
			// replica's to take.)
			for _, o := range []string{middle.OrderNo, oldest.OrderNo} {
				if n := simOps(e, "query", o); n != 1 {
					t.Errorf("queries of %s by the two replicas' sweeps within one interval: got %d; want 1", o, n)
				}
			}
		})
	}
}

// TestSweepLeaseOutlastsAQueryOnAShortInterval: an operator may set
// payments.reconcile.sweep_interval as short as a second, and a sweep's
// query of one order may take up to BackgroundQueryTimeout (10s). The
// lease was taken for the interval alone, so it ran out while its holder
// was still asking WeChat Pay about the order, and the next replica's
// tick, an interval on, took the order and asked about it too (closed it,
// sent its refund again) beside the first. A lease lasts at least as long
// as a query can.
func TestSweepLeaseOutlastsAQueryOnAShortInterval(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			var slow *slowQueries
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", storeClock: true,
				service: func(o *payments.Options) {
					o.SoleWriter = false // two replicas on one store
					o.SweepInterval = 4 * time.Second
					opts = *o
					// A slow WeChat Pay: within the query timeout, longer
					// than an interval.
					slow = &slowQueries{Backend: o.Backend, took: 6 * time.Second}
					o.Backend = slow
				}})
			slow.clock = e.clock
			ctx := context.Background()
			other := otherReplica(t, opts)
			o := e.create("oUser-sweep-short-interval", 1)
			e.clock.Advance(10 * time.Second)
			slow.during = o.OrderNo
			slow.fn = func() {
				if st, err := other.Sweep(ctx); err != nil || st.Errors != 0 {
					t.Errorf("the other replica's sweep: %+v, %v", st, err)
				}
			}
			if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
				t.Fatalf("sweep: %+v, %v", st, err)
			}
			if n := simOps(e, "query", o.OrderNo); n != 1 {
				t.Errorf("queries of %s by the two replicas' sweeps while one asked: got %d; want 1", o.OrderNo, n)
			}
		})
	}
}
