package payments_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// simOps counts the requests of op WeChat Pay received for orderNo.
func simOps(e *env, op, orderNo string) int {
	n := 0
	for _, l := range e.sim.Requests() {
		if l.Op == op && l.OutTradeNo == orderNo {
			n++
		}
	}
	return n
}

// leaseCalls counts the TakeLeases calls made of a store, and the keys
// they named.
type leaseCalls struct {
	payments.Store
	calls, keys atomic.Int64
}

func (l *leaseCalls) TakeLeases(ctx context.Context, holder string, keys []string, ttl time.Duration) ([]bool, error) {
	l.calls.Add(1)
	l.keys.Add(int64(len(keys)))
	return l.Store.TakeLeases(ctx, holder, keys, ttl)
}

// TestSweepOncePerIntervalAcrossReplicas: replicas sharing a store sweep
// each pending order once per sweep interval between them, not once each.
// Each replica swept every pending order on its own tick, so N replicas
// sent WeChat Pay N queries per pending order per interval, against the
// merchant's query rate. The replica that swept an order holds it for an
// interval; when it stops sweeping (it died), another takes the order once
// that lease has run out. An expired order swept by both at once is
// queried and closed at WeChat Pay once. The embedded store, its file one process's
// (SoleWriter), has no other replica: each sweep queries as before, and
// takes no lease. A sweep takes the leases of a page's due orders in one
// call, not one per order.
func TestSweepOncePerIntervalAcrossReplicas(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			sole := driver == "embedded"
			var opts payments.Options
			leases := &leaseCalls{}
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", storeClock: true,
				service: func(o *payments.Options) {
					o.SoleWriter = sole
					leases.Store = o.Store
					o.Store = leases
					opts = *o
				}})
			ctx := context.Background()
			sweep := func(svc *payments.Service) {
				t.Helper()
				if st, err := svc.Sweep(ctx); err != nil || st.Errors != 0 {
					t.Fatalf("sweep: %+v, %v", st, err)
				}
			}
			o := e.create("oUser-sweep-lease", 1)
			e.clock.Advance(10 * time.Second)
			if sole {
				// One process: every sweep of it queries, as before.
				sweep(e.svc)
				sweep(e.svc)
				if n := simOps(e, "query", o.OrderNo); n != 2 {
					t.Errorf("queries after two sweeps of the sole writer: got %d; want 2", n)
				}
				if n := leases.calls.Load(); n != 0 {
					t.Errorf("lease calls of the sole writer's sweeps: got %d; want none", n)
				}
				return
			}
			other := otherReplica(t, opts)
			sweep(e.svc)
			sweep(other)
			if n := simOps(e, "query", o.OrderNo); n != 1 {
				t.Fatalf("queries after a sweep on each of two replicas within an interval: got %d; want 1", n)
			}
			// The next interval: the replica that swept it sweeps it again,
			// once.
			e.clock.Advance(payments.DefaultSweepInterval)
			sweep(e.svc)
			sweep(other)
			if n := simOps(e, "query", o.OrderNo); n != 2 {
				t.Fatalf("queries after the next interval's sweeps: got %d; want 2", n)
			}
			// e.svc dies: other takes the order once e.svc's lease has
			// run out, not before.
			e.clock.Advance(payments.DefaultSweepInterval / 2)
			sweep(other)
			if n := simOps(e, "query", o.OrderNo); n != 2 {
				t.Fatalf("queries while the dead replica's lease is live: got %d; want 2", n)
			}
			e.clock.Advance(payments.DefaultSweepInterval / 2)
			sweep(other)
			if n := simOps(e, "query", o.OrderNo); n != 3 {
				t.Fatalf("queries once the dead replica's lease ran out: got %d; want 3", n)
			}

			// An order past its deadline, swept by both replicas at once:
			// closed at WeChat Pay once, recorded expired once.
			x := e.create("oUser-sweep-lease-expired", 1)
			e.clock.Advance(payments.DefaultOrderTTL + time.Minute)
			var wg sync.WaitGroup
			for _, svc := range []*payments.Service{e.svc, other} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := svc.Sweep(ctx); err != nil {
						t.Errorf("sweep: %v", err)
					}
				}()
			}
			wg.Wait()
			if got := e.order(x.OrderNo); got.Status != store.StatusExpired {
				t.Errorf("expired order after the sweeps: %s; want expired", got.Status)
			}
			if q, c := simOps(e, "query", x.OrderNo), simOps(e, "close", x.OrderNo); q != 1 || c != 1 {
				t.Errorf("expired order: %d queries, %d closes at WeChat Pay; want 1 and 1", q, c)
			}

			// Two orders due, on one page: one lease call for both.
			e.create("oUser-sweep-lease-a", 1)
			e.create("oUser-sweep-lease-b", 1)
			e.clock.Advance(10 * time.Second)
			calls, keys := leases.calls.Load(), leases.keys.Load()
			sweep(e.svc)
			if c, k := leases.calls.Load()-calls, leases.keys.Load()-keys; c != 1 || k != 2 {
				t.Errorf("lease calls of a sweep of two due orders: %d calls for %d keys; want 1 for 2", c, k)
			}
		})
	}
}

// TestLateRefundSweptOncePerIntervalAcrossReplicas: a refund whose
// notification is late is asked about once per sweep interval between
// replicas sharing a store, as a pending order is: each replica's sweep
// queried it on its own tick.
func TestLateRefundSweptOncePerIntervalAcrossReplicas(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, storeClock: true,
				service: func(o *payments.Options) { opts = *o }})
			other := otherReplica(t, opts)
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-late-refund", 1)
			p := propose(t, e, o, 0)
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm: %+v, %v; want processing", res, err)
			}
			refundQueries := func() int {
				n := 0
				for _, l := range e.sim.Requests() {
					if l.Op == "refund-query" {
						n++
					}
				}
				return n
			}
			e.clock.Advance(2 * time.Minute)
			for _, svc := range []*payments.Service{e.svc, other} {
				if st, err := svc.Sweep(ctx); err != nil || st.Errors != 0 {
					t.Fatalf("sweep: %+v, %v", st, err)
				}
			}
			if n := refundQueries(); n != 1 {
				t.Errorf("queries of the late refund after a sweep on each of two replicas: got %d; want 1", n)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
				t.Errorf("order %s; want refunding, its refund processing", got.Status)
			}
		})
	}
}

// unreachable is a replica's WeChat Pay it cannot reach (a broken proxy, a
// partition): every query fails.
type unreachable struct{ payments.Backend }

func (unreachable) QueryRefund(context.Context, string) (*wechatpay.Refund, error) {
	return nil, errors.New("dial wechat pay: connection refused")
}

func (unreachable) QueryOrder(context.Context, string) (*wechatpay.Transaction, error) {
	return nil, errors.New("dial wechat pay: connection refused")
}

// TestSweepLeaseOfAFailedReconcileGoesToAnotherReplica: a replica whose
// reconcile of an order fails gives the order's sweep lease back, so the
// next replica's pass reconciles it. The failing replica renewed its own
// lease on every pass and failed on every pass, so while it lived no other
// replica ever asked about the order: a payment stayed unrecorded (the
// user told it is unpaid) for as long as one replica could not reach
// WeChat Pay.
func TestSweepLeaseOfAFailedReconcileGoesToAnotherReplica(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			testSweepLeaseOfAFailedReconcile(t, driver)
		})
	}
}

func testSweepLeaseOfAFailedReconcile(t *testing.T, driver string) {
	var opts payments.Options
	e := newEnv(t, envOptions{driver: driver, storeClock: true,
		service: func(o *payments.Options) {
			o.SoleWriter = false // two replicas on one store
			opts = *o
		}})
	ctx := context.Background()
	bOpts := opts
	bOpts.Backend = unreachable{opts.Backend}
	broken := otherReplica(t, bOpts)
	r := paidOrder(t, e, "oUser-sweep-lease-broken-refund", 1)
	p := propose(t, e, r, 0)
	if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", r.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
		t.Fatalf("confirm: %+v, %v; want processing", res, err)
	}
	e.clock.Advance(2 * time.Minute)
	o := e.create("oUser-sweep-lease-broken", 1)
	e.clock.Advance(10 * time.Second)
	for i := range 3 {
		// The broken replica ticks first, takes the order and fails it.
		st, err := broken.Sweep(ctx)
		if err != nil || (i == 0 && st.Errors != 2) {
			t.Fatalf("sweep %d of the broken replica: %+v, %v; want two errors the first time", i, st, err)
		}
		// The healthy replica's tick comes a second after the broken one's.
		e.clock.Advance(time.Second)
		if _, err := e.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(payments.DefaultSweepInterval - time.Second)
	}
	if n := simOps(e, "query", o.OrderNo); n == 0 {
		t.Fatalf("queries by the healthy replica over three intervals: got 0; want some")
	}
	n := 0
	for _, l := range e.sim.Requests() {
		if l.Op == "refund-query" {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("refund queries by the healthy replica over three intervals: got 0; want some")
	}
}

// stopPoint is where a stalled replica's sweep is stopped: a call to it
// (WeChat Pay's query of an order or of a refund, the store's read of an
// order or of a refund record) waits, once armed, for its caller to give
// up, and reached has a value once one is made.
type stopPoint struct {
	at      string // "query", "close", "refund-query", "order-read" or "record-read"
	armed   atomic.Bool
	reached chan struct{}
}

func (p *stopPoint) stall(ctx context.Context, at string) error {
	if p.at != at || !p.armed.Load() {
		return nil
	}
	p.reached <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// stalled is a replica's WeChat Pay that answers no query at its stopPoint.
type stalled struct {
	payments.Backend
	*stopPoint
}

func (s stalled) QueryOrder(ctx context.Context, no string) (*wechatpay.Transaction, error) {
	if err := s.stall(ctx, "query"); err != nil {
		return nil, err
	}
	return s.Backend.QueryOrder(ctx, no)
}

func (s stalled) CloseOrder(ctx context.Context, no string) error {
	if err := s.stall(ctx, "close"); err != nil {
		return err
	}
	return s.Backend.CloseOrder(ctx, no)
}

func (s stalled) QueryRefund(ctx context.Context, no string) (*wechatpay.Refund, error) {
	if err := s.stall(ctx, "refund-query"); err != nil {
		return nil, err
	}
	return s.Backend.QueryRefund(ctx, no)
}

// stalledStore is a replica's store that answers no read at its stopPoint.
type stalledStore struct {
	payments.Store
	*stopPoint
}

func (s stalledStore) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	if err := s.stall(ctx, "order-read"); err != nil {
		return nil, err
	}
	return s.Store.GetOrder(ctx, no)
}

func (s stalledStore) GetExchange(ctx context.Context, key string) ([]byte, error) {
	if err := s.stall(ctx, "record-read"); err != nil {
		return nil, err
	}
	return s.Store.GetExchange(ctx, key)
}

// TestSweepStoppedGivesItsLeasesBack: a replica stopped (SIGTERM) in the
// middle of its sweep gives back the sweep leases of the orders it took
// and did not reconcile, the one in progress and those after it, so the
// next replica's pass takes them at once. They were held for the rest of
// the interval by a process that was gone: a payment whose notification
// was lost waited that much longer to be found, at every rolling deploy.
// The stop is no failure of the order either: none is logged or counted,
// in the sweep's stats or in paygate_reconcile_total, whether it lands on
// WeChat Pay's answer to a query or to the close of an expired order. So
// too for a late refund and a refund open on an order in review, whether
// the stop lands on WeChat Pay's answer or on the sweep's reading the
// order again.
func TestSweepStoppedGivesItsLeasesBack(t *testing.T) {
	tests := []struct {
		name string
		at   string
		kind string // "order", "expired", "refund" or "review"
	}{
		{name: "order query", at: "query", kind: "order"},
		{name: "expired order close", at: "close", kind: "expired"},
		{name: "refund query", at: "refund-query", kind: "refund"},
		{name: "refund in review query", at: "refund-query", kind: "review"},
		{name: "refund order read", at: "order-read", kind: "refund"},
		{name: "refund record read", at: "record-read", kind: "refund"},
		{name: "refund in review order read", at: "order-read", kind: "review"},
		{name: "refund in review record read", at: "record-read", kind: "review"},
	}
	for _, driver := range drivers(t) {
		if driver == "embedded" {
			continue // a sole writer takes no lease
		}
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				testSweepStopped(t, driver, tt.at, tt.kind)
			})
		}
	}
}

func testSweepStopped(t *testing.T, driver, at, kind string) {
	// The replica stopped is the env's (its registry, its log); the next
	// is another on the same store and WeChat Pay.
	var opts payments.Options
	sp := &stopPoint{at: at, reached: make(chan struct{}, 2)}
	e := newEnv(t, envOptions{driver: driver, storeClock: true,
		service: func(o *payments.Options) {
			o.SoleWriter = false // two replicas on one store
			opts = *o
			o.Backend = stalled{o.Backend, sp}
			o.Store = stalledStore{o.Store, sp}
		}})
	next := otherReplica(t, opts)
	ctx := context.Background()
	var (
		orders []*store.Order
		op     = "refund-query"
	)
	switch kind {
	case "order", "expired":
		op = at
		orders = []*store.Order{e.create("oUser-sweep-stopped-a", 1), e.create("oUser-sweep-stopped-b", 1)}
		if kind == "expired" {
			e.clock.Advance(payments.DefaultOrderTTL + time.Minute) // closed at WeChat Pay by the sweep
		} else {
			e.clock.Advance(10 * time.Second)
		}
	default:
		for _, user := range []string{"oUser-sweep-stopped-a", "oUser-sweep-stopped-b"} {
			o := paidOrder(t, e, user, 2)
			p := propose(t, e, o, 4999)
			if kind == "review" {
				// Another refund made on the merchant platform meanwhile:
				// the order goes to review, still held for this one.
				confirmThenReview(t, e, o, p, refundWord{outRefundNo: "RFmerchantplatform" + user[len(user)-1:], status: wechatpay.RefundSuccess, fen: 1000})
			} else if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirm: %v, %v; want processing", resStatus(res), err)
			}
			orders = append(orders, o)
		}
		e.clock.Advance(2 * time.Minute)
	}
	asked := func() int {
		n := 0
		for _, l := range e.sim.Requests() {
			if l.Op == op {
				n++
			}
		}
		return n
	}
	before, logged := asked(), len(e.logs.String())

	sp.armed.Store(true)
	stopCtx, stop := context.WithCancel(ctx)
	swept := make(chan error, 1)
	var stats payments.SweepStats
	go func() {
		var err error
		stats, err = e.svc.Sweep(stopCtx)
		swept <- err
	}()
	<-sp.reached // it holds both orders' leases, and is at the first
	stop()
	if err := <-swept; !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped sweep: %v; want it ended by the stop", err)
	}
	sp.armed.Store(false)
	if stats.Errors != 0 {
		t.Errorf("stopped sweep's stats: %+v; want no error", stats)
	}
	if n := e.counter("paygate_reconcile_total", map[string]string{"outcome": "error"}); n != 0 {
		t.Errorf("paygate_reconcile_total{outcome=\"error\"} after the stop: %v; want 0", n)
	}
	if l := e.logs.String()[logged:]; strings.Contains(l, "not reconciled") {
		t.Errorf("the stop logged as a failure:\n%s", l)
	}
	e.clock.Advance(time.Second) // the next replica's tick, a second on, not an interval
	if st, err := next.Sweep(ctx); err != nil || st.Errors != 0 {
		t.Fatalf("next replica's sweep: %+v, %v", st, err)
	}
	if n := asked() - before; n != len(orders) {
		t.Errorf("%s requests of the next replica's sweep, right after the stop: got %d; want %d, one for each order", op, n, len(orders))
	}
}

// TestSweepQueryTimedOutIsAFailure: a sweep's query of an order that
// WeChat Pay does not answer within BackgroundQueryTimeout is a failed
// reconcile, counted in the sweep's stats and paygate_reconcile_total and
// logged, its lease given back: its deadline is no stop of the sweep, whose
// cancelled calls alone count nothing (TestSweepStoppedGivesItsLeasesBack).
func TestSweepQueryTimedOutIsAFailure(t *testing.T) {
	for _, driver := range drivers(t) {
		if driver == "embedded" {
			continue // a sole writer takes no lease
		}
		t.Run(driver, func(t *testing.T) {
			sp := &stopPoint{at: "query", reached: make(chan struct{}, 2)}
			e := newEnv(t, envOptions{driver: driver, storeClock: true,
				service: func(o *payments.Options) {
					o.SoleWriter = false
					o.BackgroundQueryTimeout = time.Millisecond
					o.Backend = stalled{o.Backend, sp}
				}})
			e.create("oUser-sweep-timeout-a", 1)
			e.create("oUser-sweep-timeout-b", 1)
			e.clock.Advance(10 * time.Second)
			sp.armed.Store(true)
			st, err := e.svc.Sweep(context.Background())
			if err != nil || st.Errors != 2 {
				t.Fatalf("sweep whose queries timed out: %+v, %v; want two errors", st, err)
			}
			if n := e.counter("paygate_reconcile_total", map[string]string{"outcome": "error"}); n != 2 {
				t.Errorf("paygate_reconcile_total{outcome=\"error\"} after the timeouts: %v; want 2", n)
			}
			if !strings.Contains(e.logs.String(), "sweep: order not reconciled") {
				t.Errorf("the timeouts not logged:\n%s", e.logs.String())
			}
		})
	}
}
