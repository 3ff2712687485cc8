package payments_test

import (
	"context"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// TestToolArgumentsTooLargeAreRefusedCheaply: a payment call's arguments
// are a few members ({"sku":…,"quantity":…}), but they come from the model
// over any number of stream events, each within the event bound, so their
// size has none. Arguments of 2 MB nested a million deep were validated
// by a parse that recurses per level: 128 MB of stack, and at 16 M levels
// (four events of the provider's stream) past the runtime's 1 GB limit, a
// fatal error that ended the process. They are now refused, as arguments
// that are no object are, with a clarification and no call executed.
// The test runs with a 16 MB stack limit, which such a parse exceeds.
func TestToolArgumentsTooLargeAreRefusedCheaply(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(16 << 20))
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	const depth = 1 << 20
	for _, tc := range []struct{ name, tool, args string }{
		{"nested", "create_order", `{"sku":"premium-monthly","x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`},
		{"long", "query_order", `{"order_no":"` + strings.Repeat("a", 2<<20) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, tools, caller("oUser-args-"+tc.name), tc.tool, tc.args)
			if !got.out.Clarify || got.out.Executed || got.result["status"] != "needs_clarification" {
				t.Fatalf("outcome %+v, result %v; want a clarification, nothing executed", got.out, got.result)
			}
		})
	}
}

// TestToolArgumentsNamedTwiceAreRefused: a payment call whose arguments
// name one schema member twice ({"quantity":1,"quantity":12}) is read
// one way by paygate (gjson: the first) and the other by the provider,
// the bot's logs and most JSON parsers (Python, JavaScript, Go's
// encoding/json: the last), so the model that wrote it, its history
// and paygate disagreed on what was bought or refunded. Such a call is
// a clarification: nothing executed, nothing recorded, whichever of the
// two spellings of the key (escaped or not) it uses.
func TestToolArgumentsNamedTwiceAreRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	paid := paidOrder(t, e, "oUser-args-twice", 2) // 99.98
	u := caller(paid.User)
	for _, tc := range []struct{ name, tool, args, member string }{
		{"sku", "create_order", `{"sku":"tip","sku":"premium-monthly"}`, "sku"},
		{"quantity", "create_order", `{"sku":"premium-monthly","quantity":1,"quantity":12}`, "quantity"},
		{"escaped key", "create_order", `{"sku":"tip","s\u006bu":"premium-monthly"}`, "sku"},
		{"pay method", "create_order", `{"sku":"premium-monthly","pay_method":"jsapi","pay_method":"native"}`, "pay_method"},
		{"refund amount", "request_refund", `{"order_no":"` + paid.OrderNo + `","reason":"r","amount":"1.00","amount":"99.98"}`, "amount"},
		{"order number", "query_order", `{"order_no":"PG-none","order_no":"` + paid.OrderNo + `"}`, "order_no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orders := e.sim.OrderCount()
			got := call(t, tools, u, tc.tool, tc.args)
			if !got.out.Clarify || got.out.Executed || got.result["status"] != "needs_clarification" || got.action != nil {
				t.Fatalf("clarify %v executed %v, result %s; want a clarification, nothing executed", got.out.Clarify, got.out.Executed, got.out.Result)
			}
			if why, _ := got.result["error"].(string); !strings.Contains(why, `"`+tc.member+`"`) {
				t.Errorf("error %q does not name the member %q", why, tc.member)
			}
			if n := e.sim.OrderCount(); n != orders {
				t.Errorf("simulator orders %d after the call; want %d", n, orders)
			}
		})
	}
	if ps, err := e.svc.OpenRefunds(context.Background(), u.Client, u.User); err != nil || len(ps) != 0 {
		t.Errorf("open refund proposals %d (%v); want none", len(ps), err)
	}
}

// TestToolArgumentsInAnotherCaseAreRefused: an argument that is a schema
// member in another case ({"Quantity":5}, {"Amount":"10.00"}) was logged
// as outside the schema and ignored, so the call ran with the member's
// default: an order of one for a model that asked for five, a refund of
// everything left for one that asked for 10.00. It is the member to the
// model and to Go-based relays (encoding/json matches names ignoring
// case); which the model meant is plain, but paygate does not guess at
// money, so the model is told to call again with the name spelled as
// the schema spells it, and nothing runs. An argument outside the schema
// that is no member's variant (a price) is still ignored.
func TestToolArgumentsInAnotherCaseAreRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	paid := paidOrder(t, e, "oUser-args-case", 2) // 99.98
	u := caller(paid.User)
	for _, tc := range []struct{ name, tool, args, spelled, member string }{
		{"quantity", "create_order", `{"sku":"premium-monthly","Quantity":5}`, "Quantity", "quantity"},
		{"sku", "create_order", `{"SKU":"premium-monthly"}`, "SKU", "sku"},
		{"pay method", "create_order", `{"sku":"premium-monthly","Pay_Method":"native"}`, "Pay_Method", "pay_method"},
		{"refund amount", "request_refund", `{"order_no":"` + paid.OrderNo + `","reason":"r","Amount":"10.00"}`, "Amount", "amount"},
		{"order number", "query_order", `{"ORDER_NO":"` + paid.OrderNo + `"}`, "ORDER_NO", "order_no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orders := e.sim.OrderCount()
			got := call(t, tools, u, tc.tool, tc.args)
			if !got.out.Clarify || got.out.Executed || got.result["status"] != "needs_clarification" || got.action != nil {
				t.Fatalf("clarify %v executed %v, result %s; want a clarification, nothing executed", got.out.Clarify, got.out.Executed, got.out.Result)
			}
			if why, _ := got.result["error"].(string); !strings.Contains(why, `"`+tc.spelled+`"`) || !strings.Contains(why, `"`+tc.member+`"`) {
				t.Errorf("error %q does not name %q and %q", why, tc.spelled, tc.member)
			}
			if n := e.sim.OrderCount(); n != orders {
				t.Errorf("simulator orders %d after the call; want %d", n, orders)
			}
		})
	}
	if ps, err := e.svc.OpenRefunds(context.Background(), u.Client, u.User); err != nil || len(ps) != 0 {
		t.Errorf("open refund proposals %d (%v); want none", len(ps), err)
	}
	// Outside the schema and no member's variant: ignored, the call runs.
	got := call(t, tools, caller("oUser-args-case-price"), "create_order", `{"sku":"premium-monthly","Price":"0.01","amount_fen":1}`)
	if got.result["status"] != "awaiting_payment" || got.result["amount"] != "49.99 CNY" {
		t.Errorf("result %s; want an order at the catalog price", got.out.Result)
	}
}

// TestRefundAmountUnderAnotherNameIsAsked: request_refund without "amount"
// proposes everything not yet refunded, the largest refund there is. A
// model that put the user's "refund 10 yuan of it" under a name of its own
// ({"amount_fen":1000}, {"refund_amount":"10.00"}, {"quantity":1} of an
// order of two) had that member ignored as outside the schema, and the
// user was offered the whole payment back, one tap from sending it. Such a
// call asks the user instead, and nothing is proposed; a member that holds
// no number (a currency, a note) is still ignored, and one beside "amount"
// too: the amount is given.
func TestRefundAmountUnderAnotherNameIsAsked(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			paid := paidOrder(t, e, "oUser-refund-renamed", 2) // 99.98
			u := caller(paid.User)
			head := `{"order_no":"` + paid.OrderNo + `","reason":"one was enough",`
			for _, tc := range []struct{ name, extra, member string }{
				{"in fen", `"amount_fen":1000`, "amount_fen"},
				{"a decimal string", `"refund_amount":"10.00"`, "refund_amount"},
				{"with its currency", `"value":"10 CNY"`, "value"},
				{"a quantity", `"quantity":1`, "quantity"},
				{"nested", `"refund":{"amount":"10.00"}`, "refund"},
				{"a look-alike key", `"аmount":"10.00"`, "аmount"}, // Cyrillic а
				{"full-width digits", `"refund":"１０元"`, "refund"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := call(t, tools, u, "request_refund", head+tc.extra+`}`)
					if !got.out.Clarify || got.out.Executed || got.result["status"] != "needs_clarification" || got.action != nil {
						t.Fatalf("clarify %v executed %v, result %s, action %v; want a clarification, nothing proposed",
							got.out.Clarify, got.out.Executed, got.out.Result, got.action)
					}
					if why, _ := got.result["error"].(string); !strings.Contains(why, `"`+tc.member+`"`) || !strings.Contains(why, `"amount"`) {
						t.Errorf("error %q does not name %q and \"amount\"", why, tc.member)
					}
				})
			}
			if ps, err := e.svc.OpenRefunds(context.Background(), u.Client, u.User); err != nil || len(ps) != 0 {
				t.Fatalf("open refund proposals %d (%v); want none", len(ps), err)
			}
			// No number outside the schema: ignored, everything left is proposed.
			got := call(t, tools, u, "request_refund", head+`"currency":"CNY","note":"asap \u00e9"}`)
			if got.result["status"] != "awaiting_user_confirmation" || got.result["amount"] != "99.98 CNY" {
				t.Errorf("result %s; want a proposal of everything left", got.out.Result)
			}
			// Beside "amount" the amount is given: the extra member is ignored.
			got = call(t, tools, u, "request_refund", head+`"amount":"10.00","amount_fen":1000}`)
			if got.result["status"] != "awaiting_user_confirmation" || got.result["amount"] != "10.00 CNY" {
				t.Errorf("result %s; want a proposal of 10.00 CNY", got.out.Result)
			}
			if n := e.sim.RefundCount(""); n != 0 {
				t.Errorf("simulator refunds %d; want 0", n)
			}
		})
	}
}

// TestOrderNumberWithSpaceAroundIsTheOrder: an order number the model
// writes with white space around it (" PG…", a trailing newline, an
// ideographic space after it as Chinese text puts one) is the order's: the
// number itself never holds white space. Taken as written, the user's own
// order was answered "this user has no order with that number", and the
// model told the user it did not exist.
func TestOrderNumberWithSpaceAroundIsTheOrder(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	paid := paidOrder(t, e, "oUser-args-space", 2) // 99.98
	u := caller(paid.User)
	for _, tc := range []struct{ name, tool, no, want string }{
		{"query, spaces", "query_order", "  " + paid.OrderNo + " ", "paid"},
		{"query, newline and tab", "query_order", "\t" + paid.OrderNo + "\n", "paid"},
		{"query, ideographic space", "query_order", paid.OrderNo + "\u3000", "paid"},
		{"query, only space", "query_order", " \u3000", "needs_clarification"},
		{"refund, spaces", "request_refund", " " + paid.OrderNo + "\u00a0", "awaiting_user_confirmation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := `{"order_no":` + strconv.Quote(tc.no) + `,"reason":"changed my mind","amount":"1.00"}`
			if tc.tool == "query_order" {
				args = `{"order_no":` + strconv.Quote(tc.no) + `}`
			}
			got := call(t, tools, u, tc.tool, args)
			if got.result["status"] != tc.want {
				t.Fatalf("%s of %q: result %v; want status %s", tc.tool, tc.no, got.result, tc.want)
			}
			if tc.want != "needs_clarification" && got.result["order_no"] != paid.OrderNo {
				t.Errorf("order_no %v in the result; want %s", got.result["order_no"], paid.OrderNo)
			}
		})
	}
}

// TestToolArgumentsNotJSONAreRefused: arguments that a lenient reader
// would take for an object but that are no JSON: NaN or Infinity where a
// number goes (Python's json.dumps writes them), a trailing comma, a
// Python dict in single quotes, an object followed by words (a model that
// goes on talking in its arguments), comments. Read leniently (gjson reads
// the members before the fault), several would buy what the model may not
// have meant; each is a clarification, nothing executed. Fails if the
// arguments' validation (gjson.Valid before reading) is dropped.
func TestToolArgumentsNotJSONAreRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	for _, tc := range []struct{ name, args string }{
		{"NaN quantity", `{"sku":"premium-monthly","quantity":NaN}`},
		{"Infinity quantity", `{"sku":"premium-monthly","quantity":Infinity}`},
		{"trailing comma", `{"sku":"premium-monthly",}`},
		{"python dict", `{'sku': 'premium-monthly'}`},
		{"words after the object", `{"sku":"premium-monthly"} and two more please`},
		{"a comment", `{"sku":"premium-monthly" /* two */}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orders := e.sim.OrderCount()
			got := call(t, tools, caller("oUser-args-notjson"), "create_order", tc.args)
			if !got.out.Clarify || got.out.Executed || got.result["status"] != "needs_clarification" || got.action != nil {
				t.Fatalf("clarify %v executed %v, result %s; want a clarification, nothing executed", got.out.Clarify, got.out.Executed, got.out.Result)
			}
			if n := e.sim.OrderCount(); n != orders {
				t.Errorf("simulator orders %d after the call; want %d", n, orders)
			}
		})
	}
}
