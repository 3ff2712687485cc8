package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
)

// skuOrders answers create_order as the payments service does a purchase
// asked for again while its order is open: the same order, with payment
// parameters signed afresh, for each call of one sku.
type skuOrders struct{ recordingTools }

func (x *skuOrders) Execute(ctx context.Context, c payments.Caller, name, args string) payments.Outcome {
	out := x.recordingTools.Execute(ctx, c, name, args)
	if name != "create_order" {
		return out
	}
	no := "O-" + gjson.Get(args, "sku").Str
	out.Result = []byte(`{"order_no":"` + no + `","status":"awaiting_payment"}`)
	out.Action = []byte(`{"type":"order_created","order":{"order_no":"` + no + `"},"request_payment":{"nonceStr":"n` + string(rune('0'+len(x.executed()))) + `"}}`)
	return out
}

// TestRepeatedOrderAnnouncedOnce: a turn whose create_order calls return the
// same order (the model calls it twice, in one round or two, under
// max_payment_calls 2; the service returns the open order) hands the bot
// one order_created for it, with the latest payment parameters, not one
// per call: the README's bot opens wx.requestPayment for each order_created,
// and the user was shown the payment sheet of one order twice. Calls for
// two orders still give two.
func TestRepeatedOrderAnnouncedOnce(t *testing.T) {
	const (
		monthly = `{"id":"call_%s","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
		yearly  = `{"id":"call_y","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-yearly\"}"}}`
	)
	call := func(id string) string { return strings.Replace(monthly, "%s", id, 1) }
	tests := []struct {
		name   string
		rounds []string // each tool round's calls; a round of words follows
		want   []string // the order numbers of paygate.actions, in order
	}{
		{"twice in one round", []string{"[" + call("a") + "," + call("b") + "]"}, []string{"O-premium-monthly"}},
		{"once in each of two rounds", []string{"[" + call("a") + "]", "[" + call("b") + "]"}, []string{"O-premium-monthly"}},
		{"two orders", []string{"[" + call("a") + "," + yearly + "]"}, []string{"O-premium-monthly", "O-premium-yearly"}},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: "/stream", false: "/non-stream"}[stream], func(t *testing.T) {
				var hs []http.HandlerFunc
				for _, calls := range tc.rounds {
					hs = append(hs, callsRound(stream, calls))
				}
				hs = append(hs, textRound(stream, "Here is your order."))
				fp := newFakeProvider(t, roundByRound(hs...))
				tools := &skuOrders{}
				url := paymentProxy(t, fp.URL, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = 2 }, tools, &memState{}, nil)
				body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
				ext := gjson.Get(body, "paygate")
				if stream {
					for _, c := range streamChunks(body) {
						if p := gjson.Get(c, "paygate"); p.Exists() {
							ext = p
						}
					}
				}
				var got []string
				ext.Get("actions").ForEach(func(_, a gjson.Result) bool {
					got = append(got, a.Get("order.order_no").Str)
					return true
				})
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("paygate.actions name orders %q; want %q\n%s", got, tc.want, body)
				}
				if n := len(tools.executed()); n != 2 {
					t.Errorf("%d calls executed; want both", n)
				}
				if last := ext.Get("actions.0.request_payment.nonceStr").Str; tc.want[0] == "O-premium-monthly" && len(tc.want) == 1 && last != "n2" {
					t.Errorf("the order's payment parameters are the first call's (%q); want the latest, n2", last)
				}
			})
		}
	}
}
