package payments_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// gatedCounters holds IncrCounter of one key until released: an order
// read's look at the shared active query gap (askedElsewhere) caught in
// its store round trip.
type gatedCounters struct {
	payments.Store
	mu      sync.Mutex
	key     string
	entered chan struct{}
	release chan struct{}
}

func (g *gatedCounters) arm(key string) {
	g.mu.Lock()
	g.key, g.entered, g.release = key, make(chan struct{}), make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedCounters) IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	g.mu.Lock()
	armed := g.key != "" && key == g.key
	entered, release := g.entered, g.release
	if armed {
		g.key = ""
	}
	g.mu.Unlock()
	if armed {
		close(entered)
		<-release
	}
	return g.Store.IncrCounter(ctx, key, ttl)
}

// TestUserMessageDoesNotJoinAReadLeftToAnotherReplica: the user's message
// queries a pending order itself even while an order read of the same
// replica is asking the store whether another replica queried it within
// the gap. Joined to that read, the message got the read's answer: none,
// the read leaving the order to the other replica's query, made before
// the user paid. A user whose mini-program polled as they said "I paid",
// their notification lost, was told the order still awaited payment
// although the message is the one thing the gap never holds back.
func TestUserMessageDoesNotJoinAReadLeftToAnotherReplica(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var opts payments.Options
			var gate *gatedCounters
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", storeClock: true,
				service: func(o *payments.Options) {
					o.ActiveQueryDeadline = 5 * time.Second
					opts = *o
					gate = &gatedCounters{Store: o.Store}
					o.Store = gate
				}})
			other := otherReplica(t, opts)
			ctx := context.Background()
			const user = "oUser-join-read"
			o := e.create(user, 1)
			e.clock.Advance(10 * time.Second)
			// The other replica's read queries: the order is unpaid, and
			// the gap is that replica's.
			if got, err := other.Order(ctx, "shop-bot", user, o.OrderNo); err != nil || got.Status != store.StatusAwaitingPayment {
				t.Fatalf("the other replica's read: got %v, %v; want awaiting_payment", got, err)
			}
			// The user pays; the notification does not come.
			if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
				t.Fatal(err)
			}
			// A read on this replica is asking the store about the gap as
			// the user's message arrives.
			gate.arm("active-query:" + o.OrderNo)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.svc.Order(ctx, "shop-bot", user, o.OrderNo); err != nil {
					t.Errorf("read: %v", err)
				}
			}()
			<-gate.entered
			stored, err := e.st.GetOrder(ctx, o.OrderNo)
			if err != nil {
				t.Fatal(err)
			}
			got := e.svc.RefreshPending(ctx, []*store.Order{stored})
			close(gate.release)
			wg.Wait()
			if got[0].Status != store.StatusPaid {
				t.Errorf("the user's message after paying, while a read was left to the other replica: got %s; want paid", got[0].Status)
			}
		})
	}
}
