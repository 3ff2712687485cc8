package interceptors

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

var testSpec = ToolSpec{
	CreateOrder: "create_order", QueryOrder: "query_order", RequestRefund: "request_refund",
	SKUs: []SKU{
		{ID: "premium-monthly", Name: "Premium tier, 1 month", PriceFen: 4999, MaxQuantity: 12},
		{ID: "credits-100", Name: "100 credits", PriceFen: 800, MaxQuantity: 50},
	},
}

func TestPaymentTools(t *testing.T) {
	tools := PaymentTools(testSpec)
	if !gjson.ValidBytes(tools) {
		t.Fatalf("not valid JSON: %s", tools)
	}
	r := gjson.ParseBytes(tools)
	if got := r.Get("#.function.name").String(); got != `["create_order","query_order","request_refund"]` {
		t.Errorf("tool names = %s", got)
	}
	co := r.Get(`#(function.name=="create_order").function`)
	tests := []struct {
		name, path, want string
	}{
		{"type function", `0.type`, "function"},
		{"sku enum from the catalog", `0.function.parameters.properties.sku.enum`, `["premium-monthly","credits-100"]`},
		{"quantity is an integer", `0.function.parameters.properties.quantity.type`, "integer"},
		{"quantity at least 1", `0.function.parameters.properties.quantity.minimum`, "1"},
		{"quantity at most the largest sku max", `0.function.parameters.properties.quantity.maximum`, "50"},
		{"pay methods", `0.function.parameters.properties.pay_method.enum`, `["jsapi","native"]`},
		{"only sku required", `0.function.parameters.required`, `["sku"]`},
		{"no extra arguments", `0.function.parameters.additionalProperties`, "false"},
		{"query_order needs order_no", `1.function.parameters.required`, `["order_no"]`},
		{"refund needs order_no and reason", `2.function.parameters.required`, `["order_no","reason"]`},
		{"refund amount is a decimal string", `2.function.parameters.properties.amount.type`, "string"},
		{"no strict flag by default", `0.function.strict`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Get(tc.path).String(); got != tc.want {
				t.Errorf("%s = %q; want %q", tc.path, got, tc.want)
			}
		})
	}
	desc := co.Get("description").String() + co.Get("parameters.properties.sku.description").String()
	for _, must := range []string{"49.99 CNY", "8.00 CNY", "Premium tier, 1 month", "set by the system", "cannot set them"} {
		if !strings.Contains(desc, must) {
			t.Errorf("create_order descriptions lack %q: %s", must, desc)
		}
	}
	for _, name := range []string{"query_order", "request_refund"} {
		d := r.Get(`#(function.name=="` + name + `").function.description`).String()
		if !strings.Contains(d, "set by the system") {
			t.Errorf("%s description does not say the system sets payee and user: %s", name, d)
		}
	}
}

func TestPaymentToolsStrict(t *testing.T) {
	spec := testSpec
	spec.Strict = true
	r := gjson.ParseBytes(PaymentTools(spec))
	tests := []struct {
		name, path, want string
	}{
		{"strict flag", `0.function.strict`, "true"},
		{"every property required", `0.function.parameters.required`, `["sku","quantity","pay_method"]`},
		{"optional quantity is nullable", `0.function.parameters.properties.quantity.type`, `["integer","null"]`},
		{"optional pay_method enum has null", `0.function.parameters.properties.pay_method.enum`, `["jsapi","native",null]`},
		{"sku stays a plain string", `0.function.parameters.properties.sku.type`, "string"},
		{"refund amount nullable", `2.function.parameters.properties.amount.type`, `["string","null"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Get(tc.path).Raw; strings.Trim(got, `"`) != tc.want {
				t.Errorf("%s = %s; want %s", tc.path, got, tc.want)
			}
		})
	}
}

func TestPaymentToolsLeavesOut(t *testing.T) {
	tests := []struct {
		name string
		spec ToolSpec
		want string
	}{
		{"no catalog: no create_order", ToolSpec{CreateOrder: "create_order", QueryOrder: "query_order", RequestRefund: "request_refund"}, `["query_order","request_refund"]`},
		{"empty name: tool left out", ToolSpec{CreateOrder: "buy", SKUs: testSpec.SKUs, QueryOrder: "status"}, `["buy","status"]`},
		{"nothing", ToolSpec{}, `[]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tools := PaymentTools(tc.spec)
			if !gjson.ValidBytes(tools) {
				t.Fatalf("not JSON: %s", tools)
			}
			if got := gjson.ParseBytes(tools).Get("#.function.name").Raw; got != tc.want {
				t.Errorf("names = %s; want %s", got, tc.want)
			}
		})
	}
}

// TestPaymentToolsNameTheConfiguredTools: the definitions name the other
// payment tools as payments.tools names them. The names are configurable
// above all so that a bot's own create_order keeps its name: query_order's
// order_no, described as what "create_order returned", pointed the model at
// the bot's tool (or at one offered to nobody), never at paygate's.
func TestPaymentToolsNameTheConfiguredTools(t *testing.T) {
	tests := []struct {
		name    string
		spec    ToolSpec
		want    string // in query_order's order_no description
		mustNot string
	}{
		{"renamed", ToolSpec{CreateOrder: "pg_buy", QueryOrder: "pg_status", RequestRefund: "pg_refund", SKUs: testSpec.SKUs}, "pg_buy", "create_order"},
		{"default names", testSpec, "create_order", ""},
		{"no create_order offered", ToolSpec{CreateOrder: "create_order", QueryOrder: "query_order"}, "payment state", "create_order"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := gjson.ParseBytes(PaymentTools(tc.spec))
			q := r.Get(`#(function.name=="` + tc.spec.QueryOrder + `").function`)
			d := q.Get("description").String() + " " + q.Get("parameters.properties.order_no.description").String()
			if !strings.Contains(d, tc.want) {
				t.Errorf("query_order descriptions lack %q: %s", tc.want, d)
			}
			if tc.mustNot != "" && strings.Contains(d, tc.mustNot) {
				t.Errorf("query_order descriptions name %q, a tool the model is not offered as paygate's: %s", tc.mustNot, d)
			}
		})
	}
}

func TestAddTools(t *testing.T) {
	tools := PaymentTools(testSpec)
	names := testSpec.Names()
	client := `{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}`
	tests := []struct {
		name      string
		body      string
		wantNames string
		prefix    string // the client's bytes that must stay as they were
		wantErr   bool
	}{
		{
			name:      "appended after the client's tools, which stay byte for byte",
			body:      `{"model":"m","tools":[ ` + client + ` ],"messages":[{"role":"user","content":"hi"}]}`,
			wantNames: `["get_weather","create_order","query_order","request_refund"]`,
			prefix:    `{"model":"m","tools":[ ` + client,
		},
		{
			name:      "tools created when absent",
			body:      `{"model":"m","messages":[],"x_unknown":{"keep":true}}`,
			wantNames: `["create_order","query_order","request_refund"]`,
			prefix:    `{"model":"m","messages":[],"x_unknown":{"keep":true}`,
		},
		{
			name:      "tools created in an empty object",
			body:      `{ }`,
			wantNames: `["create_order","query_order","request_refund"]`,
			prefix:    `{ "tools":[`,
		},
		{
			name:      "tools created before whitespace around the object",
			body:      " \n{\"model\":\"m\" }\n",
			wantNames: `["create_order","query_order","request_refund"]`,
			prefix:    " \n{\"model\":\"m\" ,\"tools\":[",
		},
		{
			name:      "empty client array",
			body:      `{"tools":[ ],"model":"m"}`,
			wantNames: `["create_order","query_order","request_refund"]`,
			prefix:    `{"tools":[`,
		},
		{
			name:      "null tools",
			body:      `{"tools":null,"model":"m"}`,
			wantNames: `["create_order","query_order","request_refund"]`,
		},
		{name: "a client tool named like a payment tool", body: `{"tools":[{"type":"function","function":{"name":"create_order"}}]}`, wantErr: true},
		{name: "a custom tool named like a payment tool", body: `{"tools":[{"type":"custom","custom":{"name":"request_refund"}}]}`, wantErr: true},
		{name: "tools not an array", body: `{"tools":{"name":"x"}}`, wantErr: true},
		// A provider's parser may read any copy of a repeated or case-variant
		// member (most keep the last duplicate; Go's encoding/json matches
		// names case-insensitively), so every copy is checked.
		{name: "a payment name in the last of two names", body: `{"tools":[{"type":"function","function":{"name":"lookup","name":"create_order"}}]}`, wantErr: true},
		{name: "a payment name in the last of two function objects", body: `{"tools":[{"type":"function","function":{"name":"lookup"},"function":{"name":"create_order"}}]}`, wantErr: true},
		{name: "a payment name under a case-variant name key", body: `{"tools":[{"type":"function","function":{"name":"lookup","Name":"create_order"}}]}`, wantErr: true},
		{name: "a payment name under a case-variant function key", body: `{"tools":[{"type":"function","function":{"name":"lookup"},"FUNCTION":{"name":"create_order"}}]}`, wantErr: true},
		{name: "a payment name under an escaped name key", body: `{"tools":[{"type":"function","function":{"name":"lookup","n\u0061me":"create_order"}}]}`, wantErr: true},
		{name: "a payment name spelled with escapes", body: `{"tools":[{"type":"function","function":{"name":"create\u005forder"}}]}`, wantErr: true},
		{
			name:      "two names that are both the client's own",
			body:      `{"model":"m","tools":[{"type":"function","function":{"name":"lookup","name":"get_weather"}}]}`,
			wantNames: `["lookup","create_order","query_order","request_refund"]`,
			prefix:    `{"model":"m","tools":[{"type":"function","function":{"name":"lookup","name":"get_weather"}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			out, err := AddTools(body, tools, names)
			if tc.wantErr {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("err = %v; want ErrBadRequest", err)
				}
				if strings.Contains(tc.body, "create_order") && !strings.Contains(err.Error(), "create_order") {
					t.Errorf("error %q does not name the clash", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !gjson.ValidBytes(out) {
				t.Fatalf("not JSON: %s", out)
			}
			if got := gjson.GetBytes(out, "tools.#.function.name").Raw; got != tc.wantNames {
				t.Errorf("tool names = %s; want %s", got, tc.wantNames)
			}
			if !bytes.HasPrefix(out, []byte(tc.prefix)) {
				t.Errorf("client bytes changed:\n got %s\nwant prefix %s", out, tc.prefix)
			}
			if string(body) != tc.body {
				t.Errorf("input body modified")
			}
			// A body with no tools member (Chat.HasTools false) may take
			// AppendTools, with the same result.
			if !gjson.GetBytes(body, "tools").Exists() {
				app, err := AppendTools(body, tools)
				if err != nil || !bytes.Equal(app, out) {
					t.Errorf("AppendTools = %s, %v; AddTools gave %s", app, err, out)
				}
				if string(body) != tc.body {
					t.Errorf("AppendTools modified the input body")
				}
			}
			// The payment tools arrive byte for byte, after the client's.
			all := gjson.GetBytes(out, "tools").Array()
			mine := gjson.ParseBytes(tools).Array()
			for i, m := range mine {
				if got := all[len(all)-len(mine)+i].Raw; got != m.Raw {
					t.Errorf("payment tool %d changed: %s", i, got)
				}
			}
		})
	}
}

// TestCheckFunctions: a legacy "functions" entry named like a payment tool
// is the name clash AddTools refuses in "tools" (SPEC 3: a 400), read by
// the same rules: every copy of the name, in any case of its key.
func TestCheckFunctions(t *testing.T) {
	names := testSpec.Names()
	tests := []struct {
		name, body string
		wantErr    string // in the error; "" for none
	}{
		{"no functions", `{"model":"m","messages":[]}`, ""},
		{"null functions", `{"model":"m","functions":null}`, ""},
		{"the client's own functions", `{"functions":[{"name":"get_weather","parameters":{"type":"object"}},{"name":"lookup"}]}`, ""},
		{"two names that are both the client's own", `{"functions":[{"name":"lookup","name":"get_weather"}]}`, ""},
		{"a function named like a payment tool", `{"functions":[{"name":"get_weather"},{"name":"query_order","parameters":{"type":"object"}}]}`, `"query_order" is reserved`},
		{"a payment name in the last of two names", `{"functions":[{"name":"lookup","name":"create_order"}]}`, `"create_order" is reserved`},
		{"a payment name under a case-variant name key", `{"functions":[{"name":"lookup","NAME":"request_refund"}]}`, `"request_refund" is reserved`},
		{"a payment name under an escaped name key", `{"functions":[{"name":"lookup","n\u0061me":"create_order"}]}`, `"create_order" is reserved`},
		{"a payment name spelled with escapes", `{"functions":[{"name":"create\u005forder"}]}`, `"create_order" is reserved`},
		{"an escaped functions key", `{"function\u0073":[{"name":"create_order"}]}`, `"create_order" is reserved`},
		{"functions not an array", `{"functions":{"name":"create_order"}}`, "'functions' must be an array"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckFunctions([]byte(tc.body), names)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v; want none", err)
				}
				return
			}
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v; want ErrBadRequest with %q", err, tc.wantErr)
			}
		})
	}
}

func TestSetToolChoiceNone(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"absent", `{"model":"m","tools":[{}],"messages":[]}`, `{"model":"m","tools":[{}],"messages":[],"tool_choice":"none"}`},
		{"auto", `{"tool_choice":"auto","model":"m","tools":[{}]}`, `{"tool_choice":"none","model":"m","tools":[{}]}`},
		{"forced function", `{"model":"m","tools":[{}],"tool_choice":{"type":"function","function":{"name":"x"}},"n":1}`, `{"model":"m","tools":[{}],"tool_choice":"none","n":1}`},
		{"no tools: no tool_choice", `{"model":"m","messages":[]}`, `{"model":"m","messages":[]}`},
		{"legacy function_call", `{"model":"m","functions":[{}],"function_call":{"name":"x"}}`, `{"model":"m","functions":[{}],"function_call":"none"}`},
		{"legacy functions without function_call", `{"model":"m","functions":[{}]}`, `{"model":"m","functions":[{}],"function_call":"none"}`},
		{"both", `{"model":"m","tools":[{}],"function_call":"auto"}`, `{"model":"m","tools":[{}],"function_call":"none","tool_choice":"none"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := SetToolChoiceNone([]byte(tc.body))
			if err != nil || string(out) != tc.want {
				t.Errorf("got %s, %v; want %s", out, err, tc.want)
			}
		})
	}
}

func TestInsertStateMessage(t *testing.T) {
	const text = "Payment state: order PG1 \"premium\" is paid.\nOrder PG2 awaits payment."
	tests := []struct {
		name    string
		body    string
		before  string // bytes that must precede the inserted message unchanged
		wantAt  int    // index of the system message in messages
		wantErr bool
	}{
		{
			name:   "before the last user message",
			body:   `{"model":"m","messages":[{"role":"system","content":"You sell plans."},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"buy premium"}],"stream":true}`,
			before: `{"model":"m","messages":[{"role":"system","content":"You sell plans."},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},`,
			wantAt: 3,
		},
		{
			name:   "last user message followed by tool messages",
			body:   `{"messages":[ {"role":"user","content":"x"} , {"role":"assistant","tool_calls":[]},{"role":"tool","tool_call_id":"a","content":"{}"}]}`,
			before: `{"messages":[ `,
			wantAt: 0,
		},
		{
			name:   "no user message: appended",
			body:   `{"messages":[{"role":"system","content":"s"}],"model":"m"}`,
			before: `{"messages":[{"role":"system","content":"s"}`,
			wantAt: 1,
		},
		{name: "messages missing", body: `{"model":"m"}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, at, err := InsertStateMessage([]byte(tc.body), text)
			if tc.wantErr {
				if !errors.Is(err, ErrBadRequest) {
					t.Errorf("err = %v; want ErrBadRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !gjson.ValidBytes(out) {
				t.Fatalf("not JSON: %s", out)
			}
			if !bytes.HasPrefix(out, []byte(tc.before)) {
				t.Errorf("prefix changed:\n got %s\nwant prefix %s", out, tc.before)
			}
			msgs := gjson.GetBytes(out, "messages").Array()
			if len(msgs) != len(gjson.Get(tc.body, "messages").Array())+1 {
				t.Fatalf("messages = %d", len(msgs))
			}
			if at != tc.wantAt {
				t.Errorf("index %d; want %d", at, tc.wantAt)
			}
			m := msgs[tc.wantAt]
			if m.Get("role").String() != "system" || m.Get("content").String() != text {
				t.Errorf("message %d = %s; want the state message", tc.wantAt, m.Raw)
			}
			// Everything after the inserted message is the client's too.
			ins := m.Raw
			i := bytes.Index(out, []byte(ins))
			rest := string(out[i+len(ins):])
			if tc.wantAt < len(msgs)-1 {
				rest = strings.TrimPrefix(rest, ",")
			}
			if !strings.HasSuffix(tc.body, rest) {
				t.Errorf("bytes after the inserted message changed: %s", rest)
			}
		})
	}
}

func TestAppendMessages(t *testing.T) {
	asst := AssistantToolMessage("", []ToolCall{{ID: "c1", Name: "create_order", Arguments: `{"sku":"x"}`}})
	res := ToolResultMessage("c1", []byte(`{"order_no":"PG1","status":"awaiting_payment"}`))
	tests := []struct {
		name, body string
		msgs       [][]byte
		want       string
		wantErr    bool
	}{
		{
			name: "two messages",
			body: `{"messages":[{"role":"user","content":"buy"}],"model":"m"}`,
			msgs: [][]byte{asst, res},
			want: `{"messages":[{"role":"user","content":"buy"},` + string(asst) + `,` + string(res) + `],"model":"m"}`,
		},
		{
			name: "empty messages",
			body: `{"messages":[],"model":"m"}`,
			msgs: [][]byte{res},
			want: `{"messages":[` + string(res) + `],"model":"m"}`,
		},
		{name: "invalid message", body: `{"messages":[]}`, msgs: [][]byte{[]byte(`{"role":`)}, wantErr: true},
		{name: "no messages", body: `{}`, msgs: [][]byte{res}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := AppendMessages([]byte(tc.body), tc.msgs...)
			if tc.wantErr {
				if err == nil {
					t.Errorf("got %s; want an error", out)
				}
				return
			}
			if err != nil || string(out) != tc.want {
				t.Errorf("got %s, %v;\nwant %s", out, err, tc.want)
			}
		})
	}
}

// TestRelaxToolChoice: after a payment round, a tool_choice that forced a
// tool call becomes "auto" (the call was made; forced again the model never
// answers in words); one naming the client's own function stays.
func TestRelaxToolChoice(t *testing.T) {
	isPayment := func(n string) bool { return n == "query_order" }
	const msgs = `"messages":[{"role":"user","content":"x"}]`
	tests := []struct {
		name, in, want string // want: tool_choice's raw value after; "" for absent
	}{
		{"required", `{"tool_choice":"required",` + msgs + `}`, `"auto"`},
		{"any, Mistral's required", `{"tool_choice":"any",` + msgs + `}`, `"auto"`},
		{"auto stays", `{"tool_choice":"auto",` + msgs + `}`, `"auto"`},
		{"none stays", `{"tool_choice":"none",` + msgs + `}`, `"none"`},
		{"absent stays absent", `{` + msgs + `}`, ``},
		{"a payment tool by name", `{"tool_choice":{"type":"function","function":{"name":"query_order"}},` + msgs + `}`, `"auto"`},
		{"the client's function by name stays", `{"tool_choice":{"type":"function","function":{"name":"get_weather"}},` + msgs + `}`,
			`{"type":"function","function":{"name":"get_weather"}}`},
		{"allowed_tools required", `{"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"function","function":{"name":"get_weather"}}]}},` + msgs + `}`,
			`{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"get_weather"}}]}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := RelaxToolChoice([]byte(tc.in), isPayment)
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(out, "tool_choice").Raw; got != tc.want {
				t.Errorf("tool_choice %s; want %s", got, tc.want)
			}
			if got := gjson.GetBytes(out, "messages").Raw; got != gjson.Get(tc.in, "messages").Raw {
				t.Errorf("messages changed: %s", got)
			}
		})
	}
}

// TestReadPaymentChoice: what a bot's tool_choice lets the model call of
// the payment tools.
func TestReadPaymentChoice(t *testing.T) {
	isPayment := func(n string) bool { return n == "create_order" || n == "query_order" }
	tests := []struct {
		name, choice string
		none         bool
		allows       []string // of create_order, query_order
		functionCall string   // the legacy function_call beside it
	}{
		{"absent", ``, false, []string{"create_order", "query_order"}, ""},
		{"auto", `"auto"`, false, []string{"create_order", "query_order"}, ""},
		{"required", `"required"`, false, []string{"create_order", "query_order"}, ""},
		{"any", `"any"`, false, []string{"create_order", "query_order"}, ""},
		{"none", `"none"`, true, nil, ""},
		{"flat none", `{"type":"none"}`, true, nil, ""},
		{"forced own function", `{"type":"function","function":{"name":"get_weather"}}`, true, nil, ""},
		{"forced own custom tool", `{"type":"custom","custom":{"name":"grammar"}}`, true, nil, ""},
		{"forced own tool, flat", `{"type":"tool","name":"get_weather"}`, true, nil, ""},
		{"forced payment function", `{"type":"function","function":{"name":"query_order"}}`, false, []string{"query_order"}, ""},
		{"allowed_tools own only", `{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"get_weather"}}]}}`, true, nil, ""},
		{"allowed_tools with query_order", `{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"function","function":{"name":"get_weather"}},{"type":"function","function":{"name":"query_order"}}]}}`, false, []string{"query_order"}, ""},
		{"allowed_tools, flat", `{"type":"allowed_tools","mode":"auto","tools":[{"type":"function","name":"create_order"}]}`, false, []string{"create_order"}, ""},
		{"unknown object restricts nothing", `{"type":"validated"}`, false, []string{"create_order", "query_order"}, ""},
		// The legacy function_call, with the same meaning; beside a
		// tool_choice, a payment tool is allowed only if both allow it.
		{"function_call none", ``, true, nil, `"none"`},
		{"function_call auto", ``, false, []string{"create_order", "query_order"}, `"auto"`},
		{"function_call forced own", ``, true, nil, `{"name":"get_weather"}`},
		{"function_call forced payment", ``, false, []string{"query_order"}, `{"name":"query_order"}`},
		{"function_call without a name", ``, true, nil, `{}`},
		{"auto and function_call none", `"auto"`, true, nil, `"none"`},
		{"none and function_call auto", `"none"`, true, nil, `"auto"`},
		{"allowed_tools and function_call forced payment", `{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"query_order"}},{"type":"function","function":{"name":"create_order"}}]}}`,
			false, []string{"create_order"}, `{"name":"create_order"}`},
		{"forced payment and function_call forced another", `{"type":"function","function":{"name":"query_order"}}`, true, nil, `{"name":"create_order"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ReadPaymentChoice(tc.choice, tc.functionCall, isPayment)
			if p.None() != tc.none {
				t.Errorf("None() %v; want %v", p.None(), tc.none)
			}
			for _, n := range []string{"create_order", "query_order"} {
				if got, want := p.Allows(n), slices.Contains(tc.allows, n); got != want {
					t.Errorf("Allows(%s) %v; want %v", n, got, want)
				}
			}
		})
	}
}

// TestPaymentToolsSayEachThingOnce: the definitions go to the provider with
// every signed-in turn and are billed as prompt tokens each time, so what
// they say is said once. The catalog (an item's name and price) was listed
// in create_order's description and again in its sku parameter's, doubling
// its cost with every item a merchant adds; the sentence that the system
// sets price, payee and user stays in every tool (the model reads each
// definition on its own) in its shortest form.
func TestPaymentToolsSayEachThingOnce(t *testing.T) {
	spec := testSpec
	for i := range 20 {
		spec.SKUs = append(spec.SKUs, SKU{ID: "sku-" + strconv.Itoa(i), Name: "Item number " + strconv.Itoa(i), PriceFen: int64(100 + i), MaxQuantity: 3})
	}
	tools := string(PaymentTools(spec))
	for _, s := range spec.SKUs {
		entry := s.Name + ", " + FormatFen(s.PriceFen)
		if n := strings.Count(tools, entry); n != 1 {
			t.Errorf("%q said %d times in the tool definitions; want once", entry, n)
		}
	}
	if n := strings.Count(tools, systemSets); n != 3 {
		t.Errorf("the system sentence is in %d definitions; want 3", n)
	}
	if len(systemSets) > 80 {
		t.Errorf("the system sentence, said in every tool, is %d bytes: %q", len(systemSets), systemSets)
	}
}

// TestSKUEnumWithinPublishedBounds: the sku enum is the catalog's ids for
// a catalog of at most 100 items, and left out past that (Gemini refuses
// enums of 100 to 260 values, OpenAI's strict mode past 1000), the ids then
// named by the catalog in the sku description; the create_order
// description stays under OpenAI's 1024 characters whatever the catalog.
func TestSKUEnumWithinPublishedBounds(t *testing.T) {
	catalog := func(n, idLen int) ToolSpec {
		spec := testSpec
		spec.SKUs = nil
		for i := range n {
			id := fmt.Sprintf("%0*d", idLen, i)
			spec.SKUs = append(spec.SKUs, SKU{ID: id, Name: "Item " + id, PriceFen: 100, MaxQuantity: 2})
		}
		return spec
	}
	for _, tc := range []struct {
		n, idLen int
		enum     bool
	}{{1, 32, true}, {100, 32, true}, {101, 6, false}, {998, 6, false}, {5000, 9, false}} {
		spec := catalog(tc.n, tc.idLen)
		tools := gjson.ParseBytes(PaymentTools(spec))
		sku := tools.Get("0.function.parameters.properties.sku")
		if got := sku.Get("enum").Exists(); got != tc.enum {
			t.Errorf("%d ids of %d characters: enum %v; want %v", tc.n, tc.idLen, got, tc.enum)
		}
		last := spec.SKUs[tc.n-1].ID
		if !strings.Contains(sku.Get("description").Str, last+" = Item "+last+", 1.00 CNY") {
			t.Errorf("%d ids: the sku description does not list %s", tc.n, last)
		}
		if d := tools.Get("0.function.description").Str; utf8.RuneCountInString(d) > 1024 {
			t.Errorf("%d ids: create_order's description is %d characters", tc.n, utf8.RuneCountInString(d))
		}
	}
}
