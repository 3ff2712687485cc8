package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestSwitchedOrderNotHandedWhenItsReplacementIsNotReady: a turn whose
// model asks for one purchase twice in a round, the second time with the
// other pay_method (max_payment_calls 2), closes the first order at WeChat
// Pay for the switch. When the replacement's prepay does not come through
// (WeChat Pay does not answer it), the bot must not be handed the closed
// order's order_created: its payment sheet would open for an order WeChat
// Pay no longer takes. The replacement, once prepaid, is the user's next
// turn's to announce.
func TestSwitchedOrderNotHandedWhenItsReplacementIsNotReady(t *testing.T) {
	calls := [][2]string{
		{"create_order", `{"sku":"premium-monthly","pay_method":"jsapi"}`},
		{"create_order", `{"sku":"premium-monthly","pay_method":"native"}`},
	}
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream %v", stream), func(t *testing.T) {
			n := 0
			up := newScriptedProvider(t, func(string) scriptRound {
				defer func() { n++ }()
				if n == 0 {
					r := chunkRound("c0", calls...)
					r.whole = `{"id":"c0","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"On it.","tool_calls":[` +
						`{"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"pay_method\":\"jsapi\"}"}},` +
						`{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"pay_method\":\"native\"}"}}]},"finish_reason":"tool_calls"}]}`
					return r
				}
				r := textRound("c1", "Done.")
				r.whole = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`
				return r
			})
			url, a := paymentApp(t, up.URL, "  budget: {max_payment_calls: 2}\n")
			// Every attempt of the native prepay (the client makes three).
			a.sim.InjectFault(wxsim.Fault{Op: "prepay-native", Kind: wxsim.FaultSystemError, Times: 3})
			res := userTurn(t, url, stream, "premium, by QR code or in WeChat")
			if res.failed() {
				t.Fatalf("turn failed: %d %s", res.status, res.raw)
			}
			for _, act := range res.actions("order_created") {
				no := act.Get("order.order_no").Str
				if tx, ok := a.sim.Order(no); ok && tx.TradeState == "CLOSED" {
					t.Errorf("the bot was handed order_created for %s, which the turn closed at WeChat Pay: %s", no, act.Raw)
				}
			}
			if a.sim.OrderCount() != 1 {
				t.Fatalf("orders at the simulator %d; want the JSAPI order alone (the native prepay was not answered)", a.sim.OrderCount())
			}
			if acts := res.paygate.Get("actions"); len(acts.Array()) != 0 {
				t.Errorf("paygate.actions %s; want none: the one order WeChat Pay holds is closed", acts.Raw)
			}
		})
	}
}

// downAfterSwitchClose is a store that stops answering claim moves once an
// order was written closed, as a Redis failover right after a switch of pay
// method closed the open order would: the purchase's next order is never
// recorded.
type downAfterSwitchClose struct {
	store.Store
	closed *atomic.Bool
	// atRecord: the store fails already at the close's record, the order
	// closed at WeChat Pay and open here.
	atRecord bool
}

func (s downAfterSwitchClose) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	if s.atRecord && o.Status == store.StatusClosed {
		s.closed.Store(true)
		return fmt.Errorf("write order: %w", store.ErrUnavailable)
	}
	err := s.Store.UpdateOrder(ctx, o, expect, ev...)
	if err == nil && o.Status == store.StatusClosed {
		s.closed.Store(true)
	}
	return err
}

func (s downAfterSwitchClose) AdvanceClaim(ctx context.Context, key string, from int, no string, ttl time.Duration) (store.Claim, bool, error) {
	if s.closed.Load() {
		return store.Claim{}, false, fmt.Errorf("advance claim: %w", store.ErrUnavailable)
	}
	return s.Store.AdvanceClaim(ctx, key, from, no, ttl)
}

// TestSwitchedOrderNotHandedWhenItsReplacementIsNotRecorded: as
// TestSwitchedOrderNotHandedWhenItsReplacementIsNotReady, but the store
// fails right after the switch closed the first order at WeChat Pay (at
// the close's own record, or before the replacement is recorded):
// create_order fails with no new order, and the closed order's
// order_created, handed alone, opened a payment sheet WeChat Pay no longer
// takes.
func TestSwitchedOrderNotHandedWhenItsReplacementIsNotRecorded(t *testing.T) {
	for _, c := range []struct {
		name     string
		atRecord bool
		stream   bool
	}{
		{"after the close's record", false, false},
		{"after the close's record, stream", false, true},
		{"at the close's record", true, false},
		{"at the close's record, stream", true, true},
	} {
		stream := c.stream
		t.Run(c.name, func(t *testing.T) {
			n := 0
			up := newScriptedProvider(t, func(string) scriptRound {
				defer func() { n++ }()
				if n == 0 {
					r := chunkRound("c0",
						[2]string{"create_order", `{"sku":"premium-monthly","pay_method":"jsapi"}`},
						[2]string{"create_order", `{"sku":"premium-monthly","pay_method":"native"}`})
					r.whole = `{"id":"c0","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"On it.","tool_calls":[` +
						`{"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"pay_method\":\"jsapi\"}"}},` +
						`{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"pay_method\":\"native\"}"}}]},"finish_reason":"tool_calls"}]}`
					return r
				}
				r := textRound("c1", "Done.")
				r.whole = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`
				return r
			})
			var closed atomic.Bool
			url, a := paymentApp(t, up.URL, "  budget: {max_payment_calls: 2}\n",
				withStoreWrap(func(st store.Store) store.Store { return downAfterSwitchClose{st, &closed, c.atRecord} }))
			res := userTurn(t, url, stream, "premium, by QR code or in WeChat")
			if res.failed() {
				t.Fatalf("turn failed: %d %s", res.status, res.raw)
			}
			if !closed.Load() || a.sim.OrderCount() != 1 {
				t.Fatalf("closed %v, orders at the simulator %d; want the JSAPI order alone, closed for the switch", closed.Load(), a.sim.OrderCount())
			}
			for _, act := range res.actions("order_created") {
				no := act.Get("order.order_no").Str
				if tx, ok := a.sim.Order(no); ok && tx.TradeState == "CLOSED" {
					t.Errorf("the bot was handed order_created for %s, which the turn closed at WeChat Pay: %s", no, act.Raw)
				}
			}
		})
	}
}

// TestSwitchedOrderNotAnnouncedWhenItsCloseIsNotRecorded: as the "at the
// close's record" case of
// TestSwitchedOrderNotHandedWhenItsReplacementIsNotRecorded, then the
// user's next turn. The closed order is still awaiting payment in the
// store and its order_created was never delivered (the turn dropped it),
// so the next turn announced it as payable, fresh payment parameters for
// an order WeChat Pay had closed: the payment sheet the first turn no
// longer opened, opened one turn later.
func TestSwitchedOrderNotAnnouncedWhenItsCloseIsNotRecorded(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream %v", stream), func(t *testing.T) {
			n := 0
			up := newScriptedProvider(t, func(string) scriptRound {
				defer func() { n++ }()
				if n == 0 {
					r := chunkRound("c0",
						[2]string{"create_order", `{"sku":"premium-monthly","pay_method":"jsapi"}`},
						[2]string{"create_order", `{"sku":"premium-monthly","pay_method":"native"}`})
					r.whole = `{"id":"c0","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"On it.","tool_calls":[` +
						`{"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"pay_method\":\"jsapi\"}"}},` +
						`{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"pay_method\":\"native\"}"}}]},"finish_reason":"tool_calls"}]}`
					return r
				}
				r := textRound("c1", "Done.")
				r.whole = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`
				return r
			})
			var closed atomic.Bool
			url, a := paymentApp(t, up.URL, "  budget: {max_payment_calls: 2}\n",
				withStoreWrap(func(st store.Store) store.Store { return downAfterSwitchClose{st, &closed, true} }))
			if res := userTurn(t, url, stream, "premium, by QR code or in WeChat"); res.failed() {
				t.Fatalf("turn failed: %d %s", res.status, res.raw)
			}
			if !closed.Load() || a.sim.OrderCount() != 1 {
				t.Fatalf("closed %v, orders at the simulator %d; want the JSAPI order alone, closed for the switch", closed.Load(), a.sim.OrderCount())
			}
			res := userTurn(t, url, stream, "so?")
			if res.failed() {
				t.Fatalf("next turn failed: %d %s", res.status, res.raw)
			}
			for _, act := range res.actions("order_created") {
				no := act.Get("order.order_no").Str
				if tx, ok := a.sim.Order(no); ok && tx.TradeState == "CLOSED" {
					t.Errorf("the next turn announced order_created for %s, which WeChat Pay closed: %s", no, act.Raw)
				}
			}
		})
	}
}
