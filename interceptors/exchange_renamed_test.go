package interceptors

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// TestRenamedTouchesOnlyThePaymentCalls: payments.tools renamed between a
// turn that handed the bot its calls and the bot's follow-up. The kept
// payment calls come back under the names in force; the bot's own call
// keeps its name even when it is an old payment tool's (the bot may
// define its own create_order once the payment tool is called buy), or
// the model reads its own tool's call as a payment it made under a name
// now the bot's. Names swapped between two tools are swapped once, not
// chained. An exchange kept by an earlier version (no names recorded)
// comes back as it was kept, and the kept exchange itself never changes.
func TestRenamedTouchesOnlyThePaymentCalls(t *testing.T) {
	was := ExchangeTools{CreateOrder: "create_order", QueryOrder: "query_order", RequestRefund: "request_refund"}
	before := json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_q","type":"function","function":{"name":"query_order","arguments":"{}"}}]}`)
	asst := `{"role":"assistant","content":null,"tool_calls":[` +
		`{"id":"call_a","type":"function","function":{"name":"create_order","arguments":"{}"}},` +
		`{"id":"call_r","type":"function","function":{"name":"request_refund","arguments":"{}"}},` +
		`{"id":"call_b","type":"function","function":{"name":"create_order","arguments":"{\"x\":1}"}}]}`
	ex := &Exchange{Before: []json.RawMessage{before}, Assistant: json.RawMessage(asst),
		Calls: []ExchangeCall{{ID: "call_b", Name: "create_order", Arguments: `{"x":1}`}}, Tools: &was}
	name := func(m json.RawMessage, id string) string {
		return gjson.GetBytes(m, `tool_calls.#(id=="`+id+`").function.name`).Str
	}
	for _, tc := range []struct {
		to         ExchangeTools
		q, a, r, b string // the names of call_q, call_a, call_r (payment) and call_b (the bot's)
	}{
		{ExchangeTools{CreateOrder: "buy", QueryOrder: "look_up", RequestRefund: "give_back"}, "look_up", "buy", "give_back", "create_order"},
		{ExchangeTools{CreateOrder: "query_order", QueryOrder: "create_order", RequestRefund: "request_refund"}, "create_order", "query_order", "request_refund", "create_order"},
	} {
		got := ex.Renamed(tc.to)
		for _, c := range []struct {
			msg      json.RawMessage
			id, want string
		}{{got.Before[0], "call_q", tc.q}, {got.Assistant, "call_a", tc.a}, {got.Assistant, "call_r", tc.r}, {got.Assistant, "call_b", tc.b}} {
			if n := name(c.msg, c.id); n != c.want {
				t.Errorf("to %+v: %s is named %q; want %q", tc.to, c.id, n, c.want)
			}
		}
		if got.Tools == nil || *got.Tools != tc.to {
			t.Errorf("to %+v: the renamed exchange's tools are %+v", tc.to, got.Tools)
		}
	}
	if string(ex.Assistant) != asst || string(ex.Before[0]) != string(before) || *ex.Tools != was {
		t.Errorf("the kept exchange changed: %s %s %+v", ex.Assistant, ex.Before[0], *ex.Tools)
	}
	if same := ex.Renamed(was); same != ex {
		t.Error("an exchange under the names in force was copied")
	}
	old := &Exchange{Assistant: json.RawMessage(asst), Calls: ex.Calls}
	if r := old.Renamed(ExchangeTools{CreateOrder: "buy", QueryOrder: "look_up", RequestRefund: "give_back"}); r != old || string(r.Assistant) != asst {
		t.Errorf("an earlier version's exchange came back renamed: %s", r.Assistant)
	}
}
