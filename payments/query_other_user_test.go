package payments_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestQueryOrderOfAnotherUsersOrderTellsNothing: the model's query_order
// for an order that is not the caller's, another user's at the same
// client, or the same OpenID's at another client (a bot of another app),
// pending or paid, is answered as a number no order has, word for word,
// and sends WeChat Pay nothing: the model learns neither that the order
// exists nor its state, and cannot make paygate query (or refresh) an
// order of someone else's. The owner's own query of the same pending
// order does ask WeChat Pay, so the count below would see one.
func TestQueryOrderOfAnotherUsersOrderTellsNothing(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			// A pending order is queried at WeChat Pay on any read at once.
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { o.ActiveQueryAfter = time.Nanosecond }})
			tools := newTools(e)
			const owner = "oUser-query-owner"
			pending := e.create(owner, 1)
			paid := e.create(owner, 2)
			if d, err := e.sim.Pay(context.Background(), paid.OrderNo); err != nil || !d.Acked {
				t.Fatalf("pay %s: %+v %v", paid.OrderNo, d, err)
			}
			e.await(func(tr payments.Transition) bool {
				return tr.After.OrderNo == paid.OrderNo && tr.After.Status == store.StatusPaid
			})

			// What a number no order has is answered: the reference.
			none := call(t, tools, caller("oUser-query-stranger"), "query_order", `{"order_no":"PG000000000000none"}`)
			if none.result["status"] != "not_found" || !none.out.Executed || none.out.Failed {
				t.Fatalf("a number no order has: %s %+v; want not_found", none.out.Result, none.out)
			}
			otherClient := caller(owner)
			otherClient.Client = "other-app-bot"
			for _, tt := range []struct {
				name string
				c    payments.Caller
				no   string
			}{
				{"another user's pending order", caller("oUser-query-stranger"), pending.OrderNo},
				{"another user's paid order", caller("oUser-query-stranger"), paid.OrderNo},
				{"the same OpenID's pending order at another client", otherClient, pending.OrderNo},
				{"the same OpenID's paid order at another client", otherClient, paid.OrderNo},
			} {
				t.Run(tt.name, func(t *testing.T) {
					before := len(e.sim.Requests())
					got := call(t, tools, tt.c, "query_order", `{"order_no":"`+tt.no+`"}`)
					want := map[string]any{}
					for k, v := range none.result {
						want[k] = v
					}
					want["order_no"] = tt.no
					g, _ := json.Marshal(got.result)
					w, _ := json.Marshal(want)
					if string(g) != string(w) || got.out.Failed != none.out.Failed || got.out.Executed != none.out.Executed || got.out.Action != nil {
						t.Errorf("result %s %+v; want %s, as a number no order has", got.out.Result, got.out, w)
					}
					if reqs := e.sim.Requests()[before:]; len(reqs) != 0 {
						t.Errorf("WeChat Pay got %+v for an order not the caller's; want nothing", reqs)
					}
				})
			}

			// The owner's own read of the pending order does query it.
			before := len(e.sim.Requests())
			if got := call(t, tools, caller(owner), "query_order", `{"order_no":"`+pending.OrderNo+`"}`); got.result["status"] != "awaiting_payment" {
				t.Fatalf("the owner's query: %s; want awaiting_payment", got.out.Result)
			}
			if len(e.sim.Requests()) == before {
				t.Errorf("the owner's query of a pending order sent WeChat Pay nothing; the checks above see no query")
			}
		})
	}
}
