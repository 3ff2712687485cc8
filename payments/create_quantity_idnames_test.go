package payments_test

import (
	"strings"
	"testing"
)

// TestCreateOrderNumberThatNamesAThingIsIgnored: a member outside
// create_order's schema whose name says "number" of something that is
// not a count of items (the user's phone number, an order or serial
// number a model put beside the sku) is ignored, as SPEC 4 says, and the
// order of one is made. "number" and "num" were read as a count whatever
// they numbered, so {"phone_number":"13800138000"} asked the user how
// many to buy and ordered nothing, every time the model added it. A
// number of items ("number":3, "num_items":3, "number_of_copies":2)
// still asks.
func TestCreateOrderNumberThatNamesAThingIsIgnored(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			for _, tc := range []struct{ name, extra string }{
				{"phone number", `"phone_number":"13800138000"`},
				{"contact num", `"contactNum":"+86 138 0013 8000"`},
				{"order number", `"order_number":"PG2612050001"`},
				{"serial number", `"serial_number":"SN-12345"`},
				{"id number", `"id_number":"110101199003074514"`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := call(t, tools, caller("oUser-create-idname-"+tc.name), "create_order", `{"sku":"premium-monthly",`+tc.extra+`}`)
					order, _ := got.action["order"].(map[string]any)
					if got.result["status"] != "awaiting_payment" || order["amount_fen"] != float64(4999) {
						t.Errorf("result %s, action %s; want an order of one (4999 fen)", got.out.Result, got.out.Action)
					}
				})
			}
			for _, tc := range []struct{ name, extra, member string }{
				{"number", `"number":3`, "number"},
				{"num items", `"num_items":3`, "num_items"},
				{"number of copies", `"number_of_copies":2`, "number_of_copies"},
				{"item number as a count", `"itemNum":2`, "itemNum"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := call(t, tools, caller("oUser-create-idname-count"), "create_order", `{"sku":"premium-monthly",`+tc.extra+`}`)
					if !got.out.Clarify || got.out.Executed {
						t.Fatalf("clarify %v executed %v, result %s; want a clarification", got.out.Clarify, got.out.Executed, got.out.Result)
					}
					if why, _ := got.result["error"].(string); !strings.Contains(why, `"`+tc.member+`"`) {
						t.Errorf("error %q does not name %q", why, tc.member)
					}
				})
			}
		})
	}
}
