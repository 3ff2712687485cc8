package payments_test

import (
	"testing"
)

// TestCreateOrderHostileArguments: whatever a model writes for quantity,
// only a whole number in 1..max_quantity makes an order, and none of the
// price, payee, user or notify URL it adds is obeyed: the order is the
// catalog's price times the quantity, for the caller.
func TestCreateOrderHostileArguments(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			tests := []struct {
				name, args string
				wantFen    float64 // 0: asked to clarify, no order
			}{
				{"quantity as a string", `{"sku":"premium-monthly","quantity":"2"}`, 0},
				{"fractional quantity", `{"sku":"premium-monthly","quantity":2.5}`, 0},
				{"zero", `{"sku":"premium-monthly","quantity":0}`, 0},
				{"negative", `{"sku":"premium-monthly","quantity":-1}`, 0},
				{"above max_quantity", `{"sku":"premium-monthly","quantity":13}`, 0},
				{"beyond int64", `{"sku":"premium-monthly","quantity":9223372036854775808}`, 0},
				{"huge exponent", `{"sku":"premium-monthly","quantity":1e300}`, 0},
				{"a boolean", `{"sku":"premium-monthly","quantity":true}`, 0},
				{"an object", `{"sku":"premium-monthly","quantity":{"n":2}}`, 0},
				{"sku as an object", `{"sku":{"$ne":""}}`, 0},
				// The catalog's SKU exactly, or a question: one folded
				// into a SKU could be another's (a catalog may sell "pro"
				// and "Pro"), and a lookalike is not what the model was
				// offered (the tool's enum).
				{"sku in another case", `{"sku":"Premium-Monthly"}`, 0},
				{"sku with a Unicode hyphen", `{"sku":"premium\u2010monthly"}`, 0},
				{"sku in fullwidth letters", `{"sku":"ｐｒｅｍｉｕｍ-monthly"}`, 0},
				{"sku with a zero-width space", `{"sku":"premium-\u200bmonthly"}`, 0},
				// A space or tab around it is not the SKU's: trimmed, as
				// query_order trims order_no.
				{"sku with a leading space", `{"sku":" premium-monthly","quantity":4}`, 4 * 4999},
				{"sku with a trailing space", `{"sku":"premium-monthly ","quantity":5}`, 5 * 4999},
				{"sku with a leading tab", `{"sku":"\tpremium-monthly","quantity":6}`, 6 * 4999},
				{"sku with a trailing tab", `{"sku":"premium-monthly\t","quantity":7}`, 7 * 4999},
				// White space a Chinese input method or a model's output
				// leaves (no SKU holds any): an ideographic space, a line
				// break, a no-break space.
				{"sku with an ideographic space", `{"sku":"\u3000premium-monthly","quantity":8}`, 8 * 4999},
				{"sku with a trailing line break", `{"sku":"premium-monthly\n","quantity":9}`, 9 * 4999},
				{"sku with a no-break space", `{"sku":"premium-monthly\u00a0","quantity":10}`, 10 * 4999},
				{"sku of spaces only", `{"sku":" \t "}`, 0},
				{"pay_method in another case", `{"sku":"premium-monthly","pay_method":"NATIVE"}`, 0},
				{"a whole number written with an exponent", `{"sku":"premium-monthly","quantity":3e0}`, 3 * 4999},
				{"price, payee, user and notify URL ignored", `{"sku":"premium-monthly","quantity":2,"price":"0.01","amount_fen":1,"amount":"0.01","mchid":"1","user":"oSomeoneElse","openid":"oSomeoneElse","notify_url":"http://attacker.example/"}`, 2 * 4999},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before := e.sim.OrderCount()
					tc := call(t, tools, caller("oUser-hostile-args"), "create_order", tt.args)
					if tt.wantFen == 0 {
						if tc.result["status"] != "needs_clarification" || tc.action != nil || tc.out.Executed {
							t.Fatalf("result %s, outcome %+v; want a clarification and nothing executed", tc.out.Result, tc.out)
						}
						if got := e.sim.OrderCount(); got != before {
							t.Errorf("%d orders at WeChat Pay; want %d", got, before)
						}
						return
					}
					if tc.result["status"] != "awaiting_payment" {
						t.Fatalf("result %s; want awaiting_payment", tc.out.Result)
					}
					order, _ := tc.action["order"].(map[string]any)
					if order["amount_fen"] != tt.wantFen {
						t.Errorf("amount_fen %v; want %v (the catalog's price)", order["amount_fen"], tt.wantFen)
					}
					o := e.order(order["order_no"].(string))
					if o.User != "oUser-hostile-args" || o.AmountFen != int64(tt.wantFen) {
						t.Errorf("stored order for %q at %d fen; want the caller at %v", o.User, o.AmountFen, tt.wantFen)
					}
				})
			}
		})
	}
}
