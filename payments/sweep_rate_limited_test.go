package payments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestSweepPassEndsWhenRateLimited: WeChat Pay answers the sweep's queries
// 429 FREQUENCY_LIMITED, asking the merchant to slow down. The pass ends
// at the first order so answered (its three attempts), the rest left to
// the next pass, which starts where this one stopped, so no order waits
// behind the ones before it for ever; once WeChat Pay answers again, a
// pass settles every order, those passed over included. The sweep went on
// querying every pending order three times over: 4 orders, 12 queries
// into a WeChat Pay asking for fewer.
func TestSweepPassEndsWhenRateLimited(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink"})
			var orders []*store.Order
			for i := range 4 {
				o := e.create(fmt.Sprintf("oUser-ratelimited-%d", i), 1)
				if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
					t.Fatal(err)
				}
				orders = append(orders, o)
			}
			e.clock.Advance(payments.DefaultActiveQueryAfter + time.Second)
			queried := asked(e, "query")

			e.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultFrequencyLimited, Times: 6})
			var passed []string
			for pass := 1; pass <= 2; pass++ {
				before := len(queried())
				st, err := e.svc.Sweep(ctx)
				if err != nil {
					t.Fatal(err)
				}
				q := queried()[before:]
				if !oneNumberThrice(q) || st.Errors != 1 || st.Changed != 0 {
					t.Fatalf("pass %d under 429: queried %v, %+v; want one order's three attempts, 1 error", pass, q, st)
				}
				passed = append(passed, q[0])
			}
			if passed[0] == passed[1] {
				t.Errorf("both passes stopped at %s; want the second to start past the first's", passed[0])
			}
			st, err := e.svc.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Changed != 4 || st.Errors != 0 {
				t.Errorf("pass once WeChat Pay answers: %+v; want 4 changed", st)
			}
			for _, o := range orders {
				if got := e.order(o.OrderNo).Status; got != store.StatusPaid {
					t.Errorf("order %s: %s; want paid", o.OrderNo, got)
				}
			}
		})
	}
}

// TestSweepRateLimitedCreatingLeavesAwaiting: WeChat Pay answers the
// query of an order a crash left `creating` FREQUENCY_LIMITED through its
// retries. That ends the pass of `creating` orders only: the orders
// awaiting payment, swept after them, are still queried in the same pass
// (one's own FREQUENCY_LIMITED ends theirs), so a `creating` order limited
// in every pass never keeps the payer's paid order from being found.
func TestSweepRateLimitedCreatingLeavesAwaiting(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{notifyTo: "sink"})
	awaiting := e.create("oUser-ratelimited-awaiting", 1)
	if _, err := e.sim.Pay(ctx, awaiting.OrderNo); err != nil {
		t.Fatal(err)
	}
	e.creatingOrder(payments.NewOrderNo(time.Now()), "oUser-ratelimited-creating", time.Minute)
	e.clock.Advance(payments.DefaultActiveQueryAfter + time.Second)
	e.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultFrequencyLimited, Times: 3})
	st, err := e.svc.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.order(awaiting.OrderNo).Status; got != store.StatusPaid || st.Errors != 1 {
		t.Errorf("order awaiting payment after a pass whose creating order's query was limited: %s, %+v; want paid, 1 error", got, st)
	}
}

// TestSweepRateLimitedGivesLeasesBack: replicas share Redis, and WeChat
// Pay answers one replica's first query FREQUENCY_LIMITED through its
// retries. That replica's pass ends there, and the leases it took for the
// page's orders (the one limited and those it did not reach) go back at
// once, so another replica's pass in the same interval queries them.
// Kept, they were held for an interval by a pass that asked about none
// of them.
func TestSweepRateLimitedGivesLeasesBack(t *testing.T) {
	ctx := context.Background()
	var opts payments.Options
	e := newEnv(t, envOptions{driver: "redis", notifyTo: "sink", storeClock: true,
		service: func(o *payments.Options) { opts = *o }})
	var orders []*store.Order
	for i := range 3 {
		o := e.create(fmt.Sprintf("oUser-ratelimited-lease-%d", i), 1)
		if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	other := otherReplica(t, opts)
	e.clock.Advance(payments.DefaultActiveQueryAfter + time.Second)
	e.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultFrequencyLimited, Times: 3})
	if st, err := e.svc.Sweep(ctx); err != nil || st.Checked != 1 || st.Errors != 1 {
		t.Fatalf("limited pass: %+v, %v; want 1 checked, 1 error", st, err)
	}
	e.clock.Advance(time.Second) // past the leases cut to a millisecond
	st, err := other.Sweep(ctx)
	if err != nil || st.Changed != 3 {
		t.Errorf("other replica's pass in the same interval: %+v, %v; want 3 changed", st, err)
	}
	for _, o := range orders {
		if got := e.order(o.OrderNo).Status; got != store.StatusPaid {
			t.Errorf("order %s: %s; want paid", o.OrderNo, got)
		}
	}
}

// TestSweepRateLimitedResumesAcrossPages: the sweep reads its orders two
// to a page, and WeChat Pay answers the first query of two passes
// FREQUENCY_LIMITED, ending each at another order. The pass after goes on
// past where the last ended, over its pages, and comes round to the
// newest, stopping at that order: each of the five orders awaiting
// payment (none paid, so each stays listed) is queried once, none twice,
// none left out.
func TestSweepRateLimitedResumesAcrossPages(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink"})
			payments.SetSweepPage(e.svc, 2)
			var orders []*store.Order
			for i := range 5 {
				orders = append(orders, e.create(fmt.Sprintf("oUser-ratelimited-page-%d", i), 1))
			}
			e.clock.Advance(payments.DefaultActiveQueryAfter + time.Second)
			for range 2 {
				e.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultFrequencyLimited, Times: 3})
				if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 1 {
					t.Fatalf("limited pass: %+v, %v; want 1 error", st, err)
				}
			}
			before := map[string]int{}
			for _, o := range orders {
				before[o.OrderNo] = simOps(e, "query", o.OrderNo)
			}
			if st, err := e.svc.Sweep(ctx); err != nil || st.Checked != 5 || st.Errors != 0 {
				t.Fatalf("pass once WeChat Pay answers: %+v, %v; want 5 checked", st, err)
			}
			for _, o := range orders {
				if n := simOps(e, "query", o.OrderNo) - before[o.OrderNo]; n != 1 {
					t.Errorf("order %s queried %d times in the pass; want once", o.OrderNo, n)
				}
			}
		})
	}
}

// asked returns a function listing, in order, the numbers e's simulator
// was asked about in requests of op: the out_refund_no of a refund's
// create or query, else the out_trade_no.
func asked(e *env, op string) func() []string {
	return func() []string {
		var nos []string
		for _, r := range e.sim.Requests() {
			if r.Op != op {
				continue
			}
			if r.OutRefundNo != "" {
				nos = append(nos, r.OutRefundNo)
			} else {
				nos = append(nos, r.OutTradeNo)
			}
		}
		return nos
	}
}

// oneNumberThrice reports whether nos is one number's three attempts: a
// call WeChat Pay answered FREQUENCY_LIMITED through the client's retries.
func oneNumberThrice(nos []string) bool {
	return len(nos) == 3 && nos[0] == nos[1] && nos[1] == nos[2]
}

// timesEach counts how many times each number is in nos.
func timesEach(nos []string) map[string]int {
	n := map[string]int{}
	for _, no := range nos {
		n[no]++
	}
	return n
}
