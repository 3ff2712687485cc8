package payments_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// switchingBackend loses the answer of the first lose prepays (WeChat Pay
// makes the order; the caller hears a timeout), and runs during, once,
// inside the next prepay before it reaches WeChat Pay: another caller's
// ask, made at that moment.
type switchingBackend struct {
	payments.Backend
	mu     sync.Mutex
	lose   int
	during func()
}

func (b *switchingBackend) Prepay(ctx context.Context, req wechatpay.PrepayRequest) (*wechatpay.PrepayResult, error) {
	b.mu.Lock()
	lose := b.lose > 0
	if lose {
		b.lose--
	}
	during := b.during
	b.during = nil
	b.mu.Unlock()
	if during != nil {
		during()
	}
	res, err := b.Backend.Prepay(ctx, req)
	if lose && err == nil {
		return nil, fmt.Errorf("prepay %s: %w", req.OutTradeNo, context.DeadlineExceeded)
	}
	return res, err
}

// TestPrepayRetryAfterAConcurrentSwitchIsNoFailure: two asks for one
// purchase at the same moment, one JSAPI and one QR code, on an order left
// creating by a lost prepay answer. The QR ask resolves the order, closes
// it for its switch and opens the replacement; the JSAPI ask's prepay of
// the same number then reaches WeChat Pay after that close and is answered
// ORDER_CLOSED. That ask failed with ErrPrepayRejected, and the model told
// the user the purchase had failed, although a payable order of it existed.
// It is judged afresh instead, and answered with a payable order.
func TestPrepayRetryAfterAConcurrentSwitchIsNoFailure(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			var be *switchingBackend
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				be = &switchingBackend{Backend: o.Backend, lose: 1}
				o.Backend = be
			}})
			jsapi := payments.CreateRequest{Client: "shop-bot", User: "oUser-prepay-switch", SKU: "premium-monthly"}
			native := jsapi
			native.PayMethod = "native"
			first, err := e.svc.CreateOrder(ctx, jsapi)
			if !errors.Is(err, payments.ErrPaymentUnavailable) || first == nil || first.Order.Status != store.StatusCreating {
				t.Fatalf("first ask: %+v, %v; want its order creating, the prepay's answer lost", first, err)
			}
			e.clock.Advance(payments.DefaultCreatingGrace + 1)

			var qr *payments.CreateResult
			var qrErr error
			be.mu.Lock()
			be.during = func() { qr, qrErr = e.svc.CreateOrder(ctx, native) }
			be.mu.Unlock()
			got, err := e.svc.CreateOrder(ctx, jsapi)
			if qrErr != nil || qr.Order.PayMethod != "native" {
				t.Fatalf("the QR ask: %+v, %v; want a native order", qr, qrErr)
			}
			if err != nil {
				t.Fatalf("the JSAPI ask: %v; want a payable order of the purchase", err)
			}
			if got.Order.Status != store.StatusAwaitingPayment || got.Order.OrderNo == first.Order.OrderNo {
				t.Fatalf("the JSAPI ask: %+v; want an open order that replaced %s", got.Order, first.Order.OrderNo)
			}
			open := 0
			for _, no := range []string{first.Order.OrderNo, qr.Order.OrderNo, got.Order.OrderNo} {
				if tx, ok := e.sim.Order(no); ok && tx.TradeState == "NOTPAY" {
					open++
				}
			}
			if open != 1 {
				t.Errorf("%d orders of the purchase open at WeChat Pay; want 1", open)
			}
		})
	}
}

// refusingBackend loses the answer of the first prepay, as switchingBackend
// does, and refuses every later one for good (PARAM_ERROR, NO_AUTH: the
// purchase's parameters, not its number), running during, once, inside
// the next prepay before it is refused. It records each prepay's number.
type refusingBackend struct {
	payments.Backend
	mu     sync.Mutex
	lost   bool
	during func()
	nos    []string
}

func (b *refusingBackend) Prepay(ctx context.Context, req wechatpay.PrepayRequest) (*wechatpay.PrepayResult, error) {
	b.mu.Lock()
	lose := !b.lost
	b.lost = true
	during := b.during
	b.during = nil
	b.nos = append(b.nos, req.OutTradeNo)
	b.mu.Unlock()
	if lose {
		if _, err := b.Backend.Prepay(ctx, req); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("prepay %s: %w", req.OutTradeNo, context.DeadlineExceeded)
	}
	if during != nil {
		during()
	}
	return nil, fmt.Errorf("prepay %s: %w", req.OutTradeNo, wechatpay.ErrRejected)
}

// TestPrepayRefusedForGoodRacingIsNoNewOrder: two asks of one method
// resolve an order left creating at the same moment, and WeChat Pay
// refuses its parameters for good, to both. The one whose refusal came
// second found the order closed by the other and took it for one moved on
// by a switch of pay method: it went round and made a second order of the
// purchase, counted against the day's limit and refused in turn. A
// refusal of the purchase's own parameters is no sign of a switch (that is
// ORDER_CLOSED): both asks answer the refusal of that order.
func TestPrepayRefusedForGoodRacingIsNoNewOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			var be *refusingBackend
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				be = &refusingBackend{Backend: o.Backend}
				o.Backend = be
			}})
			req := payments.CreateRequest{Client: "shop-bot", User: "oUser-prepay-refused", SKU: "premium-monthly"}
			first, err := e.svc.CreateOrder(ctx, req)
			if !errors.Is(err, payments.ErrPaymentUnavailable) || first == nil || first.Order.Status != store.StatusCreating {
				t.Fatalf("first ask: %+v, %v; want its order creating, the prepay's answer lost", first, err)
			}
			e.clock.Advance(payments.DefaultCreatingGrace + 1)

			var otherErr error
			be.mu.Lock()
			be.during = func() { _, otherErr = e.svc.CreateOrder(ctx, req) }
			be.mu.Unlock()
			got, err := e.svc.CreateOrder(ctx, req)
			if !errors.Is(otherErr, payments.ErrPrepayRejected) {
				t.Fatalf("the other ask: %v; want the refusal", otherErr)
			}
			if !errors.Is(err, payments.ErrPrepayRejected) {
				t.Fatalf("the ask: %v; want the refusal", err)
			}
			if got == nil || got.Order == nil || got.Order.OrderNo != first.Order.OrderNo {
				t.Errorf("the ask answered %+v; want the refused order %s", got, first.Order.OrderNo)
			}
			be.mu.Lock()
			defer be.mu.Unlock()
			for _, no := range be.nos {
				if no != first.Order.OrderNo {
					t.Errorf("prepaid %v; want only %s, the purchase's one order", be.nos, first.Order.OrderNo)
					break
				}
			}
		})
	}
}
