package proxy

import (
	"context"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store/testdrivers"
)

// renamedTools are recordingTools under the names an operator configured
// after a restart: create_order is buy, query_order look_up, request_refund
// give_back. Each call is recorded under the tool's default name.
type renamedTools struct{ *recordingTools }

var toDefaultName = map[string]string{"buy": "create_order", "look_up": "query_order", "give_back": "request_refund"}

func (renamedTools) IsPayment(n string) bool { return toDefaultName[n] != "" }
func (renamedTools) Names() payments.ToolNames {
	return payments.ToolNames{CreateOrder: "buy", QueryOrder: "look_up", RequestRefund: "give_back"}
}
func (x renamedTools) Execute(ctx context.Context, c payments.Caller, name, args string) payments.Outcome {
	return x.recordingTools.Execute(ctx, c, toDefaultName[name], args)
}

// TestRenamedToolsKeepTheTurnsBudget: a turn's mixed round runs create_order
// and hands the bot its get_weather call; the operator then renames the
// payment tools (payments.tools: buy, look_up, give_back) and restarts, or
// rolls one replica of two sharing Redis, and the bot's follow-up with the
// weather reaches the renamed paygate, whose model calls buy. The kept
// exchange comes back with its create_order under the name in force now
// (buy), so the model reads its own turn with the tools it is offered, and
// that order spends max_payment_calls 1: the follow-up's buy is refused
// (not_executed), never run. Restored under its old name, the call was no
// payment call to the renamed paygate, and a second order ran for the
// user's one message.
func TestRenamedToolsKeepTheTurnsBudget(t *testing.T) {
	const (
		pay     = `{"id":"call_a","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
		weather = `{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}`
		buy     = `[{"id":"call_b","type":"function","function":{"name":"buy","arguments":"{\"sku\":\"premium-yearly\"}"}}]`
	)
	for _, driver := range testdrivers.Names(t) {
		for _, stream := range []bool{false, true} {
			t.Run(driver+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				st := testdrivers.Open(t, driver, nil)
				budget := func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = 1 }
				tools := &recordingTools{}
				before := newFakeProvider(t, roundByRound(callsRound(stream, `[`+pay+`,`+weather+`]`)))
				oldURL := paymentProxy(t, before.URL, budget, tools, st, nil)
				after := newFakeProvider(t, roundByRound(callsRound(stream, buy), textRound(stream, "Done.")))
				newURL := paymentProxy(t, after.URL, func(c *config.Config) {
					budget(c)
					c.Payments.Tools = config.Tools{CreateOrder: "buy", QueryOrder: "look_up", RequestRefund: "give_back"}
				}, renamedTools{tools}, st, nil)
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				readAll(t, post(t, oldURL, "/v1/chat/completions", chatBody(stream, weatherTool), hdr).Body)
				follow := chatBodyWith(stream, weatherTool, `{"role":"user","content":"buy premium"}`,
					`{"role":"assistant","content":null,"tool_calls":[`+weather+`]}`,
					`{"role":"tool","tool_call_id":"call_w","content":"sunny"}`)
				body := readAll(t, post(t, newURL, "/v1/chat/completions", follow, hdr).Body)
				if got := tools.executed(); len(got) != 1 || !strings.HasPrefix(got[0], "create_order ") {
					t.Errorf("executed %q; want the first turn's one create_order (max_payment_calls 1)\n%s", got, body)
				}
				seen := after.requests()
				if len(seen) == 0 {
					t.Fatalf("the follow-up reached no provider:\n%s", body)
				}
				if n := gjson.GetBytes(seen[0].Body, `messages.#(role=="assistant").tool_calls.#(id=="`+keptCallID+`").function.name`).Str; n != "buy" {
					t.Errorf("the restored payment call is named %q upstream; want buy, its tool's name now", n)
				}
				if len(seen) > 1 {
					res := gjson.GetBytes(seen[1].Body, "messages.#(tool_call_id==call_pg_1_0_2).content").Str
					if gjson.Get(res, "status").Str != "not_executed" {
						t.Errorf("the follow-up's buy got %q; want a not_executed refusal", res)
					}
				}
			})
		}
	}
}
