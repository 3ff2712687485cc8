package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestLegacyFunctionCallOfPaymentTool: a server that answers a request
// offering tools with the legacy function_call (functionary's server did,
// with finish_reason "function_call", until MeetKai/functionary#92) names
// create_order there. paygate handed it to the bot as it came: a payment
// call reaching the bot (SPEC 3 step 5 holds them back), of a function the
// bot never defined, and no order was made. Such a call is now the payment
// call it names, held back and run as a tool call is, with a call id of
// paygate's; the next round gets the assistant message of that call and its
// result in the tools shape the request offered. A legacy function_call
// naming the bot's own function still reaches the bot as it came.
func TestLegacyFunctionCallOfPaymentTool(t *testing.T) {
	const args = `"{\"sku\":\"premium-monthly\"}"`
	legacy := func(stream bool, name string) http.HandlerFunc {
		fc := `"function_call":{"name":"` + name + `","arguments":` + args + `}`
		if stream {
			return sseHandler(
				roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null,"function_call":{"name":"`+name+`","arguments":""}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":0,"delta":{"function_call":{"arguments":"{\"sku\":"}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":0,"delta":{"function_call":{"arguments":"\"premium-monthly\"}"}},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":0,"delta":{},"finish_reason":"function_call"}]}`+"\n\n", "data: [DONE]\n\n")
		}
		return jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":null,`+fc+`},"finish_reason":"function_call"}]}`)
	}
	for _, tc := range []struct {
		name, called string
		executed     []string
	}{
		{"a payment tool", "create_order", []string{`create_order {"sku":"premium-monthly"}`}},
		{"the bot's own function", "get_weather", nil},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(legacy(stream, tc.called), textRound(stream, "Order O1 is waiting for payment.")))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				if got := tools.executed(); !slices.Equal(got, tc.executed) {
					t.Errorf("executed %q; want %q\n%s", got, tc.executed, body)
				}
				seen := fp.requests()
				if tc.executed == nil {
					if !strings.Contains(body, `"function_call":{"name":"get_weather"`) || len(seen) != 1 {
						t.Errorf("the bot's own function call did not reach it as it came (%d upstream requests):\n%s", len(seen), body)
					}
					return
				}
				if strings.Contains(body, "function_call\":{") {
					t.Errorf("the bot got the payment call:\n%s", body)
				}
				if len(seen) != 2 {
					t.Fatalf("%d upstream requests; want 2", len(seen))
				}
				asst := gjson.GetBytes(seen[1].Body, `messages.#(role=="assistant")`)
				id := asst.Get("tool_calls.0.id").Str
				if asst.Get("tool_calls.0.function.name").Str != "create_order" || id == "" ||
					gjson.GetBytes(seen[1].Body, `messages.#(role=="tool").tool_call_id`).Str != id {
					t.Errorf("the next round's request does not carry the call and its result:\n%s", seen[1].Body)
				}
			})
		}
	}
}
