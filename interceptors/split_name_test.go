package interceptors

import (
	"slices"
	"testing"

	"github.com/tidwall/gjson"
)

// TestCaptureNameInPieces: with the payment tools' names given
// (PaymentNames), a call whose name so far starts one of them is held until
// its name is whole, and only such a call: what each delta returns, and
// what the round reports.
func TestCaptureNameInPieces(t *testing.T) {
	const head = `{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[`
	const tail = `]},"finish_reason":null}]}`
	tests := []struct {
		name    string
		entries []string
		out     []bool // whether each delta returned something
		payment []ToolCall
		client  []ToolCall
	}{
		{
			name: "a payment name in pieces",
			entries: []string{
				`{"index":0,"id":"c1","type":"function","function":{"name":"request_","arguments":""}}`,
				`{"index":0,"function":{"name":"ref"}}`,
				`{"index":0,"function":{"name":"und","arguments":"{}"}}`,
			},
			out:     []bool{false, false, false},
			payment: []ToolCall{{Index: 0, ID: "c1", Name: "request_refund", Arguments: "{}"}},
		},
		{
			name: "a name that starts no payment tool's goes out at once",
			entries: []string{
				`{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":""}}`,
				`{"index":0,"function":{"arguments":"{}"}}`,
			},
			out:    []bool{true, true},
			client: []ToolCall{{Index: 0, ID: "c1", Name: "get_weather", Arguments: "{}"}},
		},
		{
			name: "the bot's own name that starts a payment tool's waits for its arguments",
			entries: []string{
				`{"index":0,"id":"c1","type":"function","function":{"name":"create","arguments":""}}`,
				`{"index":0,"function":{"arguments":"{\"a\":"}}`,
				`{"index":0,"function":{"arguments":"1}"}}`,
			},
			out:    []bool{false, true, true},
			client: []ToolCall{{Index: 0, ID: "c1", Name: "create", Arguments: `{"a":1}`}},
		},
		{
			name: "a piece that makes the name the bot's own",
			entries: []string{
				`{"index":0,"id":"c1","type":"function","function":{"name":"create_","arguments":""}}`,
				`{"index":0,"function":{"name":"invoice"}}`,
				`{"index":0,"function":{"arguments":"{}"}}`,
			},
			out:    []bool{false, true, true},
			client: []ToolCall{{Index: 0, ID: "c1", Name: "create_invoice", Arguments: "{}"}},
		},
		{
			name: "another id under the index is another call",
			entries: []string{
				`{"index":0,"id":"c1","type":"function","function":{"name":"create","arguments":""}}`,
				`{"index":0,"id":"c2","type":"function","function":{"name":"_order","arguments":"{}"}}`,
			},
			out: []bool{false, true},
			client: []ToolCall{
				{Index: 0, ID: "c1", Name: "create", Arguments: ""},
				{Index: 1, ID: "c2", Name: "_order", Arguments: "{}"},
			},
		},
		{
			name: "a payment tool's whole name under the index of a held call is another call",
			entries: []string{
				`{"index":0,"type":"function","function":{"name":"query","arguments":""}}`,
				`{"index":0,"type":"function","function":{"name":"query_order","arguments":"{\"order_id\":\"O1\"}"}}`,
			},
			out:     []bool{false, true},
			payment: []ToolCall{{Index: 0, Name: "query_order", Arguments: `{"order_id":"O1"}`}},
			client:  []ToolCall{{Index: 0, Name: "query", Arguments: ""}},
		},
		{
			name: "a payment tool's whole name under the id of a held call is another call",
			entries: []string{
				`{"id":"c1","type":"function","function":{"name":"create"}}`,
				`{"id":"c1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium\"}"}}`,
			},
			out:     []bool{false, true},
			payment: []ToolCall{{Index: 1, ID: "c1", Name: "create_order", Arguments: `{"sku":"premium"}`}},
			client:  []ToolCall{{Index: 0, ID: "c1", Name: "create", Arguments: ""}},
		},
		{
			name: "a payment tool's name in pieces under the index of a held call is another call",
			entries: []string{
				`{"index":0,"type":"function","function":{"name":"query","arguments":""}}`,
				`{"index":0,"type":"function","function":{"name":"query_","arguments":""}}`,
				`{"index":0,"function":{"name":"order"}}`,
				`{"index":0,"function":{"arguments":"{\"order_id\":\"O1\"}"}}`,
			},
			out:     []bool{false, true, false, false},
			payment: []ToolCall{{Index: 0, Name: "query_order", Arguments: `{"order_id":"O1"}`}},
			client:  []ToolCall{{Index: 0, Name: "query", Arguments: ""}},
		},
		{
			name: "a name never whole is refused, never shown",
			entries: []string{
				`{"index":0,"id":"c1","type":"function","function":{"name":"query_","arguments":""}}`,
			},
			out:     []bool{false},
			payment: []ToolCall{{Index: 0, ID: "c1", Name: "", Arguments: ""}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.PaymentNames(paymentNames...)
			var out []bool
			for _, e := range tc.entries {
				b, err := c.Process([]byte(head + e + tail))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b != nil)
			}
			if !slices.Equal(out, tc.out) {
				t.Errorf("returned %v; want %v", out, tc.out)
			}
			res := c.EndRound()
			checkCalls(t, "payment", res.PaymentCalls, tc.payment)
			checkCalls(t, "client", res.ClientCalls, tc.client)
		})
	}
}

// TestCaptureEndNames: a round that ended well makes a name still held
// whole (EndNames): the bot's own call, which nothing of went out, is
// reported among the client calls and in LateCalls; a round cut short
// (no EndNames) reports it as a payment call without a name.
func TestCaptureEndNames(t *testing.T) {
	const chunk = `{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"query","arguments":""}}]},"finish_reason":null}]}`
	for _, ended := range []bool{true, false} {
		c := NewCapture(isPaymentName)
		c.PaymentNames(paymentNames...)
		if out, err := c.Process([]byte(chunk)); err != nil || out != nil {
			t.Fatalf("Process = %s, %v; want the call held", out, err)
		}
		if _, err := c.Process([]byte(`{"id":"a","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`)); err != nil {
			t.Fatal(err)
		}
		if ended {
			c.EndNames()
		}
		res := c.EndRound()
		if !ended {
			checkCalls(t, "cut: payment", res.PaymentCalls, []ToolCall{{Index: 0, ID: "c1"}})
			checkCalls(t, "cut: client", res.ClientCalls, nil)
			if res.LateCalls != nil {
				t.Errorf("cut: LateCalls %s; want none", res.LateCalls)
			}
			continue
		}
		checkCalls(t, "payment", res.PaymentCalls, nil)
		checkCalls(t, "client", res.ClientCalls, []ToolCall{{Index: 0, ID: "c1", Name: "query"}})
		if want := `[{"index":0,"id":"c1","type":"function","function":{"name":"query","arguments":""}}]`; string(res.LateCalls) != want {
			t.Errorf("LateCalls %s; want %s", res.LateCalls, want)
		}
	}
}

// TestCaptureBotNameInPieces: a name of the bot's own tool that starts no
// payment tool's, streamed in pieces under one index or id ("get_", then
// "weather"), is one call: each later piece goes to the bot under the
// index the first went out under, as the provider sent it, for its SDK to
// join, and the round reports the call under the whole name. A payment
// tool's whole name, or a name after the call's arguments started, or
// under another id, is another call, as before.
func TestCaptureBotNameInPieces(t *testing.T) {
	const head = `{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[`
	const tail = `]},"finish_reason":null}]}`
	tests := []struct {
		name    string
		entries []string
		out     []string // the tool_calls each delta returned, "" for none
		payment []ToolCall
		client  []ToolCall
	}{
		{
			name: "by index, renumbered after a payment call",
			entries: []string{
				`{"index":0,"id":"c0","type":"function","function":{"name":"create_order","arguments":"{}"}}`,
				`{"index":1,"id":"c1","type":"function","function":{"name":"get_","arguments":""}}`,
				`{"index":1,"function":{"name":"wea"}}`,
				`{"index":1,"function":{"name":"ther","arguments":""}}`,
				`{"index":1,"function":{"arguments":"{}"}}`,
			},
			out: []string{"",
				`[{"index":0,"id":"c1","type":"function","function":{"name":"get_","arguments":""}}]`,
				`[{"index":0,"function":{"name":"wea"}}]`,
				`[{"index":0,"function":{"name":"ther","arguments":""}}]`,
				`[{"index":0,"function":{"arguments":"{}"}}]`,
			},
			payment: []ToolCall{{Index: 0, ID: "c0", Name: "create_order", Arguments: "{}"}},
			client:  []ToolCall{{Index: 0, Seq: 1, ID: "c1", Name: "get_weather", Arguments: "{}"}},
		},
		{
			name: "by id, without an index",
			entries: []string{
				`{"id":"c1","type":"function","function":{"name":"get_"}}`,
				`{"id":"c1","function":{"name":"weather","arguments":"{}"}}`,
			},
			out: []string{
				`[{"index":0,"id":"c1","type":"function","function":{"name":"get_"}}]`,
				`[{"index":0,"id":"c1","function":{"name":"weather","arguments":"{}"}}]`,
			},
			client: []ToolCall{{Index: 0, ID: "c1", Name: "get_weather", Arguments: "{}"}},
		},
		{
			name: "a payment tool's whole name is a call of its own",
			entries: []string{
				`{"index":0,"id":"c1","type":"function","function":{"name":"get_","arguments":""}}`,
				`{"index":0,"function":{"name":"create_order","arguments":"{}"}}`,
			},
			out:     []string{`[{"index":0,"id":"c1","type":"function","function":{"name":"get_","arguments":""}}]`, ""},
			payment: []ToolCall{{Index: 0, Seq: 1, Name: "create_order", Arguments: "{}"}},
			client:  []ToolCall{{Index: 0, ID: "c1", Name: "get_", Arguments: ""}},
		},
		{
			name: "a name after the arguments started is another call",
			entries: []string{
				`{"index":0,"id":"c1","type":"function","function":{"name":"get_time","arguments":"{}"}}`,
				`{"index":0,"function":{"name":"get_weather","arguments":"{}"}}`,
			},
			out: []string{
				`[{"index":0,"id":"c1","type":"function","function":{"name":"get_time","arguments":"{}"}}]`,
				`[{"index":1,"function":{"name":"get_weather","arguments":"{}"}}]`,
			},
			client: []ToolCall{{Index: 0, ID: "c1", Name: "get_time", Arguments: "{}"}, {Index: 1, Seq: 1, Name: "get_weather", Arguments: "{}"}},
		},
		{
			name: "a piece that may start a payment tool's name is a call of its own",
			entries: []string{
				`{"index":0,"type":"function","function":{"name":"get_time","arguments":""}}`,
				`{"index":0,"type":"function","function":{"name":"create_","arguments":""}}`,
				`{"index":0,"function":{"name":"order"}}`,
				`{"index":0,"function":{"arguments":"{}"}}`,
			},
			out:     []string{`[{"index":0,"type":"function","function":{"name":"get_time","arguments":""}}]`, "", "", ""},
			payment: []ToolCall{{Index: 0, Seq: 1, Name: "create_order", Arguments: "{}"}},
			client:  []ToolCall{{Index: 0, Name: "get_time", Arguments: ""}},
		},
		{
			name: "a piece that would make the name a payment tool's is a call of its own",
			entries: []string{
				`{"index":0,"id":"c1","type":"function","function":{"name":"query","arguments":""}}`,
				`{"index":0,"function":{"name":"query"}}`,
				`{"index":0,"function":{"name":"_order"}}`,
			},
			out: []string{"",
				`[{"index":0,"id":"c1","type":"function","function":{"name":"query","arguments":""}}]`,
				`[{"index":1,"function":{"name":"_order"}}]`,
			},
			client: []ToolCall{{Index: 0, ID: "c1", Name: "query"}, {Index: 1, Seq: 1, Name: "_order"}},
		},
		{
			name: "another id under the index is another call",
			entries: []string{
				`{"index":0,"id":"c1","type":"function","function":{"name":"get_time"}}`,
				`{"index":0,"id":"c2","type":"function","function":{"name":"get_weather","arguments":"{}"}}`,
			},
			out: []string{
				`[{"index":0,"id":"c1","type":"function","function":{"name":"get_time"}}]`,
				`[{"index":1,"id":"c2","type":"function","function":{"name":"get_weather","arguments":"{}"}}]`,
			},
			client: []ToolCall{{Index: 0, ID: "c1", Name: "get_time"}, {Index: 1, Seq: 1, ID: "c2", Name: "get_weather", Arguments: "{}"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.PaymentNames(paymentNames...)
			var out []string
			for _, e := range tc.entries {
				b, err := c.Process([]byte(head + e + tail))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, gjson.GetBytes(b, "choices.0.delta.tool_calls").Raw)
			}
			if !slices.Equal(out, tc.out) {
				t.Errorf("returned\n%q\nwant\n%q", out, tc.out)
			}
			res := c.EndRound()
			checkCalls(t, "payment", res.PaymentCalls, tc.payment)
			checkCalls(t, "client", res.ClientCalls, tc.client)
		})
	}
}

// TestNameGoesOnNameAgain: a call's whole name given again under its index
// before the arguments, as providers that repeat it in every delta do
// (MiniMax through NVIDIA NIM, Fireworks), is the same call and no piece
// of its name, for every kind of name NameGoesOn judges (failover's
// non-stream assembly and the plain stream's recovery ask it): a bot's
// tool that another of its tools extends was joined to "get_weatherget_weather".
// A next piece still goes on.
func TestNameGoesOnNameAgain(t *testing.T) {
	c := NewCapture(isPaymentName)
	c.PaymentNames("create_order", "query_order", "request_refund")
	c.BotNames("get_weather", "get_weather_forecast", "query_order_history", "run")
	for _, name := range []string{"get_weather", "get_", "query_order", "create_order", "run", "lookup"} {
		if c.NameGoesOn(name, name) {
			t.Errorf("NameGoesOn(%q, %q) = true; want the name again to be no piece of it", name, name)
		}
	}
	if !c.NameGoesOn("get_", "weather") {
		t.Errorf(`NameGoesOn("get_", "weather") = false; want the next piece to go on`)
	}
}
