package proxy

import (
	"net/http"
	"slices"
	"testing"

	"github.com/tidwall/gjson"
)

// TestHarmonyWrappedPaymentName: gpt-oss served by vLLM hands out a call's
// name with a harmony control token after it, streamed whole in the call's
// first delta ("query_dataset<|channel|>commentary", call after call, in
// vllm-project/vllm#32587), and models trained on harmony's recipient
// ("to=functions.NAME") write the namespace before it ("functions.NAME",
// tontinton/maki#518). paygate handed such a create_order to the bot, a
// call of a tool the bot never defined, and no order was made. The call
// is now the payment call it names: checked and run as create_order, sent
// back to the provider under the tool's own name, never the bot's. A name
// the bot's own tools include stays the bot's, and a wrapped name of no
// payment tool ("assistant<|channel|>analysis", ollama/ollama#11704) is
// handed to the bot as it came.
func TestHarmonyWrappedPaymentName(t *testing.T) {
	const args = `"{\"sku\":\"premium-monthly\"}"`
	call := func(name string) string {
		return `[{"index":0,"id":"call_pay","type":"function","function":{"name":"` + name + `","arguments":` + args + `}}]`
	}
	const prefixedTool = `"tools":[{"type":"function","function":{"name":"functions.create_order","parameters":{"type":"object"}}}],`
	tests := []struct {
		name, tools, called string
		executed, bot       []string
	}{
		{"control token after the name", weatherTool, "create_order<|channel|>commentary", []string{`create_order {"sku":"premium-monthly"}`}, nil},
		{"namespace before the name", weatherTool, "functions.create_order", []string{`create_order {"sku":"premium-monthly"}`}, nil},
		{"both", weatherTool, "functions.create_order<|constrain|>json", []string{`create_order {"sku":"premium-monthly"}`}, nil},
		{"the bot's own tool so named", prefixedTool, "functions.create_order", nil, []string{`functions.create_order {"sku":"premium-monthly"}`}},
		{"no payment tool's name", weatherTool, "assistant<|channel|>analysis", nil, []string{`assistant<|channel|>analysis {"sku":"premium-monthly"}`}},
		{"a payment tool's name inside another", weatherTool, "functions.create_orders", nil, []string{`functions.create_orders {"sku":"premium-monthly"}`}},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(callsRound(stream, call(tc.called)), textRound(stream, "Order O1 is waiting for payment.")))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, tc.tools), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				if got := tools.executed(); !slices.Equal(got, tc.executed) {
					t.Errorf("executed %q; want %q\n%s", got, tc.executed, body)
				}
				if got := botCalls(stream, body); !slices.Equal(got, tc.bot) {
					t.Errorf("the bot got calls %q; want %q\n%s", got, tc.bot, body)
				}
				seen := fp.requests()
				if tc.executed == nil {
					if len(seen) != 1 {
						t.Errorf("%d upstream requests; want 1: the round's call is the bot's", len(seen))
					}
					return
				}
				if len(seen) != 2 {
					t.Fatalf("%d upstream requests; want 2", len(seen))
				}
				if got := gjson.GetBytes(seen[1].Body, "messages.#(role==assistant).tool_calls.0.function.name").Str; got != "create_order" {
					t.Errorf("the provider got back a call named %q; want create_order", got)
				}
			})
		}
	}
}
