package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestRefundOutcomeNotLostWhenTheTurnFails: a refund's outcome is claimed
// only when the answer that tells it leaves. A turn whose upstream fails
// (refused outright, or a stream cut after its first words) tells the bot
// nothing of it, so the next turn does, once: claimed by the failed turn,
// the user never heard of their refund. Stream and non-stream, both
// drivers.
func TestRefundOutcomeNotLostWhenTheTurnFails(t *testing.T) {
	const okJSON = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`
	okSSE := sseHandler(roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Hi."},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")
	tests := []struct {
		name   string
		stream bool
		fail   http.HandlerFunc
	}{
		{name: "refused", fail: jsonHandler(http.StatusBadRequest, `{"error":{"message":"bad request","type":"invalid_request_error"}}`)},
		{name: "stream refused", stream: true, fail: jsonHandler(http.StatusBadRequest, `{"error":{"message":"bad request","type":"invalid_request_error"}}`)},
		{name: "stream cut", stream: true, fail: sseHandler(roundChunk + `[{"index":0,"delta":{"role":"assistant","content":"Your refund"},"finish_reason":null}]}` + "\n\n")},
	}
	for _, driver := range testdrivers.Names(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				clock := storetest.NewClock()
				st := testdrivers.Open(t, driver, clock.Now)
				user := "o-refund-lost-" + strings.ReplaceAll(tt.name, " ", "-")
				o := storetest.NewOrder("RFL-"+strings.ReplaceAll(tt.name, " ", "-"), "shop-bot", user, clock.Now())
				o.Status, o.PaidAt, o.RefundedFen, o.RefundNos = store.StatusRefunded, clock.Now(), o.AmountFen, []string{"RFdone"}
				o.RefundOutcomes = []store.RefundOutcome{{OutRefundNo: "RFdone", RefundID: "rf_done", AmountFen: o.AmountFen, Status: store.RefundSucceeded, At: clock.Now()}}
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
				var down atomic.Bool
				down.Store(true)
				fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
					switch {
					case down.Load():
						tt.fail(w, r)
					case tt.stream:
						okSSE(w, r)
					default:
						jsonHandler(http.StatusOK, okJSON)(w, r)
					}
				})
				url := paymentProxy(t, fp.URL, nil, queryTools{}, st, payableReconciler{})
				body := `{"model":"gpt-test","messages":[{"role":"user","content":"is my refund done?"}]}`
				if tt.stream {
					body = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"is my refund done?"}]}`
				}
				turn := func() string {
					t.Helper()
					resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": user})
					defer resp.Body.Close()
					return readAll(t, resp.Body)
				}
				refundActions := func(answer string) int {
					lines := []string{answer}
					if tt.stream {
						lines = strings.Split(answer, "\n")
					}
					n := 0
					for _, line := range lines {
						line = strings.TrimPrefix(line, "data: ")
						n += len(gjson.Get(line, `paygate.actions.#(type=="refund_succeeded")#`).Array())
					}
					return n
				}
				if failed := turn(); refundActions(failed) != 0 {
					t.Fatalf("the failed turn told the refund: %s", failed)
				}
				down.Store(false)
				if n := refundActions(turn()); n != 1 {
					t.Errorf("the turn after the failed one told the refund %d times; want once", n)
				}
				if n := refundActions(turn()); n != 0 {
					t.Errorf("the turn after that told it %d times; want none", n)
				}
			})
		}
	}
}
