package payments_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// stalledRecord holds the first order record (the first caller's, between
// its claim and its record), tells when a read of that number found
// nothing, and asks orphaned of every other number recorded, as it is
// recorded.
type stalledRecord struct {
	fullStore
	svc      func() *payments.Service
	mu       sync.Mutex
	first    string
	held     chan struct{} // closed: the first record is held
	release  chan struct{}
	missed   chan struct{} // a read of the first number found nothing
	missOnce sync.Once
	orphaned map[string]bool // by number: orphaned when recorded
}

func (s *stalledRecord) CreateOrder(ctx context.Context, o *store.Order, events ...store.Event) error {
	s.mu.Lock()
	first := s.first == ""
	if first {
		s.first = o.OrderNo
	} else if o.OrderNo != s.first {
		s.orphaned[o.OrderNo] = payments.Orphaned(s.svc(), o.OrderNo)
	}
	s.mu.Unlock()
	if first {
		close(s.held)
		<-s.release
	}
	return s.fullStore.CreateOrder(ctx, o, events...)
}

func (s *stalledRecord) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	o, err := s.fullStore.GetOrder(ctx, no)
	s.mu.Lock()
	first := s.first
	s.mu.Unlock()
	if no == first && errors.Is(err, store.ErrNotFound) {
		s.missOnce.Do(func() { close(s.missed) })
	}
	return o, err
}

// TestNumberClaimedByAWaiterIsWorkedOn: a caller waiting for a purchase's
// claimed number to be recorded re-reads the claim, and when the claim has
// lapsed meanwhile it holds a new one under a number of its own, which it
// records and prepays. That number was not marked as worked on (work), so
// with the embedded store (SoleWriter) it counted as a dead process's from
// its claim to the caller's return: a third request for the purchase took
// it over at once, recording it as abandoned ("claimed order never
// recorded") under the caller, whose record then failed, and a sweep or a
// turn took its creating order for one to prepay again.
func TestNumberClaimedByAWaiterIsWorkedOn(t *testing.T) {
	var st *stalledRecord
	var e *env
	e = newEnv(t, envOptions{driver: "embedded", storeClock: true, service: func(o *payments.Options) {
		o.SoleWriter = true
		st = &stalledRecord{fullStore: o.Store.(fullStore), svc: func() *payments.Service { return e.svc },
			held: make(chan struct{}), release: make(chan struct{}), missed: make(chan struct{}), orphaned: map[string]bool{}}
		o.Store = st
	}})
	ctx := context.Background()
	req := payments.CreateRequest{Client: "shop-bot", User: "oUser-waiter-claim", SKU: "premium-monthly", Quantity: 1}
	first := make(chan error, 1)
	go func() {
		_, err := e.svc.CreateOrder(ctx, req)
		first <- err
	}()
	<-st.held // the first caller has claimed its number and not recorded it
	second := make(chan *payments.CreateResult, 1)
	go func() {
		res, err := e.svc.CreateOrder(ctx, req)
		if err != nil {
			t.Errorf("second caller: %v", err)
		}
		second <- res
	}()
	<-st.missed // the second caller waits for the first's number
	e.clock.Advance(payments.DefaultDedupeWindow + time.Minute)
	res := <-second
	close(st.release)
	<-first
	if res == nil {
		t.Fatal("second caller: no order")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.orphaned) == 0 {
		t.Fatalf("the second caller recorded no number of its own (order %s): the test did not reach the lapsed claim", res.Order.OrderNo)
	}
	for no, orphan := range st.orphaned {
		if orphan {
			t.Errorf("number %s was taken for a dead process's as its claimer recorded it", no)
		}
	}
}
