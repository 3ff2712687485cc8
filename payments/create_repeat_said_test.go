package payments_test

import (
	"strings"
	"testing"
	"time"
)

// TestCreateOrderRepeatSaysNoSecondOrder: a purchase is its client, user,
// SKU and quantity, so a create_order for one whose order is still open
// returns that order (SPEC 4) — also when the user meant a second one
// ("and one more for my friend", in a later turn). Its result was that of
// a new order (its number, amount and awaiting_payment, nothing else), and
// the model told the user a second order had been made: they paid one,
// thinking they had bought two. The repeat now says it is the open order
// returned again and no second order was made; a first order says nothing
// of the kind.
func TestCreateOrderRepeatSaysNoSecondOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			u := caller("oUser-create-repeat-said")
			first := call(t, tools, u, "create_order", `{"sku":"premium-monthly"}`)
			if first.result["status"] != "awaiting_payment" {
				t.Fatalf("first call: result %s; want awaiting_payment", first.out.Result)
			}
			if msg, _ := first.result["message"].(string); strings.Contains(msg, "no second order") {
				t.Errorf("first call: message %q; a new order is no repeat", msg)
			}
			for _, args := range []string{`{"sku":"premium-monthly"}`, `{"sku":"premium-monthly","quantity":1,"pay_method":"jsapi"}`} {
				again := call(t, tools, u, "create_order", args)
				if again.result["status"] != "awaiting_payment" || again.result["order_no"] != first.result["order_no"] {
					t.Fatalf("%s: result %s; want the open order %v again", args, again.out.Result, first.result["order_no"])
				}
				if msg, _ := again.result["message"].(string); !strings.Contains(msg, "no second order") {
					t.Errorf("%s: result %s; want a message saying it is the open order and no second order was made", args, again.out.Result)
				}
			}
			if n := e.sim.OrderCount(); n != 1 {
				t.Errorf("%d orders at WeChat Pay; want 1", n)
			}
		})
	}
}

// TestCreateOrderAlreadyPaidSaysNoNewOrder: the purchase asked again once
// paid is already_paid (SPEC 4), whose message says no new order was made
// and when the user paid the order it names.
func TestCreateOrderAlreadyPaidSaysNoNewOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			paid := paidOrder(t, e, "oUser-create-paid-said", 1)
			again := call(t, tools, caller(paid.User), "create_order", `{"sku":"premium-monthly"}`)
			if again.result["status"] != "already_paid" || again.result["order_no"] != paid.OrderNo || again.action != nil {
				t.Fatalf("result %s; want already_paid of %s", again.out.Result, paid.OrderNo)
			}
			when := paid.PaidAt.UTC().Format(time.RFC3339)
			if msg, _ := again.result["message"].(string); !strings.Contains(msg, "no new order") || !strings.Contains(msg, when) {
				t.Errorf("result %s; want a message saying no new order was made and that the user paid it at %s", again.out.Result, when)
			}
		})
	}
}
