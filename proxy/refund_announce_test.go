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

// TestRefundOutcomeAnnouncedOnce: a refund of the user's that ended at WeChat
// Pay since their last turn (succeeded, closed with no money moved, or
// abnormal: stuck, for staff) is told in their next turn, once, as a
// payment is: its action in paygate.actions for the bot, and the model
// reads it in the payment state ("your refund of 49.99 CNY succeeded").
// The turn after that tells it no more; a refund that ended before the
// announcement window is not told at all. Only the merchant's webhook heard
// of it before.
func TestRefundOutcomeAnnouncedOnce(t *testing.T) {
	tests := []struct {
		status store.OrderStatus
		out    string
		action string
		says   string
	}{
		{store.StatusRefunded, store.RefundSucceeded, "refund_succeeded", "refund of 49.99 CNY succeeded"},
		{store.StatusPaid, store.RefundClosed, "refund_closed", "refund of 49.99 CNY was closed"},
		{store.StatusNeedsReview, store.RefundAbnormal, "refund_abnormal", "refund of 49.99 CNY is stuck"},
	}
	for _, driver := range testdrivers.Names(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.out, func(t *testing.T) {
				ctx := context.Background()
				clock := storetest.NewClock()
				st := testdrivers.Open(t, driver, clock.Now)
				user := "o-refunded-" + tt.out
				o := storetest.NewOrder("RFD-"+tt.out, "shop-bot", user, clock.Now().Add(-announceWindow-time.Hour))
				o.Status = tt.status
				o.PaidAt = o.CreatedAt
				o.RefundOutcomes = []store.RefundOutcome{
					{OutRefundNo: "RFold", RefundID: "rf_old", AmountFen: 100, Status: store.RefundSucceeded, At: o.CreatedAt},
					{OutRefundNo: "RFnew", RefundID: "rf_new", AmountFen: 4999, Status: tt.out, At: clock.Now()},
				}
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
				fp := newFakeProvider(t, jsonHandler(http.StatusOK,
					`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
				url := paymentProxy(t, fp.URL, nil, queryTools{}, st, payableReconciler{})
				turn := func() (actions []gjson.Result, state string) {
					t.Helper()
					resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hello"}]}`,
						map[string]string{"X-WeChat-OpenID": user})
					body := readAll(t, resp.Body)
					resp.Body.Close()
					reqs := fp.requests()
					for _, m := range gjson.GetBytes(reqs[len(reqs)-1].Body, "messages").Array() {
						if m.Get("role").Str == "system" {
							state = m.Get("content").Str
						}
					}
					return gjson.Get(body, `paygate.actions.#(type%"refund_*")#`).Array(), state
				}
				acts, state := turn()
				if len(acts) != 1 || acts[0].Get("type").Str != tt.action || acts[0].Get("refund.refund_id").Str != "rf_new" ||
					acts[0].Get("refund.amount_fen").Int() != 4999 || acts[0].Get("refund.status").Str != tt.out ||
					acts[0].Get("order.order_no").Str != o.OrderNo {
					t.Errorf("first turn's refund actions %v; want one %s of rf_new, 4999 fen, with its order", acts, tt.action)
				}
				if !strings.Contains(state, tt.says) || strings.Contains(state, "1.00 CNY") {
					t.Errorf("first turn's payment state %q; want it to say %q, and nothing of the refund past the window", state, tt.says)
				}
				acts, state = turn()
				if len(acts) != 0 || strings.Contains(state, tt.says) {
					t.Errorf("second turn: refund actions %v, state %q; want the refund told once", acts, state)
				}
			})
		}
	}
}
