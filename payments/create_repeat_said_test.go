package payments_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
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
// and when the user paid the order it names. Asked again while its order
// is in review (a copy of its payment disagreed with the record), it is
// that order as it stands (needs_review), and no word of an open order
// comes with it: told it was "the order already open", the model would
// have had the user pay an order staff are checking.
func TestCreateOrderAlreadyPaidSaysNoNewOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			for _, tc := range []struct {
				name, status string
				review       bool // a differing copy of its payment puts the order in review
			}{
				{"paid", "already_paid", false},
				{"in review", string(store.StatusNeedsReview), true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					paid := paidOrder(t, e, "oUser-create-paid-said-"+tc.name, 1)
					if tc.review {
						tx := e.paidTx(paid)
						tx.Amount.Total = 1
						n := e.buildPayment(tx, nil)
						if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
							t.Fatalf("differing copy: got %d %q; want 204", status, body)
						}
					}
					again := call(t, tools, caller(paid.User), "create_order", `{"sku":"premium-monthly"}`)
					if again.result["status"] != tc.status || again.result["order_no"] != paid.OrderNo || again.action != nil {
						t.Fatalf("result %s; want %s of %s", again.out.Result, tc.status, paid.OrderNo)
					}
					msg, _ := again.result["message"].(string)
					if strings.Contains(msg, "open") {
						t.Errorf("result %s; the order is not open", again.out.Result)
					}
					when := paid.PaidAt.UTC().Format(time.RFC3339)
					if !tc.review && (!strings.Contains(msg, "no new order") || !strings.Contains(msg, when)) {
						t.Errorf("result %s; want a message saying no new order was made and that the user paid it at %s", again.out.Result, when)
					}
				})
			}
		})
	}
}
