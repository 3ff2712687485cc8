package proxy

import (
	"strings"
	"testing"
)

func TestParseAnswer(t *testing.T) {
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-x","id":"later-id",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Sure \u00e9","tool_calls":[` +
		`{"id":"call_c","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"杭州\"}"}},` +
		`{"id":"call_p","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"a\"}"},"thought_signature":"sig"}]},` +
		`"finish_reason":"tool_calls"},{"index":1,"message":{"content":"second choice"}}],` +
		`"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`)
	a := parseAnswer(body, nil, func(n string) bool { return n == "create_order" })
	// Nothing kept may alias the body.
	for i := range body {
		body[i] = '#'
	}
	if a.id != "chatcmpl-1" || a.model != "gpt-x" || a.content != "Sure é" {
		t.Fatalf("id, model, content = %q, %q, %q", a.id, a.model, a.content)
	}
	if a.usage == nil || a.usage.TotalTokens != 7 {
		t.Fatalf("usage = %+v", a.usage)
	}
	if len(a.client) != 1 || a.client[0].ID != "call_c" || a.client[0].Name != "get_weather" ||
		a.client[0].Arguments != `{"city":"杭州"}` || a.client[0].Index != 0 {
		t.Fatalf("client calls = %+v", a.client)
	}
	if len(a.payment) != 1 || a.payment[0].ID != "call_p" || a.payment[0].Arguments != `{"sku":"a"}` ||
		a.payment[0].Index != 1 || string(a.payment[0].Extra) != `{"thought_signature":"sig"}` {
		t.Fatalf("payment calls = %+v", a.payment)
	}

	empty := parseAnswer([]byte(`{"choices":[]}`), nil, func(string) bool { return false })
	if empty.id != "" || empty.content != "" || empty.usage != nil || len(empty.client)+len(empty.payment) != 0 {
		t.Fatalf("empty answer parsed as %+v", empty)
	}
}

// Some providers send a non-stream tool call's arguments as a JSON object or
// array instead of a string; the payment tools and the bot's own call must
// get that value, not "" (which create_order would run as {}).
func TestParseAnswerArgumentsAsJSONValue(t *testing.T) {
	tests := []struct {
		name, args, want string
	}{
		{"string", `"{\"sku\":\"x\",\"quantity\":2}"`, `{"sku":"x","quantity":2}`},
		{"object", `{"sku":"x","quantity":2}`, `{"sku":"x","quantity":2}`},
		{"object with spaces", `{ "sku" : "x" }`, `{ "sku" : "x" }`},
		{"array", `[1,2]`, `[1,2]`},
		{"absent", ``, ``},
		{"null", `null`, ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fn := `"name":"%s"`
			if tc.args != "" {
				fn += `,"arguments":` + tc.args
			}
			body := []byte(`{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
				`{"id":"p","type":"function","function":{` + strings.Replace(fn, "%s", "create_order", 1) + `}},` +
				`{"id":"w","type":"function","function":{` + strings.Replace(fn, "%s", "get_weather", 1) + `}}]},"finish_reason":"tool_calls"}]}`)
			a := parseAnswer(body, nil, func(n string) bool { return n == "create_order" })
			if len(a.payment) != 1 || a.payment[0].Arguments != tc.want {
				t.Errorf("payment calls = %+v; want arguments %q", a.payment, tc.want)
			}
			if len(a.client) != 1 || a.client[0].Arguments != tc.want {
				t.Errorf("client calls = %+v; want arguments %q", a.client, tc.want)
			}
		})
	}
}

// TestParseAnswerCallsWithoutAName: a call whose name paygate cannot read
// is a payment call without a name, for the turn to refuse, as the stream
// capture reports it: handed to the bot, it would carry a call the bot
// never defined, and paygate could not tell whether it was its own. A call
// named twice (a repeated "name" or "function" member, also in another
// case) is one: parsers differ on which copy they keep, so the bot could
// read a payment call where paygate read the bot's, or the other way round.
func TestParseAnswerCallsWithoutAName(t *testing.T) {
	tests := []struct {
		name, members string // the call's members after its id and type
	}{
		{"no name", `,"function":{"arguments":"{}"}`},
		{"empty name", `,"function":{"name":"","arguments":"{}"}`},
		{"null name", `,"function":{"name":null,"arguments":"{}"}`},
		{"no function", ``},
		{"name twice", `,"function":{"name":"get_weather","name":"create_order","arguments":"{}"}`},
		{"name twice, the payment tool's first", `,"function":{"name":"create_order","name":"get_weather","arguments":"{}"}`},
		{"name twice, the same", `,"function":{"name":"create_order","name":"create_order","arguments":"{}"}`},
		{"name and Name", `,"function":{"name":"get_weather","Name":"create_order","arguments":"{}"}`},
		{"function twice", `,"function":{"name":"get_weather","arguments":"{}"},"function":{"name":"create_order","arguments":"{}"}`},
		{"function and Function", `,"function":{"name":"get_weather","arguments":"{}"},"Function":{"name":"create_order","arguments":"{}"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(`{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
				`{"id":"x","type":"function"` + tc.members + `},{"id":"w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`)
			a := parseAnswer(body, nil, func(n string) bool { return n == "create_order" })
			if len(a.payment) != 1 || a.payment[0].ID != "x" || a.payment[0].Name != "" || a.payment[0].Index != 0 {
				t.Errorf("payment calls = %+v; want the call x without a name", a.payment)
			}
			if len(a.client) != 1 || a.client[0].ID != "w" || a.client[0].Index != 0 {
				t.Errorf("client calls = %+v; want get_weather alone, at index 0", a.client)
			}
		})
	}
}
