package payments_test

import "testing"

// TestCreateOrderQuantitySpelledOrNestedIsAsked: a count under a name
// that needs a number to read as one ("months", "seats", "items",
// "number_of_items") was asked about only when its value held a digit,
// so "three months of premium" written in words ({"months":"three"}),
// or in Chinese ({"months":"三"}), bought one month without a word; and
// a count one level down ({"order":{"quantity":3}}, a cart of items, or
// the same written as a JSON string) was outside every name read, and bought one too. Both are asked now,
// naming the member given. A count of one in words ("one", "一") buys
// the one it says, and a nested member that names no count (a contact's
// phone number, a note) is still only ignored.
func TestCreateOrderQuantitySpelledOrNestedIsAsked(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			u := caller("oUser-create-spelled")
			wantAllAsked(t, e, tools, u, "quantity", []askCase{
				{"months in words", `"months":"three"`, "months"},
				{"seats in words", `"seats":"Five"`, "seats"},
				{"items in words", `"items":"two of them"`, "items"},
				{"a couple of items", `"item":"a couple"`, "item"},
				{"number of items in words", `"number_of_items":"three"`, "number_of_items"},
				{"months in Chinese", `"months":"三"`, "months"},
				{"years in traditional Chinese", `"years":"兩"`, "years"},
				{"quantity in an object", `"order":{"quantity":3}`, "order"},
				{"qty two levels down", `"options":{"purchase":{"qty":"3"}}`, "options"},
				{"a cart", `"cart":[{"sku":"premium-monthly","quantity":3}]`, "cart"},
				{"months in an object", `"subscription":{"months":3}`, "subscription"},
				{"Chinese count in an object", `"订单":{"数量":3}`, "订单"},
				{"a count in a JSON string", `"order":"{\"quantity\":3}"`, "order"},
			})
			for _, tc := range []struct {
				name, args string
				wantFen    float64
			}{
				{"one in words", `{"sku":"premium-monthly","months":"one","seats":"一"}`, 4999},
				{"a nested contact and note", `{"sku":"premium-monthly","customer":{"phone_number":"13800138000","name":"Li"},"meta":{"note":"gift"}}`, 4999},
				{"a note in a JSON string", `{"sku":"premium-monthly","meta":"{\"note\":\"gift\"}","memo":"{3 for the team}"}`, 4999},
				{"a nested count beside quantity", `{"sku":"premium-monthly","quantity":2,"order":{"quantity":3}}`, 2 * 4999},
			} {
				t.Run(tc.name, func(t *testing.T) {
					wantOrderOf(t, tools, caller("oUser-create-spelled-"+tc.name), tc.args, tc.wantFen)
				})
			}
		})
	}
}
