package payments_test

import "testing"

// TestCreateOrderPayMethodUnderAnotherNameIsAsked: create_order without
// "pay_method" whose other member says one of its values
// ({"payment_method":"native"}, {"payMethod":"native"}, {"method":"jsapi"})
// had it ignored as outside the schema: a user who asked for a QR code to
// scan on a desktop got a JSAPI order they cannot pay there, or, asked
// again, the open order kept in its method. Such a call asks the user,
// naming the member and "pay_method", and nothing is ordered; so does one
// whose member holds the value nested in an object or array
// ({"payment":{"method":"native"}}), which was not noticed and made a
// JSAPI order too. A member beside "pay_method", or one that says no
// method, nested or not ({"meta":{"note":"native speaker"}}), is still
// ignored.
func TestCreateOrderPayMethodUnderAnotherNameIsAsked(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			u := caller("oUser-create-method-renamed")
			wantAllAsked(t, e, tools, u, "pay_method", []askCase{
				{"payment_method", `"payment_method":"native"`, "payment_method"},
				{"camel case", `"payMethod":"native"`, "payMethod"},
				{"method in capitals", `"method":" JSAPI "`, "method"},
				{"null pay_method", `"pay_method":null,"trade_type":"NATIVE"`, "trade_type"},
				{"method in an object", `"payment":{"method":"native"}`, "payment"},
				{"pay_method two levels down", `"options":{"checkout":{"pay_method":"NATIVE"}}`, "options"},
				{"an array of objects", `"payments":[{"pay_method":"native"}]`, "payments"},
				{"an array of methods", `"methods":["jsapi"]`, "methods"},
			})
			for _, tc := range []struct{ name, args, method string }{
				{"beside pay_method", `{"sku":"premium-monthly","pay_method":"native","payment_method":"jsapi"}`, "native"},
				{"no method said", `{"sku":"premium-monthly","method":"card","note":"native speaker"}`, "jsapi"},
				{"nested beside pay_method", `{"sku":"premium-monthly","pay_method":"native","payment":{"method":"jsapi"}}`, "native"},
				{"no method said nested", `{"sku":"premium-monthly","meta":{"note":"native speaker","methods":["card"]}}`, "jsapi"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := call(t, tools, caller("oUser-create-method-renamed-"+tc.name), "create_order", tc.args)
					order, _ := got.action["order"].(map[string]any)
					if got.result["status"] != "awaiting_payment" || order["pay_method"] != tc.method {
						t.Errorf("result %s, action %s; want a %s order", got.out.Result, got.out.Action, tc.method)
					}
				})
			}
		})
	}
}
