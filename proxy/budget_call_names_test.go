package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestBudgetReadsHistoryCallNameFromItsMember: the bot's follow-up (its
// own tool's result after a mixed round) carries, since the user's last
// message, a payment call and its result "awaiting_payment", the call
// written in a shape whose "type" disagrees with its member, or with no
// "type" (some SDKs omit it), or named twice. The call's name is read as
// the turn reads any call's, from the member that is an object, and a
// call named twice could be a create_order: each counts against
// max_payment_calls 1, so the model's create_order in the follow-up is
// refused (not_executed), never run. Read by "type", the call counted as
// nothing and a second order for the user's one message ran.
func TestBudgetReadsHistoryCallNameFromItsMember(t *testing.T) {
	const (
		args = `"{\"sku\":\"premium-monthly\"}"`
		fn   = `"function":{"name":"create_order","arguments":` + args + `}`
		cu   = `"custom":{"name":"create_order","input":` + args + `}`
	)
	for _, tc := range []struct{ name, call string }{
		{"type custom, function member", `{"id":"call_h","type":"custom",` + fn + `}`},
		{"type function, custom member", `{"id":"call_h","type":"function",` + cu + `}`},
		{"no type, custom member", `{"id":"call_h",` + cu + `}`},
		{"no type, function member", `{"id":"call_h",` + fn + `}`},
		{"named twice, type custom naming the bot's tool", `{"id":"call_h","type":"custom","custom":{"name":"get_weather","input":""},` + fn + `}`},
		{"type function, null function beside a custom member", `{"id":"call_h","type":"function","function":null,` + cu + `}`},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(callsRound(stream, createOrderCall), textRound(stream, "Done.")))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = 1 })
				follow := `{"model":"gpt-test",` + map[bool]string{true: `"stream":true,`}[stream] + weatherTool +
					`"messages":[{"role":"user","content":"buy premium"},` +
					`{"role":"assistant","content":null,"tool_calls":[` + tc.call + `,` +
					`{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},` +
					`{"role":"tool","tool_call_id":"call_h","content":"{\"order_no\":\"O1\",\"status\":\"awaiting_payment\"}"},` +
					`{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
				resp := post(t, url, "/v1/chat/completions", follow, map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d:\n%s", resp.StatusCode, body)
				}
				if got := tools.executed(); len(got) != 0 {
					t.Errorf("executed %q; want none: the history's order already spent max_payment_calls 1", got)
				}
				seen := fp.requests()
				if len(seen) != 2 {
					t.Fatalf("%d upstream requests; want 2", len(seen))
				}
				res := gjson.GetBytes(seen[1].Body, "messages.#(tool_call_id==call_pg_1_0).content").Str
				if gjson.Get(res, "status").Str != "not_executed" {
					t.Errorf("the follow-up's create_order got %q; want a not_executed refusal", res)
				}
			})
		}
	}
}

// TestBudgetCountsEchoWithEmptyFunctionBesideCustom: a turn's mixed round
// runs create_order and hands the bot its custom tool's call; the bot's SDK
// echoes that call with an empty "function":{} beside its "custom" (a
// struct with a function member that is not a pointer). Such an echo
// matches no kept exchange (a call with two members names itself twice),
// so the follow-up goes upstream without the turn's create_order; the
// echoed call, named twice, could be a payment call and its result counts
// against max_payment_calls 1: the model's second create_order for the
// user's one message is refused, on either store. Read by its "type" as
// the bot's custom call, it counted as nothing and a second order ran.
func TestBudgetCountsEchoWithEmptyFunctionBesideCustom(t *testing.T) {
	const (
		sqlTool = `"tools":[{"type":"custom","custom":{"name":"run_sql"}}],`
		custom  = `{"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"select 1"}}`
		pay     = `{"id":"call_a","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
		again   = `[{"id":"call_b","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
	)
	for _, driver := range testdrivers.Names(t) {
		for _, stream := range []bool{false, true} {
			t.Run(driver+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				st := testdrivers.Open(t, driver, nil)
				fp := newFakeProvider(t, roundByRound(callsRound(stream, `[`+pay+`,`+custom+`]`),
					callsRound(stream, again), textRound(stream, "Done.")))
				tools := &recordingTools{}
				url := paymentProxy(t, fp.URL, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = 1 }, tools, st, nil)
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, sqlTool), hdr).Body)
				echo := strings.Replace(custom, `"custom":{`, `"function":{},"custom":{`, 1)
				follow := `{"model":"gpt-test",` + map[bool]string{true: `"stream":true,`}[stream] + sqlTool +
					`"messages":[{"role":"user","content":"buy premium"},` +
					`{"role":"assistant","content":null,"tool_calls":[` + echo + `]},` +
					`{"role":"tool","tool_call_id":"call_c","content":"1"}]}`
				body := readAll(t, post(t, url, "/v1/chat/completions", follow, hdr).Body)
				if got := tools.executed(); len(got) != 1 || got[0] != `create_order {"sku":"premium-monthly"}` {
					t.Errorf("executed %q; want the turn's one create_order (max_payment_calls 1)\n%s", got, body)
				}
			})
		}
	}
}

// TestEchoWithFunctionInAnotherCaseRefused: a bot's follow-up that echoes
// its custom tool's call with an object "Function" (another case) beside
// "custom" is refused (400, naming the member) before anything reads its
// calls: paygate's readers (the restore of kept exchanges, the budget the
// user's message spent) read only the exact name, a Go-based provider
// any case, so no reading of such a call can be trusted. Nothing goes
// upstream for it and nothing more runs.
func TestEchoWithFunctionInAnotherCaseRefused(t *testing.T) {
	const (
		sqlTool = `"tools":[{"type":"custom","custom":{"name":"run_sql"}}],`
		custom  = `{"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"select 1"}}`
		pay     = `{"id":"call_a","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
	)
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{true: "stream", false: "non-stream"}[stream], func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(callsRound(stream, `[`+pay+`,`+custom+`]`), textRound(stream, "Done.")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = 1 })
			hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
			readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, sqlTool), hdr).Body)
			echo := strings.Replace(custom, `"custom":{`, `"Function":{"name":"create_order","arguments":"{}"},"custom":{`, 1)
			follow := `{"model":"gpt-test",` + map[bool]string{true: `"stream":true,`}[stream] + sqlTool +
				`"messages":[{"role":"user","content":"buy premium"},` +
				`{"role":"assistant","content":null,"tool_calls":[` + echo + `]},` +
				`{"role":"tool","tool_call_id":"call_c","content":"1"}]}`
			resp := post(t, url, "/v1/chat/completions", follow, hdr)
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusBadRequest || gjson.Get(body, "error.param").Str != "messages[1].tool_calls[0].Function" {
				t.Errorf("status %d, %s; want a 400 naming messages[1].tool_calls[0].Function", resp.StatusCode, body)
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("%d upstream requests; want only the first turn's", n)
			}
			if got := tools.executed(); len(got) != 1 {
				t.Errorf("executed %q; want the first turn's one create_order", got)
			}
		})
	}
}
