package proxy

import (
	"net/http"
	"testing"

	"github.com/tidwall/gjson"
)

// TestQuirkPaymentCallOfMixedRoundCountsInFollowUp: a mixed round whose
// create_order came harmony-wrapped or in the legacy function_call shape,
// beside the bot's own call; the bot's follow-up with its tool's result
// gets the kept exchange back (SPEC 3.7) under the payment tool's own name,
// in the tool_calls shape, and its create_order counts against
// max_payment_calls 1: the model's second create_order for the user's one
// message is refused, never run.
func TestQuirkPaymentCallOfMixedRoundCountsInFollowUp(t *testing.T) {
	mixed := func(stream, legacy bool) http.HandlerFunc {
		weather := `{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}`
		if !legacy {
			return callsRound(stream, `[`+weather+`,{"index":1,"id":"call_pay","type":"function","function":{"name":"functions.create_order<|channel|>commentary","arguments":"`+createOrderArgs+`"}}]`)
		}
		if stream {
			return sseHandler(
				roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[`+weather+`]},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":0,"delta":{"function_call":{"name":"create_order","arguments":"`+createOrderArgs+`"}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
		}
		return jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":null,`+
			`"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}],"function_call":{"name":"create_order","arguments":"`+createOrderArgs+`"}},"finish_reason":"tool_calls"}]}`)
	}
	for _, legacy := range []bool{false, true} {
		for _, stream := range []bool{false, true} {
			t.Run(map[bool]string{false: "harmony", true: "legacy"}[legacy]+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				reqs := followUpAfterMixedRound(t, stream, mixed(stream, legacy), weatherAssistant)
				up := reqs[1].Body
				names := gjson.Get(assistantToolMessage(up), "tool_calls.#.function.name").String()
				if names != `["get_weather","create_order"]` && names != `["create_order","get_weather"]` {
					t.Errorf("the restored assistant message calls %s; want get_weather and create_order\n%s", names, up)
				}
				if res := gjson.GetBytes(reqs[2].Body, "messages.#(tool_call_id==call_pg_1_0_2).content").Str; gjson.Get(res, "status").Str != "not_executed" {
					t.Errorf("the follow-up's create_order got %q; want a not_executed refusal", res)
				}
			})
		}
	}
}
