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
// JSAPI order too, as did a value naming the method among words of paying
// ("Native QR", "NATIVE_PAY"), by its QR code ("qr_code", "扫码支付"), or
// arguments written again as a JSON string, or WeChat Pay's own name for
// it beside Chinese ("Native支付"), a flag set as a string
// ({"qr_code":"true"}) or one saying no JSAPI ({"jsapi":false}). A member
// beside "pay_method", or one that says no method, nested or not
// ({"meta":{"note":"native speaker"}}, "a QR code photo of the receipt",
// "微信支付", {"qr_code":"no"}), is still ignored.
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
				{"four levels down", `"a":{"b":{"c":{"d":{"pay_method":"native"}}}}`, "a"},
				// A value naming the method among words of paying, or a
				// QR code alone, or the arguments again as a JSON string
				// ("Native QR", "qr_code", "{\"method\":\"native\"}"):
				// each made a JSAPI order too.
				{"Native QR", `"payment_method":"Native QR"`, "payment_method"},
				{"native_qr", `"payType":"native_qr"`, "payType"},
				{"NATIVE_PAY", `"trade_type":"NATIVE_PAY"`, "trade_type"},
				{"WeChat Native", `"channel":"WeChat Native"`, "channel"},
				{"qr_code", `"payment_method":"qr_code"`, "payment_method"},
				{"scan to pay", `"mode":"Scan to pay"`, "mode"},
				{"扫码支付", `"支付方式":"扫码支付"`, "支付方式"},
				// A flag says it by its name: {"qr_code":true}.
				{"a QR flag", `"qr_code":true`, "qr_code"},
				{"a native flag nested", `"payment":{"isNative":true}`, "payment"},
				{"a JSON string", `"payment":"{\"method\":\"native\",\"note\":\"on a desktop\"}"`, "payment"},
				// WeChat Pay's own names for its products, Latin beside
				// Chinese ("Native支付", "JSAPI支付"), a flag written as
				// a string ("true", "yes"), or one saying the default is
				// not wanted ({"jsapi":false}): each made a JSAPI order.
				{"Native支付", `"payment":"Native支付"`, "payment"},
				{"JSAPI支付", `"支付方式":"微信JSAPI支付"`, "支付方式"},
				{"a flag in Chinese", `"Native支付":true`, "Native支付"},
				{"a flag as a string", `"qr_code":"true"`, "qr_code"},
				{"a flag as yes", `"options":{"use_qr":"Yes"}`, "options"},
				{"not jsapi", `"jsapi":false`, "jsapi"},
				// 扫码 and 二维码 in traditional characters too, and a JSON
				// array in a string after white space.
				{"掃碼付款", `"方式":"掃碼付款"`, "方式"},
				{"二维码", `"方式":"二维码"`, "方式"},
				{"二維碼", `"方式":"二維碼"`, "方式"},
				{"a JSON array in a string", `"payments":"\n [{\"method\":\"native\"},{\"note\":\"on a desktop\"}]"`, "payments"},
			})
			for _, tc := range []struct{ name, args, method string }{
				{"beside pay_method", `{"sku":"premium-monthly","pay_method":"native","payment_method":"jsapi"}`, "native"},
				{"no method said", `{"sku":"premium-monthly","method":"card","note":"native speaker"}`, "jsapi"},
				{"nested beside pay_method", `{"sku":"premium-monthly","pay_method":"native","payment":{"method":"jsapi"}}`, "native"},
				{"no method said nested", `{"sku":"premium-monthly","meta":{"note":"native speaker","methods":["card"]}}`, "jsapi"},
				{"a QR code not to pay", `{"sku":"premium-monthly","note":"sent a QR code photo of the receipt","language":"native speaker","native":false,"wechat_pay":true}`, "jsapi"},
				{"no method said in Chinese", `{"sku":"premium-monthly","channel":"微信支付","teacher":"native英语老师","qr_code":"no","scan":"false"}`, "jsapi"},
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
