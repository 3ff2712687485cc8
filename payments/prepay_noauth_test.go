package payments_test

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestPrepayNoAuthMethod: a merchant without Native Pay (the simulator's
// NO_AUTH mode) refuses a QR order for good. paygate asks once, closes the
// order, tells the model the order failed (no code_url, nothing to pay, no
// WeChat Pay code or message in the words the user may read) and gives the day's count back, so the same user's order
// by JSAPI goes through on a day limited to one order.
func TestPrepayNoAuthMethod(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, sim: wxsim.Options{NoAuth: []string{"native"}}, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 1
			}})
			tools := newTools(e)
			c := caller("oUser-noauth-native")
			qr := call(t, tools, c, "create_order", `{"sku":"premium-monthly","pay_method":"native"}`)
			no, _ := qr.result["order_no"].(string)
			if qr.result["status"] != "failed" || no == "" || !qr.out.Failed {
				t.Fatalf("native order of a merchant without Native Pay: %s; want failed", qr.out.Result)
			}
			if qr.action != nil {
				t.Errorf("action %v for a refused order; want none (nothing to pay)", qr.action)
			}
			if s := string(qr.out.Result); strings.Contains(s, "NO_AUTH") || strings.Contains(s, "权限") {
				t.Errorf("result %s names WeChat Pay's code or message; want the plain refusal", s)
			}
			if got := e.order(no).Status; got != store.StatusClosed {
				t.Errorf("refused order %s; want closed", got)
			}
			if ops := prepayOps(e.sim); len(ops) != 1 || ops[0] != "prepay-native" {
				t.Errorf("prepays at WeChat Pay: %q; want one native (a refusal for good is not retried)", ops)
			}
			jsapi := call(t, tools, c, "create_order", `{"sku":"premium-monthly","pay_method":"jsapi"}`)
			if jsapi.result["status"] != "awaiting_payment" || jsapi.result["order_no"] == no {
				t.Errorf("jsapi order after the refusal: %s; want a new order created (the refused one was no order of the day)", jsapi.out.Result)
			}
		})
	}
}
