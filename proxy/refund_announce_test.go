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
		{store.StatusPaid, store.RefundFailed, "refund_failed", "refund of 49.99 CNY was refused"},
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

// unsentReconciler stands in for payments.Service's UnsentRefunds: the
// refunding order reserved by "rf_cut" sent nothing, and reads as paid.
type unsentReconciler struct{ payableReconciler }

func (unsentReconciler) UnsentRefunds(_ context.Context, orders []*store.Order) []*store.Order {
	out := make([]*store.Order, len(orders))
	for i, o := range orders {
		out[i] = o
		if o.Status == store.StatusRefunding && o.RefundReservedBy == "rf_cut" {
			c := *o
			c.Status, c.RefundReservedBy = store.StatusPaid, ""
			out[i] = &c
		}
	}
	return out
}

// TestStateOfAnUnsentRefundIsPaid: the payment state the model reads is the
// one the reconciler gives for a refunding order whose confirmation was cut
// short (nothing sent): paid, not "refund in progress", which had the
// model tell the user to wait for a refund nobody sent. One really sent
// stays in progress.
func TestStateOfAnUnsentRefundIsPaid(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	st := testdrivers.Open(t, testdrivers.Names(t)[0], clock.Now)
	const user = "o-cut-refund"
	for no, by := range map[string]string{"CUT-1": "rf_cut", "SENT-1": "rf_sent"} {
		o := storetest.NewOrder(no, "shop-bot", user, clock.Now())
		o.Status, o.PaidAt, o.RefundReservedBy = store.StatusRefunding, clock.Now(), by
		if err := st.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	fp := newFakeProvider(t, jsonHandler(http.StatusOK,
		`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
	url := paymentProxy(t, fp.URL, nil, queryTools{}, st, unsentReconciler{})
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"where is my refund?"}]}`,
		map[string]string{"X-WeChat-OpenID": user})
	readAll(t, resp.Body)
	resp.Body.Close()
	var state string
	for _, m := range gjson.GetBytes(fp.requests()[0].Body, "messages").Array() {
		if m.Get("role").Str == "system" {
			state = m.Get("content").Str
		}
	}
	for _, want := range []string{"order CUT-1: Premium tier, 1 month ×1, 49.99 CNY — paid", "order SENT-1: Premium tier, 1 month ×1, 49.99 CNY — paid, refund in progress"} {
		if !strings.Contains(state, want) {
			t.Errorf("payment state %q; want it to say %q", state, want)
		}
	}
	if strings.Contains(state, "CUT-1: Premium tier, 1 month ×1, 49.99 CNY — paid, refund in progress") {
		t.Errorf("payment state %q: the refund nobody sent is in progress", state)
	}
}
