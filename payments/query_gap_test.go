package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// queries counts the order queries WeChat Pay received for orderNo.
func queries(sim *wxsim.Server, orderNo string) int {
	n := 0
	for _, l := range sim.Requests() {
		if l.Op == "query" && l.OutTradeNo == orderNo {
			n++
		}
	}
	return n
}

// TestActiveQueryGap: a pending order is queried actively at most once per
// ActiveQueryAfter, however often order reads (query_order, or a
// mini-program polling GET /v1/paygate/orders) ask for it. Every read queried it, so a
// client polling every second while its user paid drove the merchant's
// query rate at WeChat Pay, which limits it per merchant, for nothing: the
// notification tells a payment at once. Once the gap has passed, the next
// read queries again and finds the payment. Each driver runs as it is
// deployed: the embedded one as the sole writer, Redis shared.
func TestActiveQueryGap(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", storeClock: true,
				service: func(o *payments.Options) {
					o.SoleWriter = driver == "embedded"
					// Room for every query to answer within the turn: one
					// past the deadline would be joined, not counted.
					o.ActiveQueryDeadline = 5 * time.Second
				}})
			ctx := context.Background()
			o := e.create("oUser-gap", 1)
			e.clock.Advance(10 * time.Second)
			for i := range 10 {
				got, err := e.svc.Order(ctx, "shop-bot", "oUser-gap", o.OrderNo)
				if err != nil || got.Status != store.StatusAwaitingPayment {
					t.Fatalf("read %d: got %v, %v; want awaiting_payment", i, got, err)
				}
			}
			if n := queries(e.sim, o.OrderNo); n != 1 {
				t.Errorf("queries of one order read 10 times within the gap: got %d; want 1", n)
			}

			// The user pays; the notification is refused. Within the gap
			// the order reads as stored; past it, one query finds the
			// payment.
			if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
				t.Fatal(err)
			}
			if got, _ := e.svc.Order(ctx, "shop-bot", "oUser-gap", o.OrderNo); got.Status != store.StatusAwaitingPayment {
				t.Errorf("within the gap: got %s; want the stored awaiting_payment", got.Status)
			}
			e.clock.Advance(payments.DefaultActiveQueryAfter)
			if got, _ := e.svc.Order(ctx, "shop-bot", "oUser-gap", o.OrderNo); got.Status != store.StatusPaid {
				t.Errorf("past the gap: got %s; want paid", got.Status)
			}
			if n := queries(e.sim, o.OrderNo); n != 2 {
				t.Errorf("queries: got %d; want 2", n)
			}
		})
	}
}

// TestActiveQueryGapAcrossReplicas: replicas sharing a store share the gap,
// so that a client's polls spread over replicas by a load balancer do not
// query the order once per replica.
func TestActiveQueryGapAcrossReplicas(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", storeClock: true,
				service: func(o *payments.Options) {
					o.ActiveQueryDeadline = 5 * time.Second
					opts = *o
				}})
			other := otherReplica(t, opts)
			ctx := context.Background()
			o := e.create("oUser-gap-replicas", 1)
			e.clock.Advance(10 * time.Second)
			for i, svc := range []*payments.Service{e.svc, other, other, e.svc} {
				if got, err := svc.Order(ctx, "shop-bot", "oUser-gap-replicas", o.OrderNo); err != nil || got.Status != store.StatusAwaitingPayment {
					t.Fatalf("read %d: got %v, %v; want awaiting_payment", i, got, err)
				}
			}
			if n := queries(e.sim, o.OrderNo); n != 1 {
				t.Errorf("queries from two replicas within the gap: got %d; want 1", n)
			}
			e.clock.Advance(payments.DefaultActiveQueryAfter)
			if _, err := other.Order(ctx, "shop-bot", "oUser-gap-replicas", o.OrderNo); err != nil {
				t.Fatal(err)
			}
			if n := queries(e.sim, o.OrderNo); n != 2 {
				t.Errorf("queries past the gap: got %d; want 2", n)
			}
		})
	}
}

// TestUserMessageQueriesWithinGap: the user's message (a turn's payment
// state, RefreshPending) queries a pending order even when an order read
// queried it less than ActiveQueryAfter ago (SPEC 2.4: on the user's next
// message). Held by the gap, a user who paid while their mini-program
// polled the order, or just after their previous message, and whose
// notification was late or lost, said "I paid" and was told the order
// still awaited payment until the gap ran out. Order reads keep the gap.
func TestUserMessageQueriesWithinGap(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", storeClock: true,
				service: func(o *payments.Options) {
					o.SoleWriter = driver == "embedded"
					o.ActiveQueryDeadline = 5 * time.Second
				}})
			ctx := context.Background()
			o := e.create("oUser-gap-message", 1)
			e.clock.Advance(10 * time.Second)
			// The mini-program polls: one query, the order unpaid.
			if got, err := e.svc.Order(ctx, "shop-bot", "oUser-gap-message", o.OrderNo); err != nil || got.Status != store.StatusAwaitingPayment {
				t.Fatalf("poll: got %v, %v; want awaiting_payment", got, err)
			}
			// The user pays; the notification does not come. Their
			// message, within the gap, queries and finds the payment.
			if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
				t.Fatal(err)
			}
			stored, err := e.st.GetOrder(ctx, o.OrderNo)
			if err != nil {
				t.Fatal(err)
			}
			got := e.svc.RefreshPending(ctx, []*store.Order{stored})
			if got[0].Status != store.StatusPaid {
				t.Errorf("the user's message within the gap after paying: got %s; want paid", got[0].Status)
			}
			// An order read within the gap still reads the order as stored
			// (now paid, by the message's query) without a query of its own.
			if _, err := e.svc.Order(ctx, "shop-bot", "oUser-gap-message", o.OrderNo); err != nil {
				t.Fatal(err)
			}
			if n := queries(e.sim, o.OrderNo); n != 2 {
				t.Errorf("queries: got %d; want 2 (the poll's, the message's)", n)
			}
		})
	}
}

// TestActiveQueryGapElsewhereEndsWithIt: a replica that left an order to
// another replica's query within the gap reads it as stored only until
// that gap ends, not for a whole gap of its own from its read. It held
// its own gap from the read, so a client whose polls a load balancer
// sent to it heard of a payment whose notification was lost up to twice
// query_after after it was made, every poll in between answered
// awaiting_payment.
func TestActiveQueryGapElsewhereEndsWithIt(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", storeClock: true,
				service: func(o *payments.Options) {
					o.ActiveQueryDeadline = 5 * time.Second
					opts = *o
				}})
			other := otherReplica(t, opts)
			ctx := context.Background()
			const user = "oUser-gap-elsewhere"
			o := e.create(user, 1)
			e.clock.Advance(10 * time.Second)
			if _, err := e.svc.Order(ctx, "shop-bot", user, o.OrderNo); err != nil {
				t.Fatal(err)
			}
			// Late in the first replica's gap, the other reads it as
			// stored (the first replica asked).
			e.clock.Advance(payments.DefaultActiveQueryAfter - time.Second)
			if got, err := other.Order(ctx, "shop-bot", user, o.OrderNo); err != nil || got.Status != store.StatusAwaitingPayment {
				t.Fatalf("within the first replica's gap: got %v, %v; want awaiting_payment", got, err)
			}
			if n := queries(e.sim, o.OrderNo); n != 1 {
				t.Fatalf("queries within the gap: got %d; want 1", n)
			}
			// The user pays; the notification does not come. Past the
			// first replica's gap, the other replica's next read queries.
			if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(2 * time.Second)
			if got, err := other.Order(ctx, "shop-bot", user, o.OrderNo); err != nil || got.Status != store.StatusPaid {
				t.Errorf("past the first replica's gap: got %v, %v; want paid", got, err)
			}
		})
	}
}
