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

// TestLateConfirmationInThePaymentState: the turn whose answer announces
// payment_confirmed tells the model of that payment too, however long
// after it the user comes back (within the announcement window), as a
// rejection and a refund's outcome are told. The payment state lists a
// settled order only for settled_after (24 hours): a user who paid and
// came back two days later got payment_confirmed in paygate.actions while
// their model read no word of the order, and answered "did my payment go
// through?" with "I have no record of it", or made a second order for what
// was paid. The turn after that lists it no more.
func TestLateConfirmationInThePaymentState(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		for _, stream := range []bool{false, true} {
			name := driver + "/non-stream"
			if stream {
				name = driver + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				clock := storetest.NewClock()
				st := testdrivers.Open(t, driver, clock.Now)
				const user = "o-late-payer"
				o := storetest.NewOrder("PAID-LATE-1", "shop-bot", user, clock.Now())
				o.Status, o.PaidAt = store.StatusPaid, clock.Now()
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
				clock.Advance(48 * time.Hour)
				handler := jsonHandler(http.StatusOK,
					`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`)
				if stream {
					handler = sseHandler(roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Hi."},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")
				}
				fp := newFakeProvider(t, handler)
				url := paymentProxy(t, fp.URL, nil, queryTools{}, st, payableReconciler{})
				turn := func() (confirmed int, state string) {
					t.Helper()
					resp := post(t, url, "/v1/chat/completions",
						`{"model":"gpt-test","stream":`+map[bool]string{false: "false", true: "true"}[stream]+
							`,"messages":[{"role":"user","content":"did my payment go through?"}]}`,
						map[string]string{"X-WeChat-OpenID": user})
					body := readAll(t, resp.Body)
					resp.Body.Close()
					if stream {
						for _, line := range strings.Split(body, "\n") {
							if p := strings.TrimPrefix(line, "data: "); p != line && gjson.Get(p, "paygate").Exists() {
								body = p
							}
						}
					}
					reqs := fp.requests()
					for _, m := range gjson.GetBytes(reqs[len(reqs)-1].Body, "messages").Array() {
						if m.Get("role").Str == "system" {
							state = m.Get("content").Str
						}
					}
					return len(gjson.Get(body, `paygate.actions.#(type=="payment_confirmed")#`).Array()), state
				}
				n, state := turn()
				if n != 1 {
					t.Fatalf("first turn two days after the payment: %d payment_confirmed; want 1", n)
				}
				if !strings.Contains(state, "order PAID-LATE-1") || !strings.Contains(state, "— paid") {
					t.Errorf("the turn that announces payment_confirmed of PAID-LATE-1 gave the model the payment state %q; want it to name PAID-LATE-1 as paid", state)
				}
				n, state = turn()
				if n != 0 || strings.Contains(state, "PAID-LATE-1") {
					t.Errorf("second turn: %d payment_confirmed, payment state %q; want the payment told once, the settled order no longer listed", n, state)
				}
			})
		}
	}
}
