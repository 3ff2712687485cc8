package interceptors

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
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

// TestRestoreExchangesOnlyIntoTheSameCalls: a kept exchange goes back only
// into an assistant message whose tool calls are exactly the client calls
// it was kept with (ids, names, arguments as JSON values, any order), and
// into one such message only: a call id alone does not name a turn where a
// provider reuses ids (Kimi K2's "functions.<name>:<n>").
func TestRestoreExchangesOnlyIntoTheSameCalls(t *testing.T) {
	ex := &Exchange{
		Assistant: json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"functions.create_order:0","type":"function","function":{"name":"create_order","arguments":"{}"}},{"id":"functions.lookup:1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"a\",\"n\":1}"}},{"id":"functions.lookup:2","type":"function","function":{"name":"lookup","arguments":""}}]}`),
		Results:   []json.RawMessage{json.RawMessage(`{"role":"tool","tool_call_id":"functions.create_order:0","content":"ok"}`)},
		Calls: []ExchangeCall{
			{ID: "functions.lookup:1", Name: "lookup", Arguments: `{"q":"a","n":1}`},
			{ID: "functions.lookup:2", Name: "lookup", Arguments: ``},
		},
	}
	call := func(id, name, args string) string {
		return `{"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":` + args + `}}`
	}
	first := call("functions.lookup:1", "lookup", `"{\"q\":\"a\",\"n\":1}"`)
	second := call("functions.lookup:2", "lookup", `"{}"`)
	msg := func(calls ...string) string {
		return `{"role":"assistant","content":null,"tool_calls":[` + strings.Join(calls, ",") + `]}`
	}
	restored := string(ex.Assistant) + `,` + string(ex.Results[0])
	tests := []struct {
		name string
		msgs []string // the assistant messages of the bot's conversation
		want []string // what each becomes; "" for unchanged
	}{
		{"the same calls", []string{msg(first, second)}, []string{restored}},
		{"in another order", []string{msg(second, first)}, []string{restored}},
		{"arguments re-encoded", []string{msg(call("functions.lookup:1", "lookup", `"{ \"n\": 1, \"q\": \"\\u0061\" }"`), second)}, []string{restored}},
		{"arguments as an object", []string{msg(call("functions.lookup:1", "lookup", `{"q":"a","n":1}`), call("functions.lookup:2", "lookup", `{}`))}, []string{restored}},
		{"other arguments", []string{msg(call("functions.lookup:1", "lookup", `"{\"q\":\"b\",\"n\":1}"`), second)}, []string{""}},
		{"another name", []string{msg(call("functions.lookup:1", "search", `"{\"q\":\"a\",\"n\":1}"`), second)}, []string{""}},
		{"one call missing", []string{msg(first)}, []string{""}},
		{"one call more", []string{msg(first, second, call("functions.lookup:3", "lookup", `"{}"`))}, []string{""}},
		{"the same id twice", []string{msg(first, first)}, []string{""}},
		{"a later turn with other calls under the same ids", []string{msg(first, second), msg(call("functions.lookup:1", "lookup", `"{}"`), second)}, []string{restored, ""}},
		{"two messages with the calls: which turn is unknown", []string{msg(first, second), msg(first, second)}, []string{"", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in, want []string
			for i, m := range tc.msgs {
				result := `{"role":"tool","tool_call_id":"functions.lookup:1","content":"` + strconv.Itoa(i) + `"}`
				in = append(in, m, result)
				if tc.want[i] == "" {
					want = append(want, m, result)
				} else {
					want = append(want, tc.want[i], result)
				}
			}
			body := `{"messages":[{"role":"user","content":"a"},` + strings.Join(in, ",") + `]}`
			got, _, err := RestoreExchanges([]byte(body), func(id string) *Exchange {
				if id == "functions.lookup:1" || id == "functions.lookup:2" {
					return ex
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if w := `{"messages":[{"role":"user","content":"a"},` + strings.Join(want, ",") + `]}`; string(got) != w {
				t.Errorf("got  %s\nwant %s", got, w)
			}
		})
	}
}

// TestRestoreExchangesTwoMatchesBesideAnother: an exchange two messages
// match is restored into neither, also when another exchange's message lies
// between them (the count must not shift as matches are dropped).
func TestRestoreExchangesTwoMatchesBesideAnother(t *testing.T) {
	call := func(id string) string {
		return `{"id":"` + id + `","type":"function","function":{"name":"lookup","arguments":"{}"}}`
	}
	msg := func(id string) string { return `{"role":"assistant","content":null,"tool_calls":[` + call(id) + `]}` }
	exchange := func(id string) *Exchange {
		return &Exchange{
			Assistant: json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"pay-` + id + `","type":"function","function":{"name":"create_order","arguments":"{}"}},` + call(id) + `]}`),
			Results:   []json.RawMessage{json.RawMessage(`{"role":"tool","tool_call_id":"pay-` + id + `","content":"ok"}`)},
			Calls:     []ExchangeCall{{ID: id, Name: "lookup", Arguments: "{}"}},
		}
	}
	kept := map[string]*Exchange{"c1": exchange("c1"), "b1": exchange("b1")}
	result := func(id string) string { return `{"role":"tool","tool_call_id":"` + id + `","content":"r"}` }
	body := `{"messages":[` + strings.Join([]string{msg("c1"), result("c1"), msg("b1"), result("b1"), msg("c1"), result("c1")}, ",") + `]}`
	got, n, err := RestoreExchanges([]byte(body), func(id string) *Exchange { return kept[id] })
	if err != nil {
		t.Fatal(err)
	}
	b := kept["b1"]
	want := `{"messages":[` + strings.Join([]string{msg("c1"), result("c1"), string(b.Assistant) + "," + string(b.Results[0]), result("b1"), msg("c1"), result("c1")}, ",") + `]}`
	if n != 1 || string(got) != want {
		t.Errorf("restored %d:\ngot  %s\nwant %s", n, got, want)
	}
}

// TestRestoreExchangesCustomCalls: a kept exchange whose client call is to a
// custom tool (its name and input in "custom") goes back into the bot's
// echo of that call, kept with the calls or read from the assistant message
// of an exchange kept without them, and only into a custom call with the
// same input as text: a function call of the same name is another call.
// An exchange kept before calls had a kind is of function calls.
func TestRestoreExchangesCustomCalls(t *testing.T) {
	asst := json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{}"}},{"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"{\"q\":1}"}}]}`)
	results := []json.RawMessage{json.RawMessage(`{"role":"tool","tool_call_id":"call_a","content":"ok"}`)}
	withCalls := &Exchange{Assistant: asst, Results: results,
		Calls: []ExchangeCall{{ID: "call_c", Name: "run_sql", Arguments: `{"q":1}`, Custom: true}}}
	withoutCalls := &Exchange{Assistant: asst, Results: results}
	var stored Exchange // as the version before call kinds kept it
	if err := json.Unmarshal([]byte(`{"assistant":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{}"}},{"id":"call_c","type":"function","function":{"name":"run_sql","arguments":"{\"q\":1}"}}]},"results":[{"role":"tool","tool_call_id":"call_a","content":"ok"}],"calls":[{"id":"call_c","name":"run_sql","arguments":"{\"q\":1}"}]}`), &stored); err != nil {
		t.Fatal(err)
	}
	custom := `{"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"{\"q\":1}"}}`
	function := `{"id":"call_c","type":"function","function":{"name":"run_sql","arguments":"{\"q\":1}"}}`
	tests := []struct {
		name     string
		ex       *Exchange
		call     string // the bot's echo
		restored bool
	}{
		{"the custom call echoed", withCalls, custom, true},
		{"the custom call echoed, exchange kept without calls", withoutCalls, custom, true},
		{"echoed as a function call", withCalls, function, false},
		{"echoed as a function call, exchange kept without calls", withoutCalls, function, false},
		{"another input", withCalls, `{"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"{\"q\":2}"}}`, false},
		{"the input re-spaced: other text", withCalls, `{"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"{\"q\": 1}"}}`, false},
		{"another name", withCalls, `{"id":"call_c","type":"custom","custom":{"name":"run_py","input":"{\"q\":1}"}}`, false},
		{"a stored exchange without kinds: a function call", &stored, function, true},
		{"a stored exchange without kinds: not a custom call", &stored, custom, false},
		// A bot whose JSON library writes unset fields as null: a null
		// "function" names nothing, the call is the custom one.
		{"the custom call echoed with a null function", withCalls, `{"id":"call_c","type":"custom","function":null,"custom":{"name":"run_sql","input":"{\"q\":1}"}}`, true},
		{"a function call echoed with a null custom", &stored, `{"id":"call_c","type":"function","custom":null,"function":{"name":"run_sql","arguments":"{\"q\":1}"}}`, true},
		// A null beside an object of the same name, in any case, names
		// the call twice: no name, not the kept call.
		{"a null Custom copy beside the custom call", withCalls, `{"id":"call_c","type":"custom","function":null,"custom":{"name":"run_sql","input":"{\"q\":1}"},"Custom":null}`, false},
		{"a null Function copy beside the function call", &stored, `{"id":"call_c","type":"function","Function":null,"function":{"name":"run_sql","arguments":"{\"q\":1}"}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := `{"role":"assistant","content":null,"tool_calls":[` + tc.call + `]}`
			result := `{"role":"tool","tool_call_id":"call_c","content":"1"}`
			body := `{"messages":[{"role":"user","content":"a"},` + msg + `,` + result + `]}`
			got, n, err := RestoreExchanges([]byte(body), func(id string) *Exchange {
				if id == "call_c" {
					return tc.ex
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := body
			if tc.restored {
				want = `{"messages":[{"role":"user","content":"a"},` + string(tc.ex.Assistant) + `,` + string(tc.ex.Results[0]) + `,` + result + `]}`
			}
			if string(got) != want || (n == 1) != tc.restored {
				t.Errorf("restored %d:\ngot  %s\nwant %s", n, got, want)
			}
		})
	}
}

// BenchmarkRestoreExchangesLongConversation restores one kept exchange at
// the end of conversations of growing length: the pass over the messages
// must grow linearly with the body (ns/op per message about constant across
// the sizes), as it runs before the turn's first upstream call for every
// signed-in request that mentions "tool_calls".
func BenchmarkRestoreExchangesLongConversation(b *testing.B) {
	ex := &Exchange{
		Assistant: json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{}"}},{"id":"call_client","type":"function","function":{"name":"lookup","arguments":"{}"}}]}`),
		Results:   []json.RawMessage{json.RawMessage(`{"role":"tool","tool_call_id":"call_pay","content":"ok"}`)},
	}
	for _, n := range []int{2500, 5000, 10000, 20000} {
		var sb strings.Builder
		sb.WriteString(`{"model":"m","messages":[`)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			if i%10 == 9 {
				// An assistant message with a call of the bot's own that no
				// exchange knows: looked up, not restored.
				sb.WriteString(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_` + strconv.Itoa(i) + `","type":"function","function":{"name":"lookup","arguments":"{}"}}]}`)
				continue
			}
			sb.WriteString(`{"role":"user","content":"hello there"}`)
		}
		sb.WriteString(`,{"role":"assistant","content":null,"tool_calls":[{"id":"call_client","type":"function","function":{"name":"lookup","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_client","content":"42"}]}`)
		body := []byte(sb.String())
		lookup := func(id string) *Exchange {
			if id == "call_client" {
				return ex
			}
			return nil
		}
		b.Run(strconv.Itoa(n)+"msgs", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, k, err := RestoreExchanges(body, lookup); err != nil || k != 1 {
					b.Fatalf("restored %d: %v", k, err)
				}
			}
		})
	}
}

// TestRestoreExchangesAtExactAndLoose: two turns' assistant messages carry
// the same call (a provider that numbers ids per answer, the same lookup
// each turn); what the store holds for each place decides. An exchange
// kept for a place goes there; a loose one (kept for the calls alone, or
// by an earlier paygate under the id alone) goes where no message matches
// it exactly, the next loose one when the first is taken so; one that two
// messages take alike goes nowhere.
func TestRestoreExchangesAtExactAndLoose(t *testing.T) {
	const call = `{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{}"}}`
	exchange := func(pay string) *Exchange {
		return &Exchange{
			Assistant: json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"` + pay + `","type":"function","function":{"name":"create_order","arguments":"{}"}},` + call + `]}`),
			Results:   []json.RawMessage{json.RawMessage(`{"role":"tool","tool_call_id":"` + pay + `","content":"ok"}`)},
			Calls:     []ExchangeCall{{ID: "call_1", Name: "lookup", Arguments: "{}"}},
		}
	}
	x, y := exchange("pay_x"), exchange("pay_y")
	user := func(s string) string { return `{"role":"user","content":"` + s + `"}` }
	asst := `{"role":"assistant","content":null,"tool_calls":[` + call + `]}`
	result := `{"role":"tool","tool_call_id":"call_1","content":"r"}`
	body := `{"messages":[` + strings.Join([]string{user("a"), asst, result, user("b"), asst, result}, ",") + `]}`
	restored := func(ex *Exchange) string {
		if ex == nil {
			return asst
		}
		return string(ex.Assistant) + "," + string(ex.Results[0])
	}
	type found struct {
		exact *Exchange
		loose []*Exchange
	}
	tests := []struct {
		name         string
		atA, atB     found // the store's answers for the message after user a, after user b
		wantA, wantB *Exchange
	}{
		{"each kept for its place", found{x, nil}, found{y, nil}, x, y},
		{"a loose one another message matches exactly", found{nil, []*Exchange{y}}, found{y, nil}, nil, y},
		{"the next loose one then (an earlier paygate's)", found{nil, []*Exchange{y, x}}, found{y, nil}, x, y},
		{"a loose one alone", found{nil, []*Exchange{x}}, found{}, x, nil},
		{"one loose one twice", found{nil, []*Exchange{y}}, found{nil, []*Exchange{y}}, nil, nil},
		{"one exact one twice", found{x, nil}, found{x, nil}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(at ExchangeAt) (*Exchange, []*Exchange) {
				if at.CallID != "call_1" || at.Calls != CallsFingerprint([]ExchangeCall{{ID: "call_1", Name: "lookup", Arguments: "{ }"}}) {
					t.Fatalf("looked up %+v; want call_1's place", at)
				}
				switch at.Prev {
				case MessageFingerprint(gjson.Parse(user("a"))):
					return tc.atA.exact, tc.atA.loose
				case MessageFingerprint(gjson.Parse(user("b"))):
					return tc.atB.exact, tc.atB.loose
				}
				t.Fatalf("looked up a place after an unknown message: %+v", at)
				return nil, nil
			}
			got, _, err := RestoreExchangesAt([]byte(body), lookup)
			if err != nil {
				t.Fatal(err)
			}
			want := `{"messages":[` + strings.Join([]string{user("a"), restored(tc.wantA), result, user("b"), restored(tc.wantB), result}, ",") + `]}`
			if string(got) != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			again, _, _ := RestoreExchangesAt([]byte(body), lookup)
			if string(again) != string(got) {
				t.Errorf("restored again to other bytes:\n%s\n%s", got, again)
			}
		})
	}
}

// TestExchangeFingerprints: a place's fingerprints are the same however the
// bot re-encodes its calls and the message before them, and differ for
// another call or another message.
func TestExchangeFingerprints(t *testing.T) {
	calls := CallsFingerprint([]ExchangeCall{{ID: "a", Name: "f", Arguments: `{"x":1,"y":"é"}`}, {ID: "b", Name: "g", Arguments: ""}})
	for _, tc := range []struct {
		name  string
		calls []ExchangeCall
		same  bool
	}{
		{"re-encoded, reordered", []ExchangeCall{{ID: "b", Name: "g", Arguments: "{}"}, {ID: "a", Name: "f", Arguments: `{ "y": "\u00e9", "x": 1 }`}}, true},
		{"other arguments", []ExchangeCall{{ID: "a", Name: "f", Arguments: `{"x":2,"y":"é"}`}, {ID: "b", Name: "g"}}, false},
		{"other id", []ExchangeCall{{ID: "c", Name: "f", Arguments: `{"x":1,"y":"é"}`}, {ID: "b", Name: "g"}}, false},
		{"a custom call", []ExchangeCall{{ID: "a", Name: "f", Arguments: `{"x":1,"y":"é"}`, Custom: true}, {ID: "b", Name: "g"}}, false},
	} {
		if got := CallsFingerprint(tc.calls) == calls; got != tc.same {
			t.Errorf("%s: same fingerprint %v; want %v", tc.name, got, tc.same)
		}
	}
	msg := MessageFingerprint(gjson.Parse(`{"role":"user","content":"hi there"}`))
	for _, tc := range []struct {
		name, m string
		same    bool
	}{
		{"text parts", `{"content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}],"role":"user"}`, true},
		{"other text", `{"role":"user","content":"hi"}`, false},
		{"other role", `{"role":"system","content":"hi there"}`, false},
	} {
		if got := MessageFingerprint(gjson.Parse(tc.m)) == msg; got != tc.same {
			t.Errorf("%s: same fingerprint %v; want %v", tc.name, got, tc.same)
		}
	}
	if got, want := LastMessageFingerprint([]byte(`{"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi there"}]}`)), msg; got != want {
		t.Errorf("LastMessageFingerprint %s; want the last message's, %s", got, want)
	}
	if got := LastMessageFingerprint([]byte(`{"messages":[]}`)); got != "" {
		t.Errorf("LastMessageFingerprint of no messages %q; want empty", got)
	}
}

// TestRestoredExchangesNameTheirPaymentCallsApart: two turns' exchanges
// whose payment calls the provider named alike (call_0 in every answer; the
// second turn's request went upstream without the first's exchange, its
// read having failed, so nothing renamed the second's) are restored with
// ids of their own: the request named call_0 twice, which strict providers
// refuse (400) on every retry of the bot's.
func TestRestoredExchangesNameTheirPaymentCallsApart(t *testing.T) {
	exchange := func(bot string) *Exchange {
		call := `{"id":"` + bot + `","type":"function","function":{"name":"lookup","arguments":"{}"}}`
		return &Exchange{
			Before: []json.RawMessage{
				json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"query_order","arguments":"{}"}}]}`),
				json.RawMessage(`{"role":"tool","tool_call_id":"call_9","content":"ok"}`),
			},
			Assistant: json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{}"}},` + call + `]}`),
			Results:   []json.RawMessage{json.RawMessage(`{"role":"tool","tool_call_id":"call_0","content":"ok"}`)},
			Calls:     []ExchangeCall{{ID: bot, Name: "lookup", Arguments: "{}"}},
		}
	}
	kept := map[string]*Exchange{"call_1": exchange("call_1"), "call_2": exchange("call_2")}
	msg := func(id string) string {
		return `{"role":"assistant","content":null,"tool_calls":[{"id":"` + id + `","type":"function","function":{"name":"lookup","arguments":"{}"}}]}`
	}
	result := func(id string) string { return `{"role":"tool","tool_call_id":"` + id + `","content":"r"}` }
	body := `{"messages":[` + strings.Join([]string{`{"role":"user","content":"a"}`, msg("call_1"), result("call_1"), `{"role":"user","content":"b"}`, msg("call_2"), result("call_2")}, ",") + `]}`
	lookup := func(id string) *Exchange { return kept[id] }
	got, n, err := RestoreExchanges([]byte(body), lookup)
	if err != nil || n != 2 {
		t.Fatalf("restored %d, %v; want both", n, err)
	}
	seen := map[string]int{}
	gjson.GetBytes(got, "messages.#.tool_calls.#.id").ForEach(func(_, ids gjson.Result) bool {
		ids.ForEach(func(_, id gjson.Result) bool { seen[id.Str]++; return true })
		return true
	})
	for id, k := range seen {
		if k != 1 {
			t.Errorf("call id %s named by %d calls; want 1 (%s)", id, k, got)
		}
	}
	// Each result answers its own turn's call: the first exchange keeps
	// its ids, the second's are renamed in its calls and its results alike.
	if want := []string{"call_9", "call_9", "call_0", "call_1", "call_0", "call_1", "call_pg_r0", "call_pg_r0", "call_pg_r1", "call_2", "call_pg_r1", "call_2"}; !slices.Equal(callAndResultIDs(got), want) {
		t.Errorf("ids in order %q; want %q", callAndResultIDs(got), want)
	}
	if again, _, _ := RestoreExchanges([]byte(body), lookup); string(again) != string(got) {
		t.Errorf("restored again to other bytes:\n%s\n%s", got, again)
	}
}

// callAndResultIDs lists, in message order, each call's id and each
// result's tool_call_id.
func callAndResultIDs(body []byte) []string {
	var out []string
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		m.Get("tool_calls.#.id").ForEach(func(_, id gjson.Result) bool { out = append(out, id.Str); return true })
		if id := m.Get("tool_call_id"); id.Exists() {
			out = append(out, id.Str)
		}
		return true
	})
	return out
}

// TestTwoExchangesWithOneAssistantMessageAreBothRestored: two turns that
// bought the same thing (create_order {"sku":"coffee"} beside the bot's
// lookup {}, the provider numbering its ids per answer) have assistant
// messages alike to the byte and their own orders in their results. Each
// is kept for its own place, yet both were taken for one exchange, named
// by its assistant message, matched by two messages, and restored into
// neither: every later request went upstream without either order.
func TestTwoExchangesWithOneAssistantMessageAreBothRestored(t *testing.T) {
	const call = `{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{}"}}`
	exchange := func(order string) *Exchange {
		return &Exchange{
			Assistant: json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"coffee\"}"}},` + call + `]}`),
			Results:   []json.RawMessage{json.RawMessage(`{"role":"tool","tool_call_id":"call_0","content":"` + order + `"}`)},
			Calls:     []ExchangeCall{{ID: "call_1", Name: "lookup", Arguments: "{}"}},
		}
	}
	user := func(s string) string { return `{"role":"user","content":"` + s + `"}` }
	asst := `{"role":"assistant","content":null,"tool_calls":[` + call + `]}`
	result := `{"role":"tool","tool_call_id":"call_1","content":"r"}`
	body := `{"messages":[` + strings.Join([]string{user("a coffee"), asst, result, user("another"), asst, result}, ",") + `]}`
	byPrev := map[string]*Exchange{
		MessageFingerprint(gjson.Parse(user("a coffee"))): exchange("order O1"),
		MessageFingerprint(gjson.Parse(user("another"))):  exchange("order O2"),
	}
	got, n, err := RestoreExchangesAt([]byte(body), func(at ExchangeAt) (*Exchange, []*Exchange) { return byPrev[at.Prev], nil })
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	gjson.GetBytes(got, `messages.#(content%"order*")#.content`).ForEach(func(_, v gjson.Result) bool {
		results = append(results, v.Str)
		return true
	})
	if n != 2 || strings.Join(results, ",") != "order O1,order O2" {
		t.Fatalf("restored %d exchanges, results %q; want 2, order O1 then order O2 (%s)", n, results, got)
	}
}

// TestAnsweredAt: the place of the calls a request answers is that of the
// assistant message its last messages, tool results, answer, as the
// answer that made the calls names it (the calls as handed, the message
// before them); none for a request that ends otherwise.
func TestAnsweredAt(t *testing.T) {
	const (
		user  = `{"role":"user","content":"weather?"}`
		calls = `{"role":"assistant","content":null,"tool_calls":[{"id":"w1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"w2","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`
		res1  = `{"role":"tool","tool_call_id":"w1","content":"sunny"}`
		res2  = `{"role":"tool","tool_call_id":"w2","content":"rain"}`
	)
	want := ExchangeAt{CallID: "w1",
		Calls: CallsFingerprint([]ExchangeCall{{ID: "w2", Name: "get_weather"}, {ID: "w1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}),
		Prev:  LastMessageFingerprint([]byte(`{"messages":[` + user + `]}`))}
	for _, tc := range []struct {
		name string
		msgs []string
		ok   bool
	}{
		{"both results", []string{user, calls, res1, res2}, true},
		{"one result", []string{user, calls, res2}, true},
		{"no result yet", []string{user, calls}, false},
		{"results of other calls", []string{user, calls, `{"role":"tool","tool_call_id":"zz","content":"x"}`}, false},
		{"a user's message after", []string{user, calls, res1, res2, user}, false},
		{"a result after a message without calls", []string{user, `{"role":"assistant","content":"hi"}`, res1}, false},
		{"no messages", nil, false},
	} {
		at, ok := AnsweredAt([]byte(`{"messages":[` + strings.Join(tc.msgs, ",") + `]}`))
		if ok != tc.ok || ok && at != want {
			t.Errorf("%s: %+v, %v; want %+v, %v", tc.name, at, ok, want, tc.ok)
		}
	}
	// The calls' place is told apart by the message before them.
	at, _ := AnsweredAt([]byte(`{"messages":[{"role":"user","content":"other"},` + calls + `,` + res1 + `]}`))
	if at.Calls != want.Calls || at.Prev == want.Prev {
		t.Errorf("after another message: %+v; want the same calls at another place than %+v", at, want)
	}
}

// TestRestoredResultsLoseNone: the restored results go in the order of the
// assistant message's calls, and what answers none of them (a bot result
// for an id the calls lack, a second result for one id, a payment result
// kept under an id the message no longer names) goes after them, in its
// order: a result of the bot's is never dropped, a payment result never
// (the model, without it, would order again), a missing one of the bot's
// leaves no gap in the others' order, and the same request restores to
// the same bytes.
func TestRestoredResultsLoseNone(t *testing.T) {
	ex := &Exchange{
		Assistant: json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"w","arguments":"{}"}},{"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{}"}},{"id":"call_x","type":"function","function":{"name":"x","arguments":"{}"}}]}`),
		Results: []json.RawMessage{json.RawMessage(`{"role":"tool","tool_call_id":"call_0","content":"paid"}`),
			json.RawMessage(`{"role":"tool","tool_call_id":"call_gone","content":"kept"}`)},
		Calls: []ExchangeCall{{ID: "call_w", Name: "w", Arguments: "{}"}, {ID: "call_x", Name: "x", Arguments: "{}"}},
	}
	const asst = `{"role":"assistant","tool_calls":[{"id":"call_x","type":"function","function":{"name":"x","arguments":"{}"}},{"id":"call_w","type":"function","function":{"name":"w","arguments":"{}"}}]}`
	bot := []string{`{"role":"tool","tool_call_id":"call_zz","content":"Z"}`, `{ "role": "tool", "tool_call_id": "call_x", "content": "X1" }`,
		`{"role":"tool","tool_call_id":"call_x","content":"X2"}`}
	body := `{"messages":[{"role":"user","content":"a"},` + asst + ",\n " + strings.Join(bot, " ,\n ") + `,{"role":"user","content":"b"}]}`
	lookup := func(ExchangeAt) (*Exchange, []*Exchange) { return ex, nil }
	got, n, err := RestoreExchangesAt([]byte(body), lookup)
	if err != nil || n != 1 {
		t.Fatalf("restored %d, %v", n, err)
	}
	want := []string{string(ex.Assistant), string(ex.Results[0]), bot[1], string(ex.Results[1]), bot[0], bot[2]}
	if w := `{"messages":[{"role":"user","content":"a"},` + strings.Join(want, ",") + `,{"role":"user","content":"b"}]}`; string(got) != w {
		t.Errorf("restored\n%s\nwant\n%s", got, w)
	}
	again, _, _ := RestoreExchangesAt([]byte(body), lookup)
	if string(again) != string(got) {
		t.Errorf("the same request restored to other bytes:\n%s\n%s", got, again)
	}
}

// BenchmarkRestoreExchangeManyCalls restores one kept exchange whose
// assistant message carries calls calls of the bot's beside a payment
// call, each answered by a tool message of the bot's of about 1 KB, in
// the reverse order of the calls: pairing results with calls must grow
// linearly with calls and bytes (ns/op per call about constant across the
// sizes), not as calls × bytes of the tool messages.
func BenchmarkRestoreExchangeManyCalls(b *testing.B) {
	for _, calls := range []int{25, 50, 100} {
		var asst, tools strings.Builder
		ex := &Exchange{Results: []json.RawMessage{json.RawMessage(`{"role":"tool","tool_call_id":"call_pay","content":"ok"}`)}}
		asst.WriteString(`{"role":"assistant","content":null,"tool_calls":[`)
		for i := range calls {
			id := "call_" + strconv.Itoa(i)
			if i > 0 {
				asst.WriteByte(',')
			}
			asst.WriteString(`{"id":"` + id + `","type":"function","function":{"name":"lookup","arguments":"{}"}}`)
			ex.Calls = append(ex.Calls, ExchangeCall{ID: id, Name: "lookup", Arguments: "{}"})
		}
		bot := asst.String() + `]}`
		ex.Assistant = json.RawMessage(asst.String() + `,{"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{}"}}]}`)
		for i := calls - 1; i >= 0; i-- {
			tools.WriteString(`,{"role":"tool","content":"` + strings.Repeat("x", 1000) + `","tool_call_id":"call_` + strconv.Itoa(i) + `"}`)
		}
		body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"},` + bot + tools.String() + `]}`)
		lookup := func(id string) *Exchange {
			if id == "call_0" {
				return ex
			}
			return nil
		}
		b.Run(strconv.Itoa(calls)+"calls", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, k, err := RestoreExchanges(body, lookup); err != nil || k != 1 {
					b.Fatalf("restored %d: %v", k, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(calls), "ns/call")
		})
	}
}
