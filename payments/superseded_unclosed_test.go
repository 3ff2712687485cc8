package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// lapsedClaimer holds caller A's record of its order until B is done, and
// fails A's write of that order as closed: A claimed the purchase and
// stalled past its claim's life, B started the purchase's next
// generation and made its order, and A, finding its claim moved on when
// it re-checks, cannot record its own order closed. afterLook: A stalls
// instead on the answer of its look for the purchase's open order
// (found none), before it makes its order: A's order is then made, and
// dated, no earlier than B's. aStalled is closed once A stalls. closes:
// A's close of its order is recorded.
type lapsedClaimer struct {
	fullStore
	aStalled  chan struct{}
	bDone     chan struct{}
	stalled   bool
	afterLook bool
	closes    bool
}

// stall holds A, the first time, until B is done.
func (l *lapsedClaimer) stall(ctx context.Context) {
	if callerOf(ctx) != "A" || l.stalled {
		return
	}
	l.stalled = true
	close(l.aStalled)
	<-l.bDone
}

func (l *lapsedClaimer) ListOrders(ctx context.Context, f store.OrderFilter) ([]*store.Order, error) {
	page, err := l.fullStore.ListOrders(ctx, f)
	if l.afterLook {
		l.stall(ctx)
	}
	return page, err
}

func (l *lapsedClaimer) CreateOrder(ctx context.Context, o *store.Order, ev ...store.Event) error {
	if !l.afterLook {
		l.stall(ctx)
	}
	return l.fullStore.CreateOrder(ctx, o, ev...)
}

func (l *lapsedClaimer) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	if callerOf(ctx) == "A" && !l.closes && expect == store.StatusCreating && o.Status == store.StatusClosed {
		return errStoreDown
	}
	return l.fullStore.UpdateOrder(ctx, o, expect, ev...)
}

// TestSupersededOrderLeftCreatingIsNotPrepaid: a claimer that stalled past
// its claim's life finds, when it re-checks, the purchase moved on to
// another caller's order, and closes its own before any prepay; when that
// close cannot be recorded, its order stays creating, and the sweep must
// not open it at WeChat Pay beside the order the purchase moved on to:
// one purchase, one order there, and the superseded order's count of the
// day's orders given back (limit 2: one more order today). The claimer
// may stall on its record (its order dated before the one the purchase
// moved on to) or before it makes its order (dated no earlier: judged by
// creation time alone, it was taken for no later order's and prepaid).
func TestSupersededOrderLeftCreatingIsNotPrepaid(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, stall := range []struct {
			name      string
			afterLook bool
		}{{"on its record", false}, {"before its order", true}} {
			t.Run(driver+"/"+stall.name, func(t *testing.T) {
				supersededNotPrepaid(t, driver, stall.afterLook)
			})
		}
	}
}

func supersededNotPrepaid(t *testing.T, driver string, afterLook bool) {
	var l *lapsedClaimer
	e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
		l = &lapsedClaimer{fullStore: o.Store.(fullStore), aStalled: make(chan struct{}), bDone: make(chan struct{}), afterLook: afterLook}
		o.Store = l
		o.Rules.MaxOrdersPerUserPerDay = 2
	}})
	user := "oUser-superseded-" + driver
	if afterLook {
		user += "-look"
	}
	rb, err := lapseClaimer(t, e, l, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
	if err != nil || rb.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("B: %+v, %v; want its order open", rb, err)
	}
	e.clock.Advance(payments.DefaultCreatingGrace + payments.DefaultActiveQueryAfter)
	if _, err := e.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.OrderCount(); got != 1 {
		t.Errorf("orders at WeChat Pay: %d; want 1 (the purchase's), not the superseded one too", got)
	}
	supersededAs(t, e, user, rb.Order.OrderNo, store.StatusClosed)
	oneMoreOrder(t, e, user)
}

// supersededAs checks that user has two orders, kept (B's, the purchase's)
// and A's, superseded and ended as want.
func supersededAs(t *testing.T, e *env, user, kept string, want store.OrderStatus) {
	t.Helper()
	mine, err := e.st.ListOrders(context.Background(), store.OrderFilter{Client: "shop-bot", User: user, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 2 {
		t.Errorf("%d orders of the purchase recorded; want 2 (A's, superseded, and B's)", len(mine))
	}
	for _, o := range mine {
		if o.OrderNo != kept && o.Status != want {
			t.Errorf("superseded order %s is %s; want %s", o.OrderNo, o.Status, want)
		}
	}
}

// lapseClaimer runs req as caller A, which stalls (l) past its claim's
// life, and meanwhile as caller B; it returns B's outcome once A is done.
func lapseClaimer(t *testing.T, e *env, l *lapsedClaimer, req payments.CreateRequest) (*payments.CreateResult, error) {
	t.Helper()
	a := make(chan error, 1)
	go func() {
		_, err := e.svc.CreateOrder(context.WithValue(context.Background(), callerKey{}, "A"), req)
		a <- err
	}()
	<-l.aStalled
	e.clock.Advance(payments.DefaultDedupeWindow + time.Second) // A's claim lapses
	rb, err := e.svc.CreateOrder(context.WithValue(context.Background(), callerKey{}, "B"), req)
	close(l.bDone)
	t.Logf("A: %v", <-a)
	return rb, err
}

// TestSupersededReplacementAcrossMidnightCountsOnce: a switch of pay
// method counts its replacement at 23:55 (day 1), closes the open order,
// and stalls past its claim's life before it makes the replacement;
// meanwhile, on day 2, the purchase's next ask makes the replacement,
// moving the switch's count to day 2. The stalled switch, resumed, moves
// its count to day 2 too, records its replacement and closes it on
// finding the purchase moved on: that moved count goes back with it.
// Kept, day 2 counted the one replacement twice, and the user, with one
// order that day, was refused a second.
func TestSupersededReplacementAcrossMidnightCountsOnce(t *testing.T) {
	var l *lapsedClaimer
	e := newEnv(t, envOptions{storeClock: true, service: func(o *payments.Options) {
		l = &lapsedClaimer{fullStore: o.Store.(fullStore), aStalled: make(chan struct{}), bDone: make(chan struct{}), afterLook: true, closes: true}
		o.Store = l
		o.Rules.MaxOrdersPerUserPerDay = 2
	}})
	cst := time.FixedZone("CST", 8*3600)
	now := time.Now()
	y, m, d := now.In(cst).Date()
	e.clock.Advance(time.Date(y, m, d+1, 0, 0, 0, 0, cst).Add(-5 * time.Minute).Sub(now)) // 23:55 China time
	const user = "oUser-superseded-switch-midnight"
	ctx := context.Background()
	if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"}); err != nil {
		t.Fatal(err)
	}
	native := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native"}
	a := make(chan error, 1)
	go func() {
		_, err := e.svc.CreateOrder(context.WithValue(ctx, callerKey{}, "A"), native)
		a <- err
	}()
	<-l.aStalled
	e.clock.Advance(payments.DefaultDedupeWindow + time.Second) // 00:05 on day 2, A's claim lapsed
	rb, err := e.svc.CreateOrder(context.WithValue(ctx, callerKey{}, "B"), native)
	close(l.bDone)
	t.Logf("A: %v", <-a)
	if err != nil || rb.Order.PayMethod != "native" || rb.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("B: %+v, %v; want the replacement open", rb, err)
	}
	mine, err := e.st.ListOrders(ctx, store.OrderFilter{Client: "shop-bot", User: user, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 3 {
		t.Errorf("%d orders recorded; want 3 (the switched one, B's replacement and A's, superseded)", len(mine))
	}
	oneMoreOrder(t, e, user)
}
