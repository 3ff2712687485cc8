package payments_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// staleBackend loses the reply of the first prepay (it took effect at WeChat
// Pay) and holds the second until released: a sweep's re-prepay of a
// `creating` order that is slower than the user's own.
type staleBackend struct {
	*wechatpay.Client
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (b *staleBackend) Prepay(ctx context.Context, req wechatpay.PrepayRequest) (*wechatpay.PrepayResult, error) {
	switch b.calls.Add(1) {
	case 1:
		if _, err := b.Client.Prepay(ctx, req); err != nil {
			return nil, err
		}
		return nil, wechatpay.ErrTemporary // the reply was lost
	case 2:
		close(b.entered)
		<-b.release
	}
	return b.Client.Prepay(ctx, req)
}

// TestStaleRePrepayKeepsAMadeOrdersCount: an order WeChat Pay opened, whose
// payment parameters the user received, is later closed (here by a switch
// of pay method); a slower re-prepay of it, which WeChat Pay refuses
// (ORDER_CLOSED), gave its daily count back though the order was made, and
// the user made three orders on a day limited to two. Only a refusal of the
// order's parameters that this call closes the order for gives it back.
func TestStaleRePrepayKeepsAMadeOrdersCount(t *testing.T) {
	var b *staleBackend
	e := newEnv(t, envOptions{notifyTo: "sink", service: func(o *payments.Options) {
		b = &staleBackend{Client: o.Backend.(*wechatpay.Client), entered: make(chan struct{}), release: make(chan struct{})}
		o.Backend = b
		o.Rules.MaxOrdersPerUserPerDay = 2
	}})
	ctx := context.Background()
	req := payments.CreateRequest{Client: "shop-bot", User: "oUser-stale-reprepay", SKU: "premium-monthly"}
	if _, err := e.svc.CreateOrder(ctx, req); !errors.Is(err, payments.ErrPaymentUnavailable) {
		t.Fatalf("first ask: %v; want ErrPaymentUnavailable (reply lost)", err)
	}
	e.clock.Advance(payments.DefaultCreatingGrace + time.Second)
	swept := make(chan struct{})
	go func() { defer close(swept); _, _ = e.svc.Sweep(ctx) }()
	<-b.entered
	a, err := e.svc.CreateOrder(ctx, req)
	if err != nil || a.Order.Status != store.StatusAwaitingPayment || a.Payment == nil {
		t.Fatalf("the purchase asked again: %+v, %v; want it payable", a, err)
	}
	native := req
	native.PayMethod = "native"
	bres, err := e.svc.CreateOrder(ctx, native)
	if err != nil || bres.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("the switch: %+v, %v", bres, err)
	}
	close(b.release)
	<-swept
	if got := e.order(a.Order.OrderNo); got.Status != store.StatusClosed {
		t.Fatalf("A is %s; want closed", got.Status)
	}
	t.Logf("orders at the simulator: %d (A delivered to the user, B delivered)", e.sim.OrderCount())
	third, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: req.User, SKU: "premium-monthly", Quantity: 2})
	if !errors.Is(err, payments.ErrDailyLimit) {
		st := ""
		if third != nil && third.Order != nil {
			st = string(third.Order.Status)
		}
		t.Errorf("a third order on a day limited to two: %v (status %s), simulator holds %d orders; want ErrDailyLimit", err, st, e.sim.OrderCount())
	}
}

// firstCloseFails is WeChat Pay whose first close answers err (nil: a
// temporary failure); later closes go through.
type firstCloseFails struct {
	*wechatpay.Client
	err    error
	closes atomic.Int32
}

func (b *firstCloseFails) CloseOrder(ctx context.Context, no string) error {
	if b.closes.Add(1) == 1 {
		if b.err != nil {
			return b.err
		}
		return fmt.Errorf("close: %w", wechatpay.ErrTemporary)
	}
	return b.Client.CloseOrder(ctx, no)
}

// nativeRefusedBackend: the merchant's account takes no Native orders
// (WeChat Pay refuses their prepay for good), and the first close fails
// for the moment.
type nativeRefusedBackend struct{ firstCloseFails }

func (b *nativeRefusedBackend) Prepay(ctx context.Context, req wechatpay.PrepayRequest) (*wechatpay.PrepayResult, error) {
	if req.Method == wechatpay.MethodNative {
		return nil, fmt.Errorf("NO_AUTH: %w", wechatpay.ErrRejected)
	}
	return b.Client.Prepay(ctx, req)
}

// switchFailedBeforeMidnight sets a user's day up for the switch tests
// across China's midnight, under a daily limit of two: at 23:50 the user has
// an open JSAPI order A and asks to pay it by Native; the close of A fails
// (backend's first close), so the switch counted its replacement on day 1
// and A stays. The clock is then at 00:05 on day 2. tweak, if set, changes
// the service's options further (a store wrapper).
func switchFailedBeforeMidnight(t *testing.T, user string, backend func(*wechatpay.Client) payments.Backend, tweak func(*payments.Options)) (*env, *store.Order, payments.CreateRequest) {
	t.Helper()
	cst := time.FixedZone("CST", 8*3600)
	e := newEnv(t, envOptions{storeClock: true, service: func(o *payments.Options) {
		o.Backend = backend(o.Backend.(*wechatpay.Client))
		o.Rules.MaxOrdersPerUserPerDay = 2
		if tweak != nil {
			tweak(o)
		}
	}})
	now := time.Now()
	y, m, d := now.In(cst).Date()
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, cst)
	e.clock.Advance(midnight.Add(-10 * time.Minute).Sub(now)) // 23:50 China time
	ctx := context.Background()
	a, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
	if err != nil || a.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("A: %+v, %v", a, err)
	}
	native := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native"}
	if _, err := e.svc.CreateOrder(ctx, native); !errors.Is(err, payments.ErrPaymentUnavailable) {
		t.Fatalf("the switch on day 1: %v; want ErrPaymentUnavailable (close failed)", err)
	}
	e.clock.Advance(15 * time.Minute) // 00:05 on day 2
	return e, a.Order, native
}

// dayOrders makes the user's orders of quantities qty (a SKU of their own
// each), failing the test if one is not made.
func dayOrders(t *testing.T, e *env, user string, qty ...int) {
	t.Helper()
	for _, q := range qty {
		if _, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: q}); err != nil {
			t.Fatalf("order of %d: %v", q, err)
		}
	}
}

// oneMoreOrder asserts that exactly one more order of the user is made today.
func oneMoreOrder(t *testing.T, e *env, user string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 7}); err != nil {
		t.Errorf("an order with one of the day's two left: %v; want it made", err)
	}
	if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 8}); !errors.Is(err, payments.ErrDailyLimit) {
		t.Errorf("an order past the day's two: %v; want ErrDailyLimit", err)
	}
}

// openedPerDay counts the user's orders WeChat Pay opened (a prepay id or
// code URL) per China-time created_at day.
func openedPerDay(t *testing.T, e *env, user string) map[string][]string {
	t.Helper()
	cst := time.FixedZone("CST", 8*3600)
	mine, err := e.st.ListOrders(context.Background(), store.OrderFilter{Client: "shop-bot", User: user, Limit: store.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, o := range mine {
		if o.PrepayID != "" || o.CodeURL != "" {
			d := o.CreatedAt.In(cst).Format(time.DateOnly)
			out[d] = append(out[d], o.OrderNo+"/"+string(o.Status)+"/"+o.PayMethod)
		}
	}
	return out
}

// TestSwitchRetriedOnANewDayCountsThere: a switch whose close failed at
// 23:50 and is retried at 00:06 makes its replacement on day 2, so it is
// checked against day 2's limit. Reusing day 1's count, it opened a third
// order on a day 2 limited to two; at the limit it is refused and the user
// keeps A.
func TestSwitchRetriedOnANewDayCountsThere(t *testing.T) {
	const user = "oUser-switch-next-day"
	e, a, native := switchFailedBeforeMidnight(t, user, func(c *wechatpay.Client) payments.Backend { return &firstCloseFails{Client: c} }, nil)
	dayOrders(t, e, user, 2, 3)
	e.clock.Advance(time.Minute)
	if _, err := e.svc.CreateOrder(context.Background(), native); !errors.Is(err, payments.ErrDailyLimit) {
		t.Errorf("the switch retried on a full day 2: %v; want ErrDailyLimit", err)
	}
	if got := e.order(a.OrderNo); got.Status != store.StatusAwaitingPayment {
		t.Errorf("A is %s; want awaiting_payment (the user keeps it)", got.Status)
	}
	for day, os := range openedPerDay(t, e, user) {
		if len(os) > 2 {
			t.Errorf("%d orders WeChat Pay opened on %s under a limit of two: %v", len(os), day, os)
		}
	}
}

// TestRefusedReplacementGivesBackTheSwitchsCount: a switch's replacement,
// counted on day 2 where it is made, is refused by WeChat Pay: its count
// goes back to day 2. It used to go back to the day the switch was first
// counted on, or to a day that never counted it, leaving a day one order
// short or one over.
func TestRefusedReplacementGivesBackTheSwitchsCount(t *testing.T) {
	const user = "oUser-switch-midnight"
	e, _, native := switchFailedBeforeMidnight(t, user, func(c *wechatpay.Client) payments.Backend { return &nativeRefusedBackend{firstCloseFails{Client: c}} }, nil)
	dayOrders(t, e, user, 2)
	e.clock.Advance(time.Minute)
	if _, err := e.svc.CreateOrder(context.Background(), native); !errors.Is(err, payments.ErrPrepayRejected) {
		t.Fatalf("the switch retried on day 2: %v; want ErrPrepayRejected", err)
	}
	oneMoreOrder(t, e, user)
}

// lostThenRefusedNative: the merchant's account takes no Native orders. The
// first Native prepay never reaches WeChat Pay (a transport failure, outcome
// unknown to the caller); every later one is refused NO_AUTH. The first
// close fails for the moment.
type lostThenRefusedNative struct {
	firstCloseFails
	natives atomic.Int32
}

func (b *lostThenRefusedNative) Prepay(ctx context.Context, req wechatpay.PrepayRequest) (*wechatpay.PrepayResult, error) {
	if req.Method == wechatpay.MethodNative {
		if b.natives.Add(1) == 1 {
			return nil, fmt.Errorf("connection reset: %w", wechatpay.ErrTemporary)
		}
		return nil, fmt.Errorf("NO_AUTH: %w", wechatpay.ErrRejected)
	}
	return b.Client.Prepay(ctx, req)
}

// TestSweptReplacementGivesBackItsOwnDaysCount: as
// TestRefusedReplacementGivesBackTheSwitchsCount, but the replacement's
// first prepay outcome is unknown (left creating) and the sweep's re-prepay
// is the one WeChat Pay refuses: the sweep gives back to the replacement's
// own day, where its count is.
func TestSweptReplacementGivesBackItsOwnDaysCount(t *testing.T) {
	const user = "oUser-switch-midnight-sweep"
	e, _, native := switchFailedBeforeMidnight(t, user, func(c *wechatpay.Client) payments.Backend {
		return &lostThenRefusedNative{firstCloseFails: firstCloseFails{Client: c}}
	}, nil)
	ctx := context.Background()
	dayOrders(t, e, user, 2)
	e.clock.Advance(time.Minute)
	r, err := e.svc.CreateOrder(ctx, native)
	if !errors.Is(err, payments.ErrPaymentUnavailable) || r == nil || r.Order == nil || r.Order.Status != store.StatusCreating {
		t.Fatalf("the switch retried on day 2: %+v, %v; want the replacement left creating", r, err)
	}
	e.clock.Advance(payments.DefaultCreatingGrace + time.Second)
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if got := e.order(r.Order.OrderNo); got.Status != store.StatusClosed {
		t.Fatalf("replacement %s after the sweep; want closed (refused)", got.Status)
	}
	oneMoreOrder(t, e, user)
}

// TestFailedSwitchThenPaidGivesBackItsCount: a switch of pay method counts
// its replacement before closing the open order; the close fails, the user
// pays the open order instead, and no replacement is ever made. Its count
// was never given back, so on a day limited to two the user, with one
// order made, was refused a second; the purchase found paid gives it back.
func TestFailedSwitchThenPaidGivesBackItsCount(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Backend = &firstCloseFails{Client: o.Backend.(*wechatpay.Client)}
		o.Rules.MaxOrdersPerUserPerDay = 2
	}})
	ctx := context.Background()
	const user = "oUser-failed-switch-paid"
	a, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
	if err != nil || a.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("A: %+v, %v", a, err)
	}
	native := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native"}
	if _, err := e.svc.CreateOrder(ctx, native); !errors.Is(err, payments.ErrPaymentUnavailable) {
		t.Fatalf("the switch: %v; want ErrPaymentUnavailable (close failed)", err)
	}
	if _, err := e.sim.Pay(ctx, a.Order.OrderNo); err != nil {
		t.Fatalf("pay A: %v", err)
	}
	// The switch asked again finds A paid: answered as paid.
	if r, err := e.svc.CreateOrder(ctx, native); err != nil || r.Order.OrderNo != a.Order.OrderNo || r.Order.Status != store.StatusPaid {
		t.Fatalf("the switch asked again: %+v, %v; want A, paid", r, err)
	}
	res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "tip"})
	if err != nil {
		t.Errorf("a second order on a day limited to two, one order made (A, paid): %v (result %+v); want it made", err, res)
	}
}

// TestSwitchKeepsItsCountWhileTheOrderIsOpen: a switch whose close answered
// ORDERPAID, though the order stayed unpaid, gave the replacement's count
// back as if the order had been paid; the switch then made its replacement
// on the mark with no count, and the user got a third order on a day limited
// to two. The count goes back only once the order has left pending. The
// switch that met ORDERPAID answers pending (the close not confirmed); the
// bot's ask again makes the replacement, on the same count.
func TestSwitchKeepsItsCountWhileTheOrderIsOpen(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		// The first close answers ORDERPAID while queries still say the
		// order is unpaid (a payer mid-payment, a lagging query).
		o.Backend = &firstCloseFails{Client: o.Backend.(*wechatpay.Client), err: fmt.Errorf("close: ORDERPAID: %w", wechatpay.ErrOrderPaid)}
		o.Rules.MaxOrdersPerUserPerDay = 2
	}})
	ctx := context.Background()
	const user = "oUser-switch-paid-answer"
	if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"}); err != nil {
		t.Fatal(err)
	}
	native := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native"}
	if r, err := e.svc.CreateOrder(ctx, native); !errors.Is(err, payments.ErrPaymentUnavailable) || r == nil || r.Order == nil || r.Order.PayMethod != "jsapi" {
		t.Fatalf("the switch whose close answered ORDERPAID: %+v, %v; want the open jsapi order, pending", r, err)
	}
	if r, err := e.svc.CreateOrder(ctx, native); err != nil || r.Order.PayMethod != "native" || r.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("the switch asked again: %+v, %v; want the native replacement", r, err)
	}
	if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 2}); !errors.Is(err, payments.ErrDailyLimit) {
		t.Errorf("a third order: %v; want ErrDailyLimit (two opened: A and its replacement)", err)
	}
	for day, os := range openedPerDay(t, e, user) {
		if len(os) > 2 {
			t.Errorf("%d orders WeChat Pay opened on %s under a limit of two: %v", len(os), day, os)
		}
	}
}

// gatedClose: the close of order `target` by the second caller to close it
// blocks until released (a slow WeChat Pay close); the first caller's close
// waits until the second has entered its own.
type gatedClose struct {
	*wechatpay.Client
	target       atomic.Value // string
	calls        atomic.Int32
	secondIn     chan struct{}
	releaseFirst chan struct{}
	release      chan struct{}
}

func (b *gatedClose) CloseOrder(ctx context.Context, no string) error {
	if t, _ := b.target.Load().(string); t == no {
		switch b.calls.Add(1) {
		case 1:
			close(b.releaseFirst) // first is in
			<-b.secondIn
		case 2:
			close(b.secondIn)
			<-b.release
		}
	}
	return b.Client.CloseOrder(ctx, no)
}

// TestConcurrentSwitchesMakeOneReplacementOnItsCount: two switches of one
// open order A at once (a bot retrying its tool call) share one count. The
// first makes the replacement B, which the user then closes; the second,
// slow in its own close of A, went on as a replacement, found B closed and
// made C on the same count: A, B and C opened on a day limited to two. An
// order after another caller's replacement is a new one, counted.
func TestConcurrentSwitchesMakeOneReplacementOnItsCount(t *testing.T) {
	var b *gatedClose
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		b = &gatedClose{Client: o.Backend.(*wechatpay.Client), secondIn: make(chan struct{}), releaseFirst: make(chan struct{}), release: make(chan struct{})}
		o.Backend = b
		o.Rules.MaxOrdersPerUserPerDay = 2
	}})
	ctx := context.Background()
	const user = "oUser-concurrent-switch"
	a, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
	if err != nil || a.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("A: %+v, %v", a, err)
	}
	b.target.Store(a.Order.OrderNo)
	native := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native"}
	type out struct {
		r   *payments.CreateResult
		err error
	}
	r1, r2 := make(chan out, 1), make(chan out, 1)
	go func() { r, err := e.svc.CreateOrder(ctx, native); r1 <- out{r, err} }()
	<-b.releaseFirst // R1 counted, marked and is closing A
	go func() { r, err := e.svc.CreateOrder(ctx, native); r2 <- out{r, err} }()
	var first out
	select {
	case first = <-r1:
	case o := <-r2:
		t.Fatalf("R2 returned early: %+v %v", o.r, o.err)
	}
	second := r2
	if first.err != nil || first.r.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("first switch: %+v, %v", first.r, first.err)
	}
	bNo := first.r.Order.OrderNo
	if got, err := e.svc.CloseOrder(ctx, bNo); err != nil || got.Status != store.StatusClosed {
		t.Fatalf("the user closes B: %+v, %v", got, err)
	}
	close(b.release)
	<-second
	_, _ = e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 2})
	for day, os := range openedPerDay(t, e, user) {
		if len(os) > 2 {
			t.Errorf("%d orders WeChat Pay opened on %s under a limit of 2: %v", len(os), day, os)
		}
	}
}

// markGate holds the first two reads of a switch mark until both have read
// it: two switches of one order at once (a bot re-sending its tool call).
type markGate struct {
	fullStore
	on      atomic.Bool
	n       atomic.Int32
	both    chan struct{}
	bothOne sync.Once
}

func (g *markGate) GetExchange(ctx context.Context, key string) ([]byte, error) {
	v, err := g.fullStore.GetExchange(ctx, key)
	if g.on.Load() && strings.HasPrefix(key, "switch-counted:") {
		if g.n.Add(1) == 2 {
			g.bothOne.Do(func() { close(g.both) })
		}
		select {
		case <-g.both:
		case <-time.After(3 * time.Second):
		}
	}
	return v, err
}

// TestConcurrentSwitchesOnANewDayCountOnce: the switch of A failed at 23:50
// on day 1 (counted there); at 00:06 on day 2 the bot sends the switch twice
// at once. Both saw day 1's mark and each counted on day 2: one replacement
// cost the user two of day 2's orders. One caller counts; the other shares
// that count, or is told the switch is in progress.
func TestConcurrentSwitchesOnANewDayCountOnce(t *testing.T) {
	const user = "oUser-day2-race"
	var g *markGate
	e, a, native := switchFailedBeforeMidnight(t, user,
		func(c *wechatpay.Client) payments.Backend { return &firstCloseFails{Client: c} },
		func(o *payments.Options) {
			g = &markGate{fullStore: o.Store.(fullStore), both: make(chan struct{})}
			o.Store = g
		})
	ctx := context.Background()
	e.clock.Advance(time.Minute) // 00:06 on day 2
	g.on.Store(true)
	var wg sync.WaitGroup
	res := make([]*payments.CreateResult, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); res[i], errs[i] = e.svc.CreateOrder(ctx, native) }()
	}
	wg.Wait()
	g.on.Store(false)
	made := 0
	for i := range 2 {
		switch {
		case errs[i] == nil && res[i].Order.PayMethod == "native":
			made++
		case !errors.Is(errs[i], payments.ErrInProgress):
			t.Fatalf("switch %d on day 2: %+v, %v; want the native replacement, or in progress", i, res[i], errs[i])
		}
	}
	if made == 0 {
		t.Fatal("neither switch made the replacement")
	}
	if got := e.order(a.OrderNo); got.Status != store.StatusClosed {
		t.Fatalf("A is %s; want closed, replaced", got.Status)
	}
	// Day 2 holds one order (the replacement): one more must be made, the
	// one after refused.
	oneMoreOrder(t, e, user)
}

// failMarkOnce is a store whose first write of a switch mark fails.
type failMarkOnce struct {
	fullStore
	failed atomic.Bool
}

func (s *failMarkOnce) PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if strings.HasPrefix(key, "switch-counted:") && s.failed.CompareAndSwap(false, true) {
		return fmt.Errorf("put %s: %w", key, store.ErrUnavailable)
	}
	return s.fullStore.PutExchange(ctx, key, data, ttl)
}

// TestSwitchAfterAnUnmarkedCountGoesOn: a switch whose count could not be
// marked (the store failed) fails; the next switch of the order goes on,
// where a guard left raised would answer it "in progress" all day.
func TestSwitchAfterAnUnmarkedCountGoesOn(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Store = &failMarkOnce{fullStore: o.Store.(fullStore)}
		o.Rules.MaxOrdersPerUserPerDay = 5
	}})
	ctx := context.Background()
	const user = "oUser-unmarked-switch"
	if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"}); err != nil {
		t.Fatal(err)
	}
	native := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native"}
	if _, err := e.svc.CreateOrder(ctx, native); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("the switch with the mark's write failing: %v; want store.ErrUnavailable", err)
	}
	if r, err := e.svc.CreateOrder(ctx, native); err != nil || r.Order.PayMethod != "native" {
		t.Errorf("the switch asked again: %+v, %v; want the native replacement", r, err)
	}
}
