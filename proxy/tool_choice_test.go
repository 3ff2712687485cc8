package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// requiredHonouring is a provider that honours tool_choice "required": it
// answers a request that forces a tool with a query_order call, and any
// other with words.
func requiredHonouring(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	stream := gjson.GetBytes(b, "stream").Bool()
	forced := gjson.GetBytes(b, "tool_choice").Str == "required"
	if !stream {
		if forced {
			jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`)(w, r)
			return
		}
		jsonHandler(200, `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"X1 is paid."},"finish_reason":"stop"}]}`)(w, r)
		return
	}
	const c = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	if forced {
		sseHandler(
			c+`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":null}]}`+"\n\n",
			c+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n",
			"data: [DONE]\n\n")(w, r)
		return
	}
	sseHandler(
		c+`[{"index":0,"delta":{"role":"assistant","content":"X1 is paid."},"finish_reason":null}]}`+"\n\n",
		c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
		"data: [DONE]\n\n")(w, r)
}

// TestRequiredToolChoiceIsMetByThePaymentCall: a bot that sends
// tool_choice "required" with its own tools has it met by the payment call;
// the next round goes with "auto", so the model answers the user rather
// than calling a tool again until the round budget runs out.
func TestRequiredToolChoiceIsMetByThePaymentCall(t *testing.T) {
	for _, stream := range []bool{true, false} {
		name := map[bool]string{true: "stream", false: "non-stream"}[stream]
		t.Run(name, func(t *testing.T) {
			fp := newFakeProvider(t, requiredHonouring)
			url := statefulProxy(t, fp.URL)
			sf := ""
			if stream {
				sf = `"stream":true,`
			}
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test",`+sf+
				`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"tool_choice":"required",`+
				`"messages":[{"role":"user","content":"is X1 paid?"}]}`, map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			reqs := fp.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream rounds; want 2", len(reqs))
			}
			if got := gjson.GetBytes(reqs[0].Body, "tool_choice").Raw; got != `"required"` {
				t.Errorf("round 1 tool_choice %s; want the bot's \"required\"", got)
			}
			if got := gjson.GetBytes(reqs[1].Body, "tool_choice").Raw; got != `"auto"` {
				t.Errorf("round 2 tool_choice %s; want \"auto\"", got)
			}
			if !strings.Contains(body, "X1 is paid.") {
				t.Errorf("the user never got the answer: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// TestAnyToolChoiceIsMetByThePaymentCall: Mistral spells "required" as
// "any"; met by the payment call like "required", the next round goes with
// "auto".
func TestAnyToolChoiceIsMetByThePaymentCall(t *testing.T) {
	for _, stream := range []bool{true, false} {
		up := newFakeProvider(t, roundByRound(
			callsRound(stream, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`),
			textRound(stream, "Done."),
		))
		url := toolsProxy(t, up.URL, &recordingTools{}, nil)
		resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool+`"tool_choice":"any",`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
		_ = readAll(t, resp.Body)
		reqs := up.requests()
		if len(reqs) != 2 {
			t.Fatalf("stream %v: %d upstream rounds; want 2", stream, len(reqs))
		}
		if got := gjson.GetBytes(reqs[1].Body, "tool_choice").Raw; got != `"auto"` {
			t.Errorf("stream %v: round 2 tool_choice %s; want \"auto\" as for \"required\"", stream, got)
		}
	}
}

// TestToolChoiceExcludingPaymentToolsIsObeyed: a bot whose tool_choice
// leaves the payment tools out (none, a forced function or custom tool of
// its own, allowed_tools listing only its own) is not offered them, and a
// provider that ignores tool_choice and calls create_order anyway has the
// call refused, never executed. allowed_tools that lists query_order only
// gets the tools offered, and a create_order call refused all the same.
func TestToolChoiceExcludingPaymentToolsIsObeyed(t *testing.T) {
	for _, tc := range []struct {
		name, choice string
		offered      bool
	}{
		{"none", `"tool_choice":"none",`, false},
		{"forced own function", `"tool_choice":{"type":"function","function":{"name":"get_weather"}},`, false},
		{"forced own custom tool", `"tool_choice":{"type":"custom","custom":{"name":"get_weather"}},`, false},
		{"allowed_tools own only", `"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"get_weather"}}]}},`, false},
		{"allowed_tools own and query_order", `"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"function","function":{"name":"get_weather"}},{"type":"function","function":{"name":"query_order"}}]}},`, true},
	} {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s stream %v", tc.name, stream), func(t *testing.T) {
				tools := &recordingTools{}
				up := newFakeProvider(t, roundByRound(
					callsRound(stream, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`),
					textRound(stream, "Which plan would you like?"),
				))
				url := toolsProxy(t, up.URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool+tc.choice), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if ex := tools.executed(); len(ex) != 0 {
					t.Errorf("the bot's tool_choice excluded create_order, yet paygate executed %q", ex)
				}
				reqs := up.requests()
				if len(reqs) == 0 {
					t.Fatalf("no upstream request: %d %s", resp.StatusCode, body)
				}
				if got := gjson.GetBytes(reqs[0].Body, `tools.#(function.name=="query_order")`).Exists(); got != tc.offered {
					t.Errorf("payment tools offered: %v; want %v (tools %s)", got, tc.offered, gjson.GetBytes(reqs[0].Body, "tools").Raw)
				}
				if got := gjson.GetBytes(reqs[0].Body, "tool_choice").Raw; got != strings.TrimSuffix(strings.TrimPrefix(tc.choice, `"tool_choice":`), ",") {
					t.Errorf("round 1 tool_choice %s; want the bot's own", got)
				}
				if resp.StatusCode != 200 || !strings.Contains(body, "Which plan would you like?") {
					t.Errorf("the bot got %d %s; want the model's answer", resp.StatusCode, body)
				}
				if strings.Contains(body, "create_order") {
					t.Errorf("the refused payment call reached the bot: %s", body)
				}
			})
		}
	}
}

// TestLegacyFunctionCallExcludingPaymentToolsIsObeyed: the legacy
// function_call says what tool_choice says: "none", or a function of the
// bot's own forced by name (with the legacy functions), leaves the payment
// tools out. They are not offered, and a provider that ignores it and calls
// create_order has the call refused, never executed. It was not read: the
// payment tools were offered and the call executed.
func TestLegacyFunctionCallExcludingPaymentToolsIsObeyed(t *testing.T) {
	const functions = `"functions":[{"name":"get_weather","parameters":{"type":"object"}}],`
	for _, tc := range []struct{ name, members string }{
		{"none", functions + `"function_call":"none",`},
		{"forced own", functions + `"function_call":{"name":"get_weather"},`},
		{"none beside tool_choice auto", weatherTool + `"tool_choice":"auto",` + functions + `"function_call":"none",`},
	} {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s stream %v", tc.name, stream), func(t *testing.T) {
				tools := &recordingTools{}
				up := newFakeProvider(t, roundByRound(
					callsRound(stream, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`),
					textRound(stream, "Which plan would you like?"),
				))
				url := toolsProxy(t, up.URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if ex := tools.executed(); len(ex) != 0 {
					t.Errorf("the bot's function_call excluded create_order, yet paygate executed %q", ex)
				}
				reqs := up.requests()
				if len(reqs) == 0 {
					t.Fatalf("no upstream request: %d %s", resp.StatusCode, body)
				}
				if got := gjson.GetBytes(reqs[0].Body, `tools.#(function.name=="create_order")`); got.Exists() {
					t.Errorf("payment tools offered: %s", gjson.GetBytes(reqs[0].Body, "tools").Raw)
				}
				if resp.StatusCode != 200 || !strings.Contains(body, "Which plan would you like?") {
					t.Errorf("the bot got %d %s; want the model's answer", resp.StatusCode, body)
				}
				if strings.Contains(body, "create_order") {
					t.Errorf("the refused payment call reached the bot: %s", body)
				}
			})
		}
	}
}

// TestToolChoiceWithRepeatedKeyIsRefused: a key repeated inside tool_choice
// (or function_call), at any depth, is read by paygate in its first copy
// and by the provider's parser in its last, which here forces the bot's own
// get_weather: paygate took create_order for allowed and executed the call.
// The request is refused with a 400 in OpenAI's error JSON, asked of no
// provider, on a payment turn and on the plain path.
func TestToolChoiceWithRepeatedKeyIsRefused(t *testing.T) {
	for _, tc := range []struct{ name, members, key string }{
		{"repeated function", weatherTool + `"tool_choice":{"type":"function","function":{"name":"create_order"},"function":{"name":"get_weather"}},`, "function"},
		{"repeated type", weatherTool + `"tool_choice":{"type":"auto","type":"function","function":{"name":"get_weather"}},`, "type"},
		{"repeated name, deep", weatherTool + `"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"create_order","name":"get_weather"}}]}},`, "name"},
		{"repeated name in function_call", `"functions":[{"name":"get_weather","parameters":{"type":"object"}}],"function_call":{"name":"create_order","name":"get_weather"},`, "name"},
	} {
		for _, signedIn := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s signed in %v", tc.name, signedIn), func(t *testing.T) {
				tools := &recordingTools{}
				up := newFakeProvider(t, roundByRound(
					callsRound(false, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`),
					textRound(false, "Which plan would you like?"),
				))
				url := toolsProxy(t, up.URL, tools, nil)
				var hdr map[string]string
				if signedIn {
					hdr = map[string]string{"X-WeChat-OpenID": "o-user-1"}
				}
				resp := post(t, url, "/v1/chat/completions", chatBody(false, tc.members), hdr)
				body := readAll(t, resp.Body)
				if resp.StatusCode != 400 || gjson.Get(body, "error.type").Str != "invalid_request_error" ||
					!strings.Contains(gjson.Get(body, "error.message").Str, `"`+tc.key+`" appears more than once`) {
					t.Errorf("the bot got %d %s; want a 400 naming the repeated %q", resp.StatusCode, body, tc.key)
				}
				if ex := tools.executed(); len(ex) != 0 {
					t.Errorf("paygate executed %q", ex)
				}
				if n := len(up.requests()); n != 0 {
					t.Errorf("the provider was asked %d times", n)
				}
			})
		}
	}
}

// TestForcedPaymentToolIsMetInEveryShape: a tool_choice that forces a
// payment tool in any shape paygate reads as such (OpenAI's, the flat
// {"type":"function","name":…} of the Responses API, Anthropic's
// {"type":"tool",…} and {"type":"any"} (relaxed in its own shape),
// allowed_tools with its mode beside "type", the legacy function_call) is
// met by the payment call: the next round goes without it, as with
// OpenAI's own shape. Only that shape was relaxed: a provider that reads
// the others forced create_order again in every round, the second call was
// refused for the budget and the user, whose order was made, was asked to
// clarify it.
func TestForcedPaymentToolIsMetInEveryShape(t *testing.T) {
	for _, tc := range []struct{ name, choice, path, want string }{
		{"openai", `"tool_choice":{"type":"function","function":{"name":"create_order"}},`, "tool_choice", `"auto"`},
		{"flat function", `"tool_choice":{"type":"function","name":"create_order"},`, "tool_choice", `"auto"`},
		{"anthropic tool", `"tool_choice":{"type":"tool","name":"create_order"},`, "tool_choice", `{"type":"auto"}`},
		{"anthropic any", `"tool_choice":{"type":"any"},`, "tool_choice", `{"type":"auto"}`},
		{"allowed_tools, mode beside type", `"tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"function","name":"create_order"}]},`, "tool_choice.mode", `"auto"`},
		{"legacy function_call", `"function_call":{"name":"create_order"},`, "function_call", `"auto"`},
	} {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s stream %v", tc.name, stream), func(t *testing.T) {
				tools := &recordingTools{}
				up := newFakeProvider(t, roundByRound(
					callsRound(stream, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`),
					textRound(stream, "Your order is ready."),
				))
				url := toolsProxy(t, up.URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool+tc.choice), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if ex := tools.executed(); len(ex) != 1 {
					t.Fatalf("executed %q; want the one create_order: %d %s", ex, resp.StatusCode, body)
				}
				reqs := up.requests()
				if len(reqs) != 2 {
					t.Fatalf("%d upstream rounds; want 2", len(reqs))
				}
				if got := gjson.GetBytes(reqs[1].Body, tc.path).Raw; got != tc.want {
					t.Errorf("round 2 %s %s; want %s (the payment call met it)", tc.path, got, tc.want)
				}
			})
		}
	}
}

// TestForcedCallWithoutBotToolsForcesNoPayment: a bot that sends
// tool_choice "required" (Mistral's "any", Anthropic's {"type":"any"}) and
// no tool of its own (none, or "tools": []) asks for a call of a tool it
// does not have: OpenAI answers it with a 400 ("tool_choice is only
// allowed when tools are specified"). With the payment tools appended, the
// choice forced a payment call on whatever the user said: a model that
// honours it called create_order with a SKU of its choosing, and the user
// got an order, and a payment sheet, they never asked for. Such a request
// now goes as the bot sent it, without the payment tools, and a payment
// call that comes anyway is refused. A forced call beside a tool of the
// bot's own still offers them (TestRequiredToolChoiceIsMetByThePaymentCall).
func TestForcedCallWithoutBotToolsForcesNoPayment(t *testing.T) {
	// forcing answers a request that forces a call and offers create_order
	// with that call, any other with words.
	forcing := func(stream bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			tc := gjson.GetBytes(b, "tool_choice")
			forced := tc.Str == "required" || tc.Str == "any" || tc.Get("type").Str == "any"
			if forced && gjson.GetBytes(b, `tools.#(function.name=="create_order")`).Exists() {
				callsRound(stream, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`)(w, r)
				return
			}
			textRound(stream, "Hello!")(w, r)
		}
	}
	for _, tc := range []struct{ name, members string }{
		{"required, no tools", `"tool_choice":"required",`},
		{"required, tools []", `"tools":[],"tool_choice":"required",`},
		{"any", `"tool_choice":"any",`},
		{"anthropic any", `"tool_choice":{"type":"any"},`},
	} {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s stream %v", tc.name, stream), func(t *testing.T) {
				tools := &recordingTools{}
				up := newFakeProvider(t, roundByRound(forcing(stream), textRound(stream, "Hello!")))
				url := paymentProxy(t, up.URL, func(c *config.Config) {
					price, _ := config.ParseDecimal("49.99")
					c.Payments.Catalog = []config.CatalogItem{{SKU: "premium-monthly", Name: "Premium", Price: price, MaxQuantity: 12}}
				}, tools, &memState{}, nil)
				resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test",`+map[bool]string{true: `"stream":true,`}[stream]+tc.members+
					`"messages":[{"role":"user","content":"hi"}]}`, map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if ex := tools.executed(); len(ex) != 0 {
					t.Errorf("executed %q; want nothing: the user asked for nothing", ex)
				}
				reqs := up.requests()
				if len(reqs) == 0 {
					t.Fatalf("no upstream request: %d %s", resp.StatusCode, body)
				}
				if names := gjson.GetBytes(reqs[0].Body, "tools.#.function.name").Raw; strings.Contains(names, "create_order") || strings.Contains(names, "query_order") {
					t.Errorf("payment tools offered under a forced call with no tool of the bot's: %s", names)
				}
				if !strings.Contains(body, "Hello!") {
					t.Errorf("the bot got %d %s; want the model's words", resp.StatusCode, body)
				}
			})
		}
	}
}
