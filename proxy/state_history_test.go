package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestPaymentStateBoundedWhateverTheHistory: the payment state is injected
// into every turn's prompt, so it must not grow with the user's history: a
// prompt that grows with a user's orders costs tokens on every turn and
// in the end overflows the model's context. A user with 1,000 orders made
// today (paid, refunded after a refund each, still awaiting payment) gets
// a state naming at most 2*store.UserStateOrders of them, no longer than
// the state of a user with exactly that many, and the turn reads the
// store once.
func TestPaymentStateBoundedWhateverTheHistory(t *testing.T) {
	const history = 1000
	bound := 2 * store.UserStateOrders
	statuses := []store.OrderStatus{store.StatusPaid, store.StatusRefunded, store.StatusAwaitingPayment, store.StatusPartiallyRefunded}
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := testdrivers.Open(t, driver, clock.Now)
			orders := func(user string, n int) {
				t.Helper()
				for i := range n {
					o := storetest.NewOrder(fmt.Sprintf("PGH%s%06d", user[len(user)-1:], i), "shop-bot", user, clock.Now().Add(-time.Hour).Add(time.Duration(i)*time.Millisecond))
					o.Status = statuses[i%len(statuses)]
					if o.Status != store.StatusAwaitingPayment {
						o.PaidAt = o.CreatedAt
						o.TransactionID = fmt.Sprintf("42000%023d", i)
					}
					if o.Status == store.StatusRefunded || o.Status == store.StatusPartiallyRefunded {
						o.RefundedFen = o.AmountFen
						o.RefundOutcomes = []store.RefundOutcome{{OutRefundNo: fmt.Sprintf("RF%06d", i), RefundID: fmt.Sprintf("rf_%06d", i),
							AmountFen: o.AmountFen, Status: store.RefundSucceeded, At: o.CreatedAt}}
					}
					if err := st.CreateOrder(ctx, o); err != nil {
						t.Fatal(err)
					}
				}
			}
			const long, short = "o-long-history-0123456789abcdefA", "o-short-history-0123456789abcdeB"
			orders(long, history)
			orders(short, bound)
			fp := newFakeProvider(t, jsonHandler(http.StatusOK,
				`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
			counting := &loadCounting{StateStore: st}
			url := paymentProxy(t, fp.URL, nil, queryTools{}, counting, payableReconciler{})
			state := func(user string) string {
				t.Helper()
				resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hello"}]}`,
					map[string]string{"X-WeChat-OpenID": user})
				readAll(t, resp.Body)
				resp.Body.Close()
				reqs := fp.requests()
				for _, m := range gjson.GetBytes(reqs[len(reqs)-1].Body, "messages").Array() {
					if m.Get("role").Str == "system" {
						return m.Get("content").Str
					}
				}
				return ""
			}
			for range 2 { // the first turn announces; the second is a plain one
				before := counting.loads
				longState, shortState := state(long), state(short)
				named := strings.Count(longState, "\n- order ")
				t.Logf("%d orders: state of %d bytes naming %d orders; %d orders: %d bytes", history, len(longState), named, bound, len(shortState))
				if named == 0 || named > bound {
					t.Errorf("the state of a user with %d orders names %d of them; want some, at most %d", history, named, bound)
				}
				if len(longState) > len(shortState) {
					t.Errorf("the state of a user with %d orders is %d bytes, of one with %d orders %d: it grows with the history", history, len(longState), bound, len(shortState))
				}
				if n := counting.loads - before; n != 2 {
					t.Errorf("two turns loaded the payment state %d times; want once each", n)
				}
			}
		})
	}
}

// loadCounting counts LoadUserState calls.
type loadCounting struct {
	StateStore
	loads int
}

func (c *loadCounting) LoadUserState(ctx context.Context, client, user string) (*store.UserState, error) {
	c.loads++
	return c.StateStore.LoadUserState(ctx, client, user)
}
