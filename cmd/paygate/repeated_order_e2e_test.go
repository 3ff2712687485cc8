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
