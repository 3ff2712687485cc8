package payments_test

import (
	"strings"
	"testing"
)

// TestCreateOrderNumberOfAnythingIsAsked: a name that starts with a number
// word and goes on ("number_of_months", "numSeats", "num_licenses") is a
// count of what it names, whatever that is, and without "quantity" one
// would be bought: it is asked, as "number_of_items" is. Only a number word
// after another ("phone_number", "order_number") names a thing's number,
// and one without a digit ("number_type": "mobile") is ignored.
func TestCreateOrderNumberOfAnythingIsAsked(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			for _, tc := range []struct{ name, extra, member string }{
				{"number of months", `"number_of_months":3`, "number_of_months"},
				{"num seats", `"numSeats":5`, "numSeats"},
				{"num licenses", `"num_licenses":"2"`, "num_licenses"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := call(t, tools, caller("oUser-create-numberof-"+tc.name), "create_order", `{"sku":"premium-monthly",`+tc.extra+`}`)
					if !got.out.Clarify || got.out.Executed || got.action != nil {
						t.Fatalf("clarify %v executed %v, result %s, action %v; want a clarification, nothing ordered",
							got.out.Clarify, got.out.Executed, got.out.Result, got.action)
					}
					if why, _ := got.result["error"].(string); !strings.Contains(why, `"`+tc.member+`"`) {
						t.Errorf("error %q does not name %q", why, tc.member)
					}
				})
			}
			if n := e.sim.OrderCount(); n != 0 {
				t.Fatalf("%d orders at WeChat Pay; want none", n)
			}
			got := call(t, tools, caller("oUser-create-numberof-type"), "create_order", `{"sku":"premium-monthly","number_type":"mobile"}`)
			if order, _ := got.action["order"].(map[string]any); got.result["status"] != "awaiting_payment" || order["amount_fen"] != float64(4999) {
				t.Errorf("number_type without a digit: result %s, action %s; want an order of one (4999 fen)", got.out.Result, got.out.Action)
			}
		})
	}
}
