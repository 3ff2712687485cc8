package proxy

import (
	"net/http"
	"slices"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestQuirkPaymentCallOfMixedRoundCountsInFollowUp: a mixed round whose
// create_order came harmony-wrapped or in the legacy function_call shape,
// beside the bot's own call; the bot's follow-up with its tool's result
// gets the kept exchange back (SPEC 3.7) under the payment tool's own name,
// in the tool_calls shape, and its create_order counts against
// max_payment_calls 1: the model's second create_order for the user's one
// message is refused, never run.
func TestQuirkPaymentCallOfMixedRoundCountsInFollowUp(t *testing.T) {
	const args = `{\"sku\":\"premium-monthly\"}`
	mixed := func(stream, legacy bool) http.HandlerFunc {
		weather := `{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}`
		if !legacy {
			return callsRound(stream, `[`+weather+`,{"index":1,"id":"call_pay","type":"function","function":{"name":"functions.create_order<|channel|>commentary","arguments":"`+args+`"}}]`)
		}
		if stream {
			return sseHandler(
				roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[`+weather+`]},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":0,"delta":{"function_call":{"name":"create_order","arguments":"`+args+`"}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
		}
		return jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":null,`+
			`"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}],"function_call":{"name":"create_order","arguments":"`+args+`"}},"finish_reason":"tool_calls"}]}`)
	}
	for _, legacy := range []bool{false, true} {
		for _, stream := range []bool{false, true} {
			t.Run(map[bool]string{false: "harmony", true: "legacy"}[legacy]+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(mixed(stream, legacy),
					callsRound(stream, `[{"index":0,"id":"call_again","type":"function","function":{"name":"create_order","arguments":"`+args+`"}}]`),
					textRound(stream, "Done.")))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = 1 })
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				const user = `{"role":"user","content":"buy premium; weather?"}`
				resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, user), hdr)
				body := readAll(t, resp.Body)
				if got := botCallIDs(stream, body); !slices.Equal(got, []string{"call_w"}) {
					t.Fatalf("the bot got calls %q; want its own (%d %s)", got, resp.StatusCode, body)
				}
				next := chatBodyWith(stream, weatherTool, user,
					`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`,
					`{"role":"tool","tool_call_id":"call_w","content":"sunny"}`)
				resp = post(t, url, "/v1/chat/completions", next, hdr)
				body = readAll(t, resp.Body)
				want := []string{`create_order {"sku":"premium-monthly"}`}
				if got := tools.executed(); !slices.Equal(got, want) {
					t.Errorf("executed %q; want %q", got, want)
				}
				reqs := fp.requests()
				if len(reqs) != 3 {
					t.Fatalf("%d upstream requests; want 3 (the bot got %d %s)", len(reqs), resp.StatusCode, body)
				}
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
