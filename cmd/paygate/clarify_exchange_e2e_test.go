package main

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestClarificationHoldsAcrossTheBotsToolCall: a round that calls
// create_order with what the user did not say (an unknown SKU) beside the
// bot's own tool ends the request with the bot's call, the clarification
// kept in the payment exchange. The bot's follow-up (its tool's result, no
// word from the user) continues the same user message: a create_order the
// model then guesses must not run, as it would not in the round after the
// clarification within one request. It ran, and the bot opened a payment
// for a plan the user never chose. A follow-up in which the user answered
// runs it.
func TestClarificationHoldsAcrossTheBotsToolCall(t *testing.T) {
	guess := [3]string{"pay_2", "create_order", `{"sku":"premium-monthly"}`}
	for _, stream := range []bool{false, true} {
		name := "non-stream"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			up := newScriptedProvider(t, func(body string) scriptRound {
				msgs := gjson.Get(body, "messages").Array()
				last := msgs[len(msgs)-1]
				switch {
				case last.Get("role").Str == "user" && last.Get("content").Str == "buy a plan and send me a receipt":
					return callRound("c1", [3]string{"pay_1", "create_order", `{"sku":"gold-plan"}`}, [3]string{"client_1", "send_receipt", `{}`})
				case last.Get("role").Str == "tool" && (last.Get("tool_call_id").Str == "client_1" || last.Get("tool_call_id").Str == "client_2"):
					return callRound("c2", guess)
				}
				r := textRound("c9", "Which plan would you like?")
				r.whole = `{"id":"c9","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Which plan would you like?"},"finish_reason":"stop"}]}`
				return r
			})
			url, a := paymentApp(t, up.URL, "")
			tools := `"tools":[{"type":"function","function":{"name":"send_receipt","parameters":{"type":"object"}}}]`
			mode := `"stream":false,`
			if stream {
				mode = `"stream":true,`
			}
			user := `{"role":"user","content":"buy a plan and send me a receipt"}`
			if got := chatBody(t, url, `{"model":"gpt-4o",`+mode+tools+`,"messages":[`+user+`]}`); !strings.Contains(got, `"client_1"`) {
				t.Fatalf("the bot must get its own call: %s", got)
			}
			follow := `{"role":"assistant","content":null,"tool_calls":[{"id":"client_1","type":"function","function":{"name":"send_receipt","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"client_1","content":"sent"}`
			chatBody(t, url, `{"model":"gpt-4o",`+mode+tools+`,"messages":[`+user+`,`+follow+`]}`)
			if n := a.sim.OrderCount(); n != 0 {
				t.Fatalf("%d orders after the bot's follow-up; want none: the user was asked which plan and has not answered", n)
			}
			reqs := up.requests()
			if res := reqs[len(reqs)-1]; !strings.Contains(res, `not_executed`) {
				t.Errorf("the guessed call's result must say it was not executed: %s", res)
			}

			// The user answers: their plan is bought.
			answer := `,{"role":"assistant","content":"Which plan would you like?"},{"role":"user","content":"premium monthly"}`
			up2 := `{"role":"assistant","content":null,"tool_calls":[{"id":"client_2","type":"function","function":{"name":"send_receipt","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"client_2","content":"sent"}`
			chatBody(t, url, `{"model":"gpt-4o",`+mode+tools+`,"messages":[`+user+`,`+follow+answer+`,`+up2+`]}`)
			if n := a.sim.OrderCount(); n != 1 {
				t.Errorf("%d orders once the user answered; want 1", n)
			}
		})
	}
}

// TestBudgetHoldsAcrossTheBotsToolCall: max_payment_calls bounds the money
// actions of one user message, however many requests the bot's own tools
// split it into. A round that made an order beside the bot's tool spent
// the message's budget of one; the model's next create_order, in the bot's
// follow-up with its tool's result, ran all the same, as a fresh request,
// and a second payment was put before the user, which the same calls in
// one request would not have done. The next user message has its budget.
func TestBudgetHoldsAcrossTheBotsToolCall(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := "non-stream"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			up := newScriptedProvider(t, func(body string) scriptRound {
				msgs := gjson.Get(body, "messages").Array()
				last := msgs[len(msgs)-1]
				switch {
				case last.Get("role").Str == "user" && last.Get("content").Str == "buy premium and send me a receipt":
					return callRound("c1", [3]string{"pay_1", "create_order", `{"sku":"premium-monthly"}`}, [3]string{"client_1", "send_receipt", `{}`})
				case last.Get("role").Str == "tool" && last.Get("tool_call_id").Str == "client_1":
					return callRound("c2", [3]string{"pay_2", "create_order", `{"sku":"premium-yearly"}`})
				case last.Get("role").Str == "user" && last.Get("content").Str == "and a year too":
					return callRound("c3", [3]string{"pay_3", "create_order", `{"sku":"premium-yearly"}`})
				}
				r := textRound("c9", "Done.")
				r.whole = `{"id":"c9","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`
				return r
			})
			url, a := paymentApp(t, up.URL, "")
			tools := `"tools":[{"type":"function","function":{"name":"send_receipt","parameters":{"type":"object"}}}]`
			mode := `"stream":false,`
			if stream {
				mode = `"stream":true,`
			}
			user := `{"role":"user","content":"buy premium and send me a receipt"}`
			if got := chatBody(t, url, `{"model":"gpt-4o",`+mode+tools+`,"messages":[`+user+`]}`); !strings.Contains(got, `"client_1"`) {
				t.Fatalf("the bot must get its own call: %s", got)
			}
			if n := a.sim.OrderCount(); n != 1 {
				t.Fatalf("%d orders after the mixed round; want 1", n)
			}
			follow := `{"role":"assistant","content":null,"tool_calls":[{"id":"client_1","type":"function","function":{"name":"send_receipt","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"client_1","content":"sent"}`
			chatBody(t, url, `{"model":"gpt-4o",`+mode+tools+`,"messages":[`+user+`,`+follow+`]}`)
			if n := a.sim.OrderCount(); n != 1 {
				t.Fatalf("%d orders after the bot's follow-up; want 1: the message's budget of one was spent", n)
			}
			next := `,{"role":"assistant","content":"Done."},{"role":"user","content":"and a year too"}`
			chatBody(t, url, `{"model":"gpt-4o",`+mode+tools+`,"messages":[`+user+`,`+follow+next+`]}`)
			if n := a.sim.OrderCount(); n != 2 {
				t.Errorf("%d orders after the user's next message; want 2", n)
			}
		})
	}
}
