package main

import (
	"fmt"
	"testing"
)

// TestRepeatedCreateOrderAnnouncedOnce: a model that calls create_order
// twice for one purchase under max_payment_calls 2 gets the same order from
// the simulator-backed service, and the bot one order_created for it: one
// payment sheet for one order.
func TestRepeatedCreateOrderAnnouncedOnce(t *testing.T) {
	const call = `{"id":"%s","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
	n := 0
	up := newScriptedProvider(t, func(body string) scriptRound {
		defer func() { n++ }()
		if n == 0 {
			return scriptRound{whole: `{"id":"c0","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
				fmt.Sprintf(call, "a") + `,` + fmt.Sprintf(call, "b") + `]},"finish_reason":"tool_calls"}]}`}
		}
		return scriptRound{whole: `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`}
	})
	url, a := paymentApp(t, up.URL, "  budget: {max_payment_calls: 2}\n")
	res := chatAs(t, url, "o-repeat-user", "buy premium")
	if got := a.sim.OrderCount(); got != 1 {
		t.Fatalf("orders at the simulator %d; want 1", got)
	}
	acts := res.Get("paygate.actions")
	if n := len(acts.Array()); n != 1 || acts.Get("0.type").Str != "order_created" || acts.Get("0.request_payment.package").Str == "" {
		t.Errorf("paygate.actions %s; want one order_created with its payment parameters", acts.Raw)
	}
}

// TestSwitchedPayMethodAnnouncedOnce: a model that calls create_order for
// one purchase twice in a turn, the second time for a QR code (the user
// changed their mind), gets a native order from the service, which closed
// the JSAPI one at WeChat Pay: the bot gets one order_created, the native
// order's with its code URL, not also the closed order's payment
// parameters, which the README's bot would open as a payment sheet that
// WeChat Pay then refuses.
func TestSwitchedPayMethodAnnouncedOnce(t *testing.T) {
	const calls = `{"id":"a","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` +
		`{"id":"b","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"pay_method\":\"native\"}"}}`
	n := 0
	up := newScriptedProvider(t, func(body string) scriptRound {
		defer func() { n++ }()
		if n == 0 {
			return scriptRound{whole: `{"id":"c0","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
				calls + `]},"finish_reason":"tool_calls"}]}`}
		}
		return scriptRound{whole: `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Scan the code."},"finish_reason":"stop"}]}`}
	})
	url, a := paymentApp(t, up.URL, "  budget: {max_payment_calls: 2}\n")
	res := chatAs(t, url, "o-switch-user", "buy premium, by QR code")
	if got := a.sim.OrderCount(); got != 2 {
		t.Fatalf("orders at the simulator %d; want 2 (the JSAPI one, closed, and the native one)", got)
	}
	acts := res.Get("paygate.actions")
	if n := len(acts.Array()); n != 1 || acts.Get("0.type").Str != "order_created" || acts.Get("0.code_url").Str == "" ||
		acts.Get("0.order.pay_method").Str != "native" || acts.Get("0.request_payment").Exists() {
		t.Fatalf("paygate.actions %s; want the native order's order_created alone", acts.Raw)
	}
	if tx, _ := a.sim.Order(acts.Get("0.order.order_no").Str); tx.TradeState == "CLOSED" {
		t.Errorf("the order announced is closed at WeChat Pay")
	}
}
