package interceptors

import "testing"

// TestNullFunctionOrCustomNamesNothing: a null "custom" beside a call's
// "function" (relays that serialize unset fields as null), or a null
// "function" beside its "custom", names nothing: the call is the other
// member's. A null beside an object of the same name, in any case, is a
// copy parsers read differently: the call names itself twice.
func TestNullFunctionOrCustomNamesNothing(t *testing.T) {
	for _, tc := range []struct {
		name, entry string
		payment     []ToolCall
		client      []ToolCall
	}{
		{"custom null beside a payment call", `{"index":0,"id":"p","type":"function","custom":null,"function":{"name":"create_order","arguments":"{}"}}`,
			[]ToolCall{{ID: "p", Name: "create_order", Arguments: "{}"}}, nil},
		{"custom null beside the bot's call", `{"index":0,"id":"w","type":"function","function":{"name":"get_weather","arguments":"{}"},"custom":null}`,
			nil, []ToolCall{{ID: "w", Name: "get_weather", Arguments: "{}"}}},
		{"function null beside a custom call", `{"index":0,"id":"w","type":"custom","function":null,"custom":{"name":"get_weather","input":"x"}}`,
			nil, []ToolCall{{ID: "w", Name: "get_weather", Arguments: "x", Custom: true}}},
		{"function null after function", `{"index":0,"id":"p","type":"function","function":{"name":"get_weather","arguments":"{}"},"function":null}`,
			[]ToolCall{{ID: "p", Arguments: "{}"}}, nil},
		{"Function null beside function", `{"index":0,"id":"p","type":"function","Function":null,"function":{"name":"get_weather","arguments":"{}"}}`,
			[]ToolCall{{ID: "p", Arguments: "{}"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res := run(t, []string{`{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[` + tc.entry + `]},"finish_reason":"tool_calls"}]}`})
			checkCalls(t, "payment calls", res[0].PaymentCalls, tc.payment)
			checkCalls(t, "client calls", res[0].ClientCalls, tc.client)
		})
	}
}
