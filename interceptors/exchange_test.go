package interceptors

import (
	"encoding/json"
	"testing"
)

func TestRestoreExchanges(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_client","type":"function","function":{"name":"lookup","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_client","content":"42"},{"role":"user","content":"b"}],"x":1}`
	ex := &Exchange{
		Assistant: json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{}"}},{"id":"call_client","type":"function","function":{"name":"lookup","arguments":"{}"}}]}`),
		Results:   []json.RawMessage{json.RawMessage(`{"role":"tool","tool_call_id":"call_pay","content":"ok"}`)},
	}
	// A turn whose payment round came before the round with the client's
	// call: that round's messages go back first, in order.
	before := &Exchange{
		Before: []json.RawMessage{
			json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{}"}}]}`),
			json.RawMessage(`{"role":"tool","tool_call_id":"call_pay","content":"ok"}`),
		},
		Assistant: json.RawMessage(`{"role":"assistant","content":"sent","tool_calls":[{"id":"call_client","type":"function","function":{"name":"lookup","arguments":"{}"}}]}`),
	}
	tests := []struct {
		name  string
		known map[string]*Exchange
		want  string
		n     int
	}{
		{"no exchange kept: unchanged", nil, body, 0},
		{"exchange restored in place", map[string]*Exchange{"call_client": ex},
			`{"model":"m","messages":[{"role":"user","content":"a"},` + string(ex.Assistant) + `,` + string(ex.Results[0]) + `,{"role":"tool","tool_call_id":"call_client","content":"42"},{"role":"user","content":"b"}],"x":1}`, 1},
		{"another conversation's exchange never matches", map[string]*Exchange{"call_other": ex}, body, 0},
		{"earlier rounds restored before the assistant message", map[string]*Exchange{"call_client": before},
			`{"model":"m","messages":[{"role":"user","content":"a"},` + string(before.Before[0]) + `,` + string(before.Before[1]) + `,` + string(before.Assistant) + `,{"role":"tool","tool_call_id":"call_client","content":"42"},{"role":"user","content":"b"}],"x":1}`, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := RestoreExchanges([]byte(body), func(id string) *Exchange { return tc.known[id] })
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || n != tc.n {
				t.Errorf("got %s (%d); want %s (%d)", got, n, tc.want, tc.n)
			}
		})
	}
}
