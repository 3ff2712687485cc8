package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// heldOrders answers create_order as the payments service does a purchase
// asked for again while its order waits for a manager: that order, held.
type heldOrders struct {
	recordingTools
	no string
}

func (x *heldOrders) Execute(ctx context.Context, c payments.Caller, name, args string) payments.Outcome {
	out := x.recordingTools.Execute(ctx, c, name, args)
	if name != "create_order" {
		return out
	}
	out.Result = []byte(`{"order_no":"` + x.no + `","status":"approval_required"}`)
	out.Action = []byte(`{"type":"approval_required","order":{"order_no":"` + x.no + `","status":"approval_required"}}`)
	return out
}

// TestHeldOrderAskedAgainToldOnce: the answer that told the bot its order
// waits for a manager never reached it, and the model of the next turn asks
// create_order again for the purchase, which returns the held order: the
// answer tells the bot once that it waits (the call's approval_required),
// not a second time as news from before the turn, which a bot that
// tells the user each action said twice.
func TestHeldOrderAskedAgainToldOnce(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		for _, stream := range []bool{false, true} {
			t.Run(driver+map[bool]string{true: "/stream", false: "/non-stream"}[stream], func(t *testing.T) {
				ctx := context.Background()
				clock := storetest.NewClock()
				st := testdrivers.Open(t, driver, clock.Now)
				const user = "o-held-asked-again"
				o := storetest.NewOrder("HELD-ASKED-AGAIN", "shop-bot", user, clock.Now().Add(-time.Minute))
				o.Status, o.ExpiresAt = store.StatusApprovalRequired, clock.Now().Add(time.Hour)
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
				call := `[{"id":"call_a","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"quantity\":2}"}}]`
				fp := newFakeProvider(t, roundByRound(callsRound(stream, call), textRound(stream, "It waits for a manager.")))
				tools := &heldOrders{no: o.OrderNo}
				url := paymentProxy(t, fp.URL, nil, tools, st, payableReconciler{})
				body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": user}).Body)
				ext := gjson.Get(body, "paygate")
				if stream {
					for _, c := range streamChunks(body) {
						if p := gjson.Get(c, "paygate"); p.Exists() {
							ext = p
						}
					}
				}
				if n := len(tools.executed()); n != 1 {
					t.Fatalf("%d create_order calls executed; want 1\n%s", n, body)
				}
				if got := ext.Get(`actions.#(type=="approval_required")#`).Array(); len(got) != 1 {
					t.Errorf("%d approval_required actions of the held order; want 1\n%s", len(got), body)
				}
			})
		}
	}
}
