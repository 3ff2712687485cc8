package payments_test

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
)

// TestCreateOrderQuantityUnderAnotherNameIsAsked: create_order without
// "quantity" buys one. A model that put the user's "five of them" under a
// name of its own ({"qty":5}, {"count":5}, {"items":[…]}) had it ignored
// as outside the schema, and an order of one was made without a word
// ({"how_many":3} or {"months":3} too, which read as no count word), as
// request_refund's amount under another name proposed everything left.
// Such a call asks the user instead, naming the argument and "quantity",
// and nothing is ordered. A member whose name says no count (a price, a
// note: SPEC 4's ignored arguments) is still ignored, a null one too, and
// one beside "quantity": the quantity is given.
func TestCreateOrderQuantityUnderAnotherNameIsAsked(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			u := caller("oUser-create-renamed")
			wantAllAsked(t, e, tools, u, "quantity", []askCase{
				{"qty", `"qty":5`, "qty"},
				{"count", `"count":5`, "count"},
				{"items", `"items":[{"sku":"premium-monthly","quantity":5}]`, "items"},
				{"camel case", `"numItems":3`, "numItems"},
				{"a count as text", `"item_count":"five"`, "item_count"},
				{"units", `"units":2`, "units"},
				{"a unit with a number", `"unit":2`, "unit"},
				{"how many", `"how_many":3`, "how_many"},
				{"how many in camel case", `"howMany":3`, "howMany"},
				{"how many as one word", `"howmany":3`, "howmany"},
				// A count of the periods or seats a SKU sells: "three
				// months of premium" for premium-monthly.
				{"months", `"months":3`, "months"},
				{"duration in months", `"duration_months":3`, "duration_months"},
				{"seats", `"seats":5`, "seats"},
				{"licenses", `"licenses":"5"`, "licenses"},
				{"licences", `"licences":[1,2]`, "licences"},
				{"days", `"days":7`, "days"},
				{"weeks", `"trial_weeks":"2"`, "trial_weeks"},
				{"years", `"years":{"n":2}`, "years"},
			})
			for _, tc := range []struct {
				name, args string
				wantFen    float64
			}{
				{"a price, ignored", `{"sku":"premium-monthly","price":"0.01","unit_price":"0.01","amount_fen":1}`, 4999},
				{"a null count, ignored", `{"sku":"premium-monthly","qty":null,"note":"gift 2"}`, 4999},
				{"the item's name, ignored", `{"sku":"premium-monthly","item_name":"Premium tier","unit":"month"}`, 4999},
				{"a period without a number, ignored", `{"sku":"premium-monthly","months":"monthly","billing_days":null}`, 4999},
				{"beside quantity, ignored", `{"sku":"premium-monthly","quantity":2,"count":5}`, 2 * 4999},
			} {
				t.Run(tc.name, func(t *testing.T) {
					wantOrderOf(t, tools, caller("oUser-create-renamed-"+tc.name), tc.args, tc.wantFen)
				})
			}
		})
	}
}

// askCase is a create_order call's members beside its sku, extra, and the
// one of them the user is asked about, member.
type askCase struct{ name, extra, member string }

// wantAllAsked calls create_order for premium-monthly with each case's
// members as u, in a subtest of the case's name, and wants the user asked
// instead, the error naming the member and the argument it would stand
// for, and nothing ordered at WeChat Pay.
func wantAllAsked(t *testing.T, e *env, tools *payments.Tools, u payments.Caller, argument string, cases []askCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, tools, u, "create_order", `{"sku":"premium-monthly",`+tc.extra+`}`)
			if !got.out.Clarify || got.out.Executed || got.result["status"] != "needs_clarification" || got.action != nil {
				t.Fatalf("clarify %v executed %v, result %s, action %v; want a clarification, nothing ordered",
					got.out.Clarify, got.out.Executed, got.out.Result, got.action)
			}
			if why, _ := got.result["error"].(string); !strings.Contains(why, `"`+tc.member+`"`) || !strings.Contains(why, `"`+argument+`"`) {
				t.Errorf("error %q does not name %q and %q", why, tc.member, argument)
			}
		})
	}
	if n := e.sim.OrderCount(); n != 0 {
		t.Fatalf("%d orders at WeChat Pay; want none", n)
	}
}

// wantOrderOf calls create_order with args as u and wants an order of fen
// made.
func wantOrderOf(t *testing.T, tools *payments.Tools, u payments.Caller, args string, fen float64) {
	t.Helper()
	got := call(t, tools, u, "create_order", args)
	order, _ := got.action["order"].(map[string]any)
	if got.result["status"] != "awaiting_payment" || order["amount_fen"] != fen {
		t.Errorf("result %s, action %s; want an order of %v fen", got.out.Result, got.out.Action, fen)
	}
}
