package proxy

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/tidwall/gjson"
)

// TestBotEchoesItsCustomCallWithNullFunction: a bot whose JSON library
// writes unset fields as null echoes its custom tool's call, in the
// follow-up that carries its result, with "function":null beside
// "custom". A null "function" names nothing (as the stream capture reads
// it): the kept payment exchange of the turn goes back in, so the model
// sees the order it created and the turn's max_payment_calls holds. Read
// as a nameless function call, the echo matched no kept exchange: the
// follow-up went upstream without the create_order, and the model's
// second create_order for the same user message ran (a second payment).
func TestBotEchoesItsCustomCallWithNullFunction(t *testing.T) {
	const (
		sqlTool = `"tools":[{"type":"custom","custom":{"name":"run_sql"}}],`
		custom  = `{"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"select 1"}}`
		pay     = `{"id":"call_a","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
		again   = `[{"id":"call_b","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
	)
	for _, stream := range []bool{true, false} {
		t.Run(map[bool]string{true: "stream", false: "non-stream"}[stream], func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(callsRound(stream, `[`+pay+`,`+custom+`]`),
				callsRound(stream, again), textRound(stream, "Done.")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = 1 })
			hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
			readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, sqlTool), hdr).Body)
			echo := strings.Replace(custom, `"custom":{`, `"function":null,"custom":{`, 1)
			follow := `{"model":"gpt-test",` + map[bool]string{true: `"stream":true,`}[stream] + sqlTool +
				`"messages":[{"role":"user","content":"buy premium"},` +
				`{"role":"assistant","content":null,"tool_calls":[` + echo + `]},` +
				`{"role":"tool","tool_call_id":"call_c","content":"1"}]}`
			body := readAll(t, post(t, url, "/v1/chat/completions", follow, hdr).Body)
			if got := tools.executed(); len(got) != 1 || got[0] != `create_order {"sku":"premium-monthly"}` {
				t.Errorf("executed %q; want the turn's one create_order (max_payment_calls 1)\n%s", got, body)
			}
			seen := fp.requests()
			if len(seen) < 2 {
				t.Fatalf("%d upstream requests", len(seen))
			}
			up := seen[1].Body
			if restored := gjson.GetBytes(up, "messages.1.tool_calls").Raw; restored != `[`+strings.Replace(pay, "call_a", keptCallID, 1)+`,`+custom+`]` ||
				gjson.GetBytes(up, "messages.2.tool_call_id").Str != keptCallID {
				t.Errorf("the follow-up reached the provider without the kept create_order:\n%s", up)
			}
		})
	}
}
