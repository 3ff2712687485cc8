package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestRejectionAnnouncedOnce: a manager's no is told to the user in their
// next turn, once, as a manager's yes is: however long after the decision
// that turn comes (within the announcement window), not only while the
// rejected order is among the recently settled ones the payment state
// lists (settled_after, 24 hours). A manager may decide on the third day
// of approval_ttl and the user come back the day after: the state had
// dropped the order by then, and the user, told their order was waiting
// for a manager, never heard it was refused, where an approval is
// announced for 29 days. The turn after that tells it no more.
func TestRejectionAnnouncedOnce(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := testdrivers.Open(t, driver, clock.Now)
			const user = "o-rejected"
			o := storetest.NewOrder("REJ-1", "shop-bot", user, clock.Now())
			o.Status = store.StatusRejected
			if err := st.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			clock.Advance(30 * time.Hour)
			fp := newFakeProvider(t, jsonHandler(http.StatusOK,
				`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
			url := paymentProxy(t, fp.URL, nil, queryTools{}, st, payableReconciler{})
			turn := func() (actions []gjson.Result, state string) {
				t.Helper()
				resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"was my order approved?"}]}`,
					map[string]string{"X-WeChat-OpenID": user})
				body := readAll(t, resp.Body)
				resp.Body.Close()
				reqs := fp.requests()
				for _, m := range gjson.GetBytes(reqs[len(reqs)-1].Body, "messages").Array() {
					if m.Get("role").Str == "system" {
						state = m.Get("content").Str
					}
				}
				return gjson.Get(body, `paygate.actions.#(type=="order_rejected")#`).Array(), state
			}
			acts, state := turn()
			if len(acts) != 1 || acts[0].Get("order.order_no").Str != "REJ-1" || acts[0].Get("order.status").Str != "rejected" {
				t.Errorf("first turn's order_rejected actions %v; want one, of REJ-1", acts)
			}
			if !strings.Contains(state, "REJ-1") || !strings.Contains(state, "rejected by a manager") {
				t.Errorf("first turn's payment state %q; want it to tell REJ-1 was rejected by a manager", state)
			}
			acts, state = turn()
			if len(acts) != 0 || strings.Contains(state, "REJ-1") {
				t.Errorf("second turn: order_rejected actions %v, state %q; want the rejection told once", acts, state)
			}
		})
	}
}
