package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// rereadParams hands a code URL for an order the store holds awaiting
// payment as it is now, whatever the copy it is given says, as
// payments.Service.PayableParams reads the order again.
type rereadParams struct {
	payableReconciler
	st store.Store
}

func (r rereadParams) PayableParams(ctx context.Context, o *store.Order) (*wechatpay.RequestPayment, string, error) {
	cur, err := r.st.GetOrder(ctx, o.OrderNo)
	if err != nil || cur.Status != store.StatusAwaitingPayment {
		return nil, "", err
	}
	return nil, "weixin://wxpay/bizpayurl?pr=" + cur.OrderNo, nil
}

// TestCreatingOrderAnnouncedOncePayable: an order still being created (its
// prepay at WeChat Pay) when a turn reads the user's state is announced by
// that turn if it became payable before the answer left (the prepay came
// back during the turn's round), as awaiting payment, with its payment
// parameters; a turn whose answer leaves while it is still being created
// announces nothing and uses up nothing, and a turn after the one that
// announced it announces it no more. Stream and non-stream (the stream's
// announcements ride its finish chunk), both drivers.
func TestCreatingOrderAnnouncedOncePayable(t *testing.T) {
	okSSE := sseHandler(roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Your order is being set up."},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")
	okJSON := jsonHandler(http.StatusOK, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Your order is being set up."},"finish_reason":"stop"}]}`)
	for _, driver := range testdrivers.Names(t) {
		for _, stream := range []bool{false, true} {
			name := driver
			if stream {
				name += "/stream"
			}
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				clock := storetest.NewClock()
				st := testdrivers.Open(t, driver, clock.Now)
				const user = "o-retried-buyer"
				o := storetest.NewOrder("CREATING-1", "shop-bot", user, clock.Now())
				o.Status = store.StatusCreating
				o.ExpiresAt = clock.Now().Add(2 * time.Hour)
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
				var prepaid atomic.Bool // the round records the prepay
				fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
					if prepaid.Load() {
						cur, err := st.GetOrder(r.Context(), o.OrderNo)
						if err == nil && cur.Status == store.StatusCreating {
							cur.Status, cur.PrepayID = store.StatusAwaitingPayment, "wx-prepay-1"
							err = st.UpdateOrder(r.Context(), cur, store.StatusCreating)
						}
						if err != nil {
							t.Errorf("recording the prepay: %v", err)
						}
					}
					if stream {
						okSSE(w, r)
					} else {
						okJSON(w, r)
					}
				})
				url := paymentProxy(t, fp.URL, nil, queryTools{}, st, rereadParams{st: st})
				body := `{"model":"gpt-test","messages":[{"role":"user","content":"premium please"}]}`
				if stream {
					body = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"premium please"}]}`
				}
				turn := func() []gjson.Result {
					t.Helper()
					resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": user})
					answer := readAll(t, resp.Body)
					resp.Body.Close()
					lines := []string{answer}
					if stream {
						lines = strings.Split(answer, "\n")
					}
					var got []gjson.Result
					for _, line := range lines {
						line = strings.TrimPrefix(line, "data: ")
						got = append(got, gjson.Get(line, `paygate.actions.#(type=="order_created")#`).Array()...)
					}
					return got
				}
				if got := turn(); len(got) != 0 {
					t.Fatalf("a turn while the order is being created: %v; want no order_created", got)
				}
				prepaid.Store(true)
				got := turn()
				if len(got) != 1 || got[0].Get("order.order_no").Str != o.OrderNo || got[0].Get("order.status").Str != "awaiting_payment" ||
					got[0].Get("code_url").Str == "" {
					t.Fatalf("the turn during which the prepay was recorded: %v; want the order's order_created, awaiting payment, with its payment parameters", got)
				}
				if got := turn(); len(got) != 0 {
					t.Fatalf("the turn after: %v; want none, the order announced already", got)
				}
			})
		}
	}
}
