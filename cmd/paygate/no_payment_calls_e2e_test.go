package main

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestNoPaymentCallsRefusalAsksNoConfirmation: with
// payments.budget.max_payment_calls 0 a create_order the model calls anyway
// (seen in the conversation's history, say) is refused in words that tell
// the model no order can be made here, and not to ask the user to confirm:
// nothing the user says changes the config, and a user asked to confirm,
// who confirmed, was refused again, turn after turn.
func TestNoPaymentCallsRefusalAsksNoConfirmation(t *testing.T) {
	const call = `{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
	var result string
	n := 0
	up := newScriptedProvider(t, func(body string) scriptRound {
		defer func() { n++ }()
		if n == 0 {
			return scriptRound{whole: `{"id":"c0","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
				call + `]},"finish_reason":"tool_calls"}]}`}
		}
		result = gjson.Get(body, `messages.#(tool_call_id=="call_pg_1_0").content`).Str
		return scriptRound{whole: `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Orders cannot be placed here."},"finish_reason":"stop"}]}`}
	})
	url, a := paymentApp(t, up.URL, "  budget: {max_payment_calls: 0}\n")
	chatAs(t, url, "o-no-calls-user", "buy premium")
	if got := a.sim.OrderCount(); got != 0 {
		t.Fatalf("orders at the simulator %d; want none", got)
	}
	if msg := gjson.Get(result, "error").Str; !strings.Contains(msg, "no order or refund can be made in this conversation") ||
		strings.Contains(result, "ask the user to confirm") {
		t.Errorf("the refused create_order's result %s; want it to say no order can be made, and not to ask the user to confirm", result)
	}
}
