package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestLegacyFunctionCallEchoOfToolCall: llama-cpp-python's server answers a
// forced tool (and its function-calling chat handlers answer) with the one
// call in both shapes at once, a tools entry and the legacy function_call
// beside it, same name, same arguments, in the message and in every
// streamed delta (llama_chat_format.py, _convert_completion_to_chat_function).
// That is one call of the model's: the payment call runs once, and the
// legacy echo neither runs a second time (with max_payment_calls 2 a
// second create_order or request_refund) nor, refused beyond a budget of
// one, tells the model to ask the user about the order it just made; nor
// does it reach the bot.
func TestLegacyFunctionCallEchoOfToolCall(t *testing.T) {
	const args = `{\"sku\":\"premium-monthly\"}`
	both := func(stream bool) http.HandlerFunc {
		if stream {
			piece := func(a string) string {
				return roundChunk + `[{"index":0,"delta":{"role":null,"content":null,"function_call":{"name":"create_order","arguments":"` + a + `"},` +
					`"tool_calls":[{"index":0,"id":"call__0_create_order_cmpl-1","type":"function","function":{"name":"create_order","arguments":"` + a + `"}}]},"finish_reason":null}]}` + "\n\n"
			}
			return sseHandler(
				roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null,"function_call":null,"tool_calls":null},"finish_reason":null}]}`+"\n\n",
				piece(`{\"sku\":`), piece(`\"premium-monthly\"}`),
				roundChunk+`[{"index":0,"delta":{"role":null,"content":null,"function_call":null,"tool_calls":null},"finish_reason":"tool_calls"}]}`+"\n\n",
				"data: [DONE]\n\n")
		}
		return jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":null,`+
			`"function_call":{"name":"create_order","arguments":"`+args+`"},`+
			`"tool_calls":[{"id":"call__0_create_order_cmpl-1","type":"function","function":{"name":"create_order","arguments":"`+args+`"}}]},"finish_reason":"tool_calls"}]}`)
	}
	for _, calls := range []int{1, 2} {
		for _, stream := range []bool{false, true} {
			name := map[int]string{1: "max_payment_calls 1", 2: "max_payment_calls 2"}[calls] + map[bool]string{false: "", true: ", stream"}[stream]
			t.Run(name, func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(both(stream), textRound(stream, "Order O1 is waiting for payment.")))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = calls })
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				want := []string{`create_order {"sku":"premium-monthly"}`}
				if got := tools.executed(); !slices.Equal(got, want) {
					t.Errorf("executed %q; want %q", got, want)
				}
				if strings.Contains(body, "create_order") {
					t.Errorf("the bot got the payment call:\n%s", body)
				}
				seen := fp.requests()
				if len(seen) != 2 {
					t.Fatalf("%d upstream requests; want 2", len(seen))
				}
				next := gjson.ParseBytes(seen[1].Body)
				if n := len(next.Get(`messages.#(role=="assistant").tool_calls`).Array()); n != 1 {
					t.Errorf("the next round's assistant message carries %d calls; want 1:\n%s", n, seen[1].Body)
				}
				if strings.Contains(string(seen[1].Body), "not_executed") || next.Get("tool_choice").Str == "none" {
					t.Errorf("the echo was refused, asking the user to confirm an order already made:\n%s", seen[1].Body)
				}
			})
		}
	}
}
