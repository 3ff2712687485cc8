package interceptors

import (
	"slices"
	"strings"
	"testing"
)

// TestCaptureLegacyNameInPieces: a legacy function_call whose name so far
// starts a payment tool's (PaymentNames), its arguments not started, is
// held while its name may grow, as a tool call is: what each delta returns
// and what the round reports. A call of the bot's own goes out named whole
// on the delta that completes its name; a payment tool's name a tool of
// the bot's extends (BotNames) held to the round's end is the payment
// call, and a name never whole is reported without one, for the turn to
// refuse.
func TestCaptureLegacyNameInPieces(t *testing.T) {
	const head = `{"id":"a","choices":[{"index":0,"delta":{"function_call":`
	const tail = `},"finish_reason":null}]}`
	for _, tc := range []struct {
		name     string
		pieces   []string
		out      []bool
		payment  string // name and arguments of the payment call reported, or ""
		botSees  string // in the deltas that went out, or ""
		botNames []string
	}{
		{"a payment name in pieces", []string{`{"name":"create_","arguments":""}`, `{"name":"order"}`, `{"arguments":"{}"}`},
			[]bool{false, false, false}, "create_order {}", "", nil},
		{"the name said again whole", []string{`{"name":"query"}`, `{"name":"query"}`, `{"arguments":"{}"}`},
			[]bool{false, true, true}, "", `{"name":"query"}`, nil},
		{"the bot's own, completed by its arguments' delta", []string{`{"name":"create_"}`, `{"name":"invoice","arguments":"{\"n\":1}"}`},
			[]bool{false, true}, "", `{"name":"create_invoice","arguments":"{\"n\":1}"}`, nil},
		{"a payment name a bot's tool extends, held to the end", []string{`{"name":"query_order","arguments":""}`},
			[]bool{false}, "query_order ", "", []string{"query_order_history"}},
		{"a name never whole", []string{`{"name":"query_","arguments":""}`},
			[]bool{false}, " ", "", nil},
		{"a whole name at once", []string{`{"name":"get_weather","arguments":""}`, `{"arguments":"{}"}`},
			[]bool{true, true}, "", `{"arguments":"{}"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.PaymentNames(paymentNames...)
			c.BotNames(tc.botNames...)
			var out []bool
			var last string
			for _, p := range tc.pieces {
				b, err := c.Process([]byte(head + p + tail))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b != nil)
				if b != nil {
					last += string(b)
				}
			}
			if !slices.Equal(out, tc.out) {
				t.Errorf("returned %v; want %v", out, tc.out)
			}
			if tc.botSees != "" && !strings.Contains(last, tc.botSees) {
				t.Errorf("deltas out %s; want them to hold %s", last, tc.botSees)
			}
			res := c.EndRound()
			var got string
			for _, pc := range res.PaymentCalls {
				got = pc.Name + " " + pc.Arguments
			}
			if got != tc.payment {
				t.Errorf("payment call %q; want %q", got, tc.payment)
			}
		})
	}
}
