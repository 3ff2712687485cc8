package payments_test

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestUnknownOrderNoEchoIsCut: query_order and request_refund of a number
// that is no order of the user's quote the model's order_no cut to 64
// bytes between characters, with "…", as a SKU not sold is quoted: whole,
// a 16,000-byte order_no (the most the arguments hold) came back in a
// not_found result of 16,036 bytes (query_order) or 16,086 (request_refund),
// sent to the provider again in the turn's next round and with the kept
// exchange. A short number is quoted whole.
func TestUnknownOrderNoEchoIsCut(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	u := caller("oUser-long-order-no")
	for _, tc := range []struct {
		name, no, want string
	}{
		{"ascii", strings.Repeat("P", 16000), strings.Repeat("P", 64) + "…"},
		{"chinese, cut between characters", strings.Repeat("订单号码", 1200), strings.Repeat("订单号码", 5) + "订…"},
		{"short", "PG260101000000NOSUCHORDER01", "PG260101000000NOSUCHORDER01"},
	} {
		for _, tool := range []struct{ name, args string }{
			{"query_order", `{"order_no":"` + tc.no + `"}`},
			{"request_refund", `{"order_no":"` + tc.no + `","reason":"changed my mind"}`},
		} {
			t.Run(tc.name+"/"+tool.name, func(t *testing.T) {
				r := call(t, tools, u, tool.name, tool.args)
				if r.result["status"] != "not_found" || r.action != nil {
					t.Fatalf("result %.300s; want not_found", r.out.Result)
				}
				if got, _ := r.result["order_no"].(string); len(r.out.Result) > 400 || got != tc.want || !utf8.ValidString(got) {
					t.Errorf("result of %d bytes: %.300s; want under 400 bytes quoting order_no %q", len(r.out.Result), r.out.Result, tc.want)
				}
			})
		}
	}
}

// TestUnknownArgumentNameEchoIsCut: a clarification that quotes an
// argument's name outside the tool's schema (a pay method or a count under
// another name, a refund's amount under another) quotes it cut to 64
// bytes, as an order_no or a SKU is: whole, a 16,000-byte name came back
// in a clarification of about 16,300 bytes, sent to the provider again in
// the turn's next round and with the kept exchange.
func TestUnknownArgumentNameEchoIsCut(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	u := caller("oUser-long-arg-name")
	long := strings.Repeat("x", 16000)
	for _, tc := range []struct{ name, tool, args string }{
		{"pay method", "create_order", `{"sku":"premium-monthly","` + long + `":"native"}`},
		{"count", "create_order", `{"sku":"premium-monthly","` + long + `_qty":3}`},
		{"refund amount", "request_refund", `{"order_no":"PG260101000000NOSUCHORDER01","reason":"changed my mind","` + long + `":"5.00"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tools, u, tc.tool, tc.args)
			if r.result["status"] != "needs_clarification" {
				t.Fatalf("result %.300s; want needs_clarification", r.out.Result)
			}
			if why, _ := r.result["error"].(string); len(r.out.Result) > 1000 || !strings.Contains(why, strings.Repeat("x", 64)+"…") {
				t.Errorf("result of %d bytes: %.300s; want under 1000 bytes quoting the name cut to 64 bytes", len(r.out.Result), r.out.Result)
			}
		})
	}
}
