package payments_test

import "testing"

// TestCreateOrderThingNumberWithSuffixIgnored: a number word after the
// thing it numbers names that thing's number even when another word follows
// ("order_number_id", "phone_number_country_code"): it is not a count of
// what follows, so the member is ignored (SPEC 4) and one is ordered, as
// "phone_number" is, not asked how many to buy.
func TestCreateOrderThingNumberWithSuffixIgnored(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			for _, tc := range []struct{ name, extra string }{
				{"order number id", `"order_number_id":"A-123"`},
				{"phone number country code", `"phone_number_country_code":"+86"`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := call(t, tools, caller("oUser-create-thingnum-"+tc.name), "create_order", `{"sku":"premium-monthly",`+tc.extra+`}`)
					if order, _ := got.action["order"].(map[string]any); got.result["status"] != "awaiting_payment" || order["amount_fen"] != float64(4999) {
						t.Errorf("result %s, action %s; want an order of one (4999 fen), the member ignored", got.out.Result, got.out.Action)
					}
				})
			}
		})
	}
}
