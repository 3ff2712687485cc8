package payments_test

import (
	"context"
	"errors"
	"fmt"
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

// nativeRefusedBackend: the merchant's account takes no Native orders
// (WeChat Pay refuses their prepay for good), and the first close fails
// for the moment.
type nativeRefusedBackend struct {
	*wechatpay.Client
	closes atomic.Int32
}

func (b *nativeRefusedBackend) Prepay(ctx context.Context, req wechatpay.PrepayRequest) (*wechatpay.PrepayResult, error) {
	if req.Method == wechatpay.MethodNative {
		return nil, fmt.Errorf("NO_AUTH: %w", wechatpay.ErrRejected)
	}
	return b.Client.Prepay(ctx, req)
}

func (b *nativeRefusedBackend) CloseOrder(ctx context.Context, no string) error {
	if b.closes.Add(1) == 1 {
		return fmt.Errorf("close: %w", wechatpay.ErrTemporary)
	}
	return b.Client.CloseOrder(ctx, no)
}

// TestRefusedReplacementGivesBackTheSwitchsCount: a switch of pay method
// counted its replacement on day 1 (its close failed, so the replacement
// is made on the retry, on day 2). The replacement refused, its count went
// back to day 2, which never counted it, and the user made three orders on
// day 2 under a limit of two; it goes back to the switch's day.
func TestRefusedReplacementGivesBackTheSwitchsCount(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	e := newEnv(t, envOptions{storeClock: true, service: func(o *payments.Options) {
		o.Backend = &nativeRefusedBackend{Client: o.Backend.(*wechatpay.Client)}
		o.Rules.MaxOrdersPerUserPerDay = 2
	}})
	now := time.Now()
	y, m, d := now.In(cst).Date()
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, cst)
	e.clock.Advance(midnight.Add(-10 * time.Minute).Sub(now)) // 23:50 China time
	ctx := context.Background()
	const user = "oUser-switch-midnight"
	a, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
	if err != nil || a.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("A: %+v, %v", a, err)
	}
	native := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native"}
	if _, err := e.svc.CreateOrder(ctx, native); !errors.Is(err, payments.ErrPaymentUnavailable) {
		t.Fatalf("the switch on day 1: %v; want ErrPaymentUnavailable (close failed)", err)
	}
	e.clock.Advance(15 * time.Minute) // 00:05 on day 2
	for qty := 2; qty <= 3; qty++ {
		if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: qty}); err != nil {
			t.Fatalf("day 2 order of %d: %v", qty, err)
		}
	}
	e.clock.Advance(time.Minute)
	if _, err := e.svc.CreateOrder(ctx, native); !errors.Is(err, payments.ErrPrepayRejected) {
		t.Fatalf("the switch retried on day 2: %v; want ErrPrepayRejected", err)
	}
	res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "tip"})
	if !errors.Is(err, payments.ErrDailyLimit) {
		mine, _ := e.st.ListOrders(ctx, store.OrderFilter{Client: "shop-bot", User: user})
		day2 := 0
		for _, o := range mine {
			if o.CreatedAt.In(cst).Day() == midnight.Day() && o.Status == store.StatusAwaitingPayment {
				day2++
			}
		}
		t.Errorf("a third order on day 2 after the refused replacement: %v (order %v); %d payable orders created on day 2; want ErrDailyLimit (the replacement was counted on day 1)", err, res != nil && res.Order != nil, day2)
	}
}

// lostThenRefusedNative: the merchant's account takes no Native orders. The
// first Native prepay never reaches WeChat Pay (a transport failure, outcome
// unknown to the caller); every later one is refused NO_AUTH. The first
// close fails for the moment.
type lostThenRefusedNative struct {
	*wechatpay.Client
	natives atomic.Int32
	closes  atomic.Int32
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

func (b *lostThenRefusedNative) CloseOrder(ctx context.Context, no string) error {
	if b.closes.Add(1) == 1 {
		return fmt.Errorf("close: %w", wechatpay.ErrTemporary)
	}
	return b.Client.CloseOrder(ctx, no)
}

// TestSweptReplacementGivesBackItsOwnDaysCount: as
// TestRefusedReplacementGivesBackTheSwitchsCount, but the replacement's
// first prepay outcome is unknown (left creating) and the sweep's re-prepay
// is the one WeChat Pay refuses. The sweep gave back to the replacement's
// created_at day, which had never counted it, and the user got a third
// order on day 2 under a limit of two: a replacement's count now moves to
// its own day when it is made.
func TestSweptReplacementGivesBackItsOwnDaysCount(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	e := newEnv(t, envOptions{storeClock: true, service: func(o *payments.Options) {
		o.Backend = &lostThenRefusedNative{Client: o.Backend.(*wechatpay.Client)}
		o.Rules.MaxOrdersPerUserPerDay = 2
	}})
	now := time.Now()
	y, m, d := now.In(cst).Date()
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, cst)
	e.clock.Advance(midnight.Add(-10 * time.Minute).Sub(now)) // 23:50 China time
	ctx := context.Background()
	const user = "oUser-switch-midnight-sweep"
	a, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
	if err != nil || a.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("A: %+v, %v", a, err)
	}
	native := payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", PayMethod: "native"}
	if _, err := e.svc.CreateOrder(ctx, native); !errors.Is(err, payments.ErrPaymentUnavailable) {
		t.Fatalf("the switch on day 1: %v; want ErrPaymentUnavailable (close failed)", err)
	}
	e.clock.Advance(15 * time.Minute) // 00:05 on day 2
	for qty := 2; qty <= 3; qty++ {
		if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: qty}); err != nil {
			t.Fatalf("day 2 order of %d: %v", qty, err)
		}
	}
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
	res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "tip"})
	if !errors.Is(err, payments.ErrDailyLimit) {
		t.Errorf("a third order on day 2 after the sweep's refused replacement: err %v (order made: %v); want ErrDailyLimit (the replacement was counted on day 1)", err, res != nil && res.Order != nil)
	}
}

// closeFailsOnce: the first close at WeChat Pay fails for the moment.
type closeFailsOnce struct {
	*wechatpay.Client
	closes atomic.Int32
}

func (b *closeFailsOnce) CloseOrder(ctx context.Context, no string) error {
	if b.closes.Add(1) == 1 {
		return fmt.Errorf("close: %w", wechatpay.ErrTemporary)
	}
	return b.Client.CloseOrder(ctx, no)
}

// TestFailedSwitchThenPaidGivesBackItsCount: a switch of pay method counts
// its replacement before closing the open order; the close fails, the user
// pays the open order instead, and no replacement is ever made. Its count
// was never given back, so on a day limited to two the user, with one
// order made, was refused a second; the purchase found paid gives it back.
func TestFailedSwitchThenPaidGivesBackItsCount(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Backend = &closeFailsOnce{Client: o.Backend.(*wechatpay.Client)}
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
