package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/countwait"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestReplicasPostEachEventOnce: two relays (two replicas) drain one store,
// polling every millisecond, while orders commit their transitions. The
// merchant holds the first POST of every event until both relays have
// claimed from the outbox a few times since it arrived (or until a second
// POST of the event arrives). Every event is POSTed exactly once, in order
// per order: neither a move from the intake (the order's queue, or a refund
// proposal's) nor a delivery is done twice.
func TestReplicasPostEachEventOnce(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			const relays, nOrders, claimsDuringPost = 2, 10, 3
			claims := countwait.New(relays)

			var mu sync.Mutex
			posts := map[string]int{}
			again := map[string]chan struct{}{}
			var order []struct{ orderNo, typ string }
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				id := gjson.GetBytes(body, "id").Str
				mu.Lock()
				posts[id]++
				n := posts[id]
				if again[id] == nil {
					again[id] = make(chan struct{})
				}
				ch := again[id]
				order = append(order, struct{ orderNo, typ string }{gjson.GetBytes(body, "data.order.order_no").Str, gjson.GetBytes(body, "type").Str})
				mu.Unlock()
				switch n {
				case 1:
					if !claims.AwaitMore(t, r.Context(), ch, claimsDuringPost, 20*time.Second) {
						t.Errorf("event %s: the relays did not claim %d times each while its POST was held", id, claimsDuringPost)
					}
				case 2:
					close(ch)
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()

			st := testdrivers.Open(t, driver, nil)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			var rs []*webhook.Relay
			for i := range relays {
				r := newRelay(t, claimCountingStore{Store: st, claimed: func() { claims.Add(i) }}, srv.URL, time.Now, func(o *webhook.Options) {
					// Room for every order's held POST and its moves: a relay
					// whose workers were all busy would stop claiming.
					o.PollInterval, o.Concurrency = time.Millisecond, 4*nOrders
				})
				rs = append(rs, r)
				wg.Go(func() { r.Run(ctx) })
			}

			ob := orders{t, st}
			var owg sync.WaitGroup
			for i := range nOrders {
				owg.Go(func() {
					o := ob.create(fmt.Sprintf("PREPL%s%03d", driver, i), store.StatusApprovalRequired)
					rs[i%relays].Wake()
					ob.move(o, store.StatusCreating, "approve")
					ob.move(o, store.StatusAwaitingPayment, "prepay")
					ob.move(o, store.StatusPaid, "notification")
					rs[(i+1)%relays].Wake()
					// The refund.proposed rides its proposal's own queue,
					// moved by either relay, yet in the order's sequence.
					p := &store.RefundProposal{RefundID: fmt.Sprintf("rf_repl%s%03d", driver, i), OrderNo: o.OrderNo, Client: o.Client, User: o.User,
						AmountFen: o.AmountFen, OutRefundNo: fmt.Sprintf("RFrepl%s%03d", driver, i)}
					if err := st.PutRefundProposal(context.Background(), p, 15*time.Minute,
						webhook.ProposalEvents(context.Background(), payments.ProposalMade, *p, o)...); err != nil {
						t.Error(err)
					}
					rs[i%relays].Wake()
					ob.move(o, store.StatusNeedsReview, "notification")
					rs[i%relays].Wake()
				})
			}
			owg.Wait()

			deadline := time.Now().Add(60 * time.Second)
			for {
				s, err := st.OutboxStats(context.Background())
				mu.Lock()
				n := len(posts)
				mu.Unlock()
				if err == nil && s.Pending == 0 && n == 4*nOrders {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 60s: %d events POSTed, outbox %+v %v; want %d POSTed and the outbox empty", n, s, err, 4*nOrders)
				}
				// Up to the deadline: the relays claim every millisecond.
				claims.AwaitMore(t, context.Background(), nil, 1, time.Until(deadline))
			}
			// A POST started from a claim made before the outbox drained
			// would have arrived after two more claims by each relay.
			if !claims.AwaitMore(t, context.Background(), nil, 2, 20*time.Second) {
				t.FailNow() // what was POSTed is not yet all there is
			}

			mu.Lock()
			defer mu.Unlock()
			for id, n := range posts {
				if n != 1 {
					t.Errorf("event %s POSTed %d times by %d relays; want once", id, n, relays)
				}
			}
			rank := map[string]int{webhook.TypeOrderApprovalRequired: 1, webhook.TypeOrderPaid: 2, webhook.TypeRefundProposed: 3, webhook.TypeOrderNeedsReview: 4}
			last := map[string]int{}
			for _, a := range order {
				if rank[a.typ] != last[a.orderNo]+1 {
					t.Errorf("%s: %s POSTed after the order's event %d; want them in commit order", a.orderNo, a.typ, last[a.orderNo])
				}
				last[a.orderNo] = rank[a.typ]
			}
		})
	}
}

// TestNotBuriedWhenDeliveredMeanwhile: the relay's last attempt at an event
// fails while another relay (whose POST got a 2xx after this one's lease ran
// out) acknowledged it: the event was delivered, so it is not kept as a
// dead letter nor reported given up.
func TestNotBuriedWhenDeliveredMeanwhile(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			st := testdrivers.Open(t, driver, nil)
			var r *webhook.Relay
			rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
				if nth == r.MaxAttempts()-1 {
					// The other relay's POST of it was answered 2xx first.
					if err := st.AckEvent(context.Background(), webhook.QueuePrefix+a.orderNo, a.id); err != nil {
						t.Errorf("AckEvent: %v", err)
					}
				}
				return http.StatusBadGateway
			})
			ob := orders{t, st}
			o := ob.create("PMEANWHILE"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			var results []webhook.Result
			var mu sync.Mutex
			r = newRelay(t, st, rc.URL, clk.Now, func(o *webhook.Options) {
				shortWindow(o)
				o.Observe = func(res webhook.Result) { mu.Lock(); results = append(results, res); mu.Unlock() }
			})
			runFor(t, r, clk, 6*time.Second)
			if n := len(rc.arrivals()); n != r.MaxAttempts() {
				t.Fatalf("%d POSTs; want %d", n, r.MaxAttempts())
			}
			mu.Lock()
			for _, res := range results {
				if res.Outcome == webhook.OutcomeGivenUp {
					t.Errorf("result %+v: an event delivered by another relay reported given up", res)
				}
			}
			mu.Unlock()
			if v := getAdminView(t, r); v.GivenUp != 0 || len(v.DeadLetters) != 0 {
				t.Errorf("given_up=%d dead letters %+v; want none", v.GivenUp, v.DeadLetters)
			}
			if s, err := st.OutboxStats(context.Background()); err != nil || s.Pending != 0 {
				t.Errorf("outbox %+v %v; want empty", s, err)
			}
		})
	}
}

// claimCountingStore reports each ClaimEvents of a relay once it returned.
type claimCountingStore struct {
	store.Store
	claimed func()
}

func (s claimCountingStore) ClaimEvents(ctx context.Context, kind string, now time.Time, lease time.Duration, limit int) ([]store.Event, error) {
	defer s.claimed()
	return s.Store.ClaimEvents(ctx, kind, now, lease, limit)
}
