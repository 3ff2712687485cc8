package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// queryOps counts the order queries sim was asked for.
func queryOps(sim *wxsim.Server) int {
	n := 0
	for _, r := range sim.Requests() {
		if r.Op == "query" {
			n++
		}
	}
	return n
}

// TestActiveQueryHeldBackAfterRateLimit: WeChat Pay limits a merchant's
// query rate (FREQUENCY_LIMITED, 429). Once it answered one of this
// replica's queries so, through the client's retries, a user's message
// within ActiveQueryAfter queried all the same: another call for WeChat
// Pay to refuse, and the turn waited its deadline for it. It now reads
// the order as stored (the turn goes on with what is known, as with a
// query past its deadline), and queries again once the gap has passed:
// a payment made meanwhile is found then.
func TestActiveQueryHeldBackAfterRateLimit(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", service: func(o *payments.Options) {
				o.ActiveQueryDeadline = 10 * time.Second // the turn waits for the limited query's end
			}})
			a := e.create("oUser-query-limited-a-"+driver, 1)
			b := e.create("oUser-query-limited-b-"+driver, 1)
			if _, err := e.sim.Pay(ctx, b.OrderNo); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(payments.DefaultActiveQueryAfter + time.Second)
			e.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultFrequencyLimited, Times: 3})
			if got := e.svc.RefreshPending(ctx, []*store.Order{a}); got[0].Status != store.StatusAwaitingPayment {
				t.Fatalf("limited query: %s; want awaiting_payment as stored", got[0].Status)
			}
			before := queryOps(e.sim)
			e.clock.Advance(time.Second)
			if got := e.svc.RefreshPending(ctx, []*store.Order{b}); got[0].Status != store.StatusAwaitingPayment {
				t.Errorf("a message a second after the limit: %s; want awaiting_payment as stored", got[0].Status)
			}
			if n := queryOps(e.sim) - before; n != 0 {
				t.Errorf("queries a message sent a second after WeChat Pay's FREQUENCY_LIMITED: %d; want 0", n)
			}
			e.clock.Advance(payments.DefaultActiveQueryAfter)
			if got := e.svc.RefreshPending(ctx, []*store.Order{b}); got[0].Status != store.StatusPaid {
				t.Errorf("a message once the gap passed: %s; want paid (queried)", got[0].Status)
			}
		})
	}
}
