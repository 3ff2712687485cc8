package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// countedTools counts the payment calls paygate runs (the claim, not the
// proxy, dedupes those that run twice) and keeps the last one's result.
type countedTools struct {
	*payments.Tools
	runs atomic.Int32
	last atomic.Value
}

func (c *countedTools) Execute(ctx context.Context, caller payments.Caller, name, args string) payments.Outcome {
	c.runs.Add(1)
	o := c.Tools.Execute(ctx, caller, name, args)
	c.last.Store(string(o.Result))
	return o
}

// TestSameCreateOrderStreamedTwice: a provider that streams the same
// create_order call twice in one round, under two indexes (with one id or
// two) or in two choices, and a bot that sends that turn twice, make one
// order and one prepay on either store. In the round paygate runs the
// first (the second index is refused: one payment action a message;
// another choice's call is not the round's); the turn sent again runs it
// again, and the purchase claim (payments.ClaimKey) hands back the first
// turn's open order. Two orders would be two charges asked for once.
func TestSameCreateOrderStreamedTwice(t *testing.T) {
	const (
		args = `"{\"sku\":\"premium-monthly\",\"quantity\":1}"`
		fn   = `"function":{"name":"create_order","arguments":` + args + `}`
	)
	ev := func(choices string) string { return roundChunk + choices + "}\n\n" }
	for _, tc := range []struct {
		name   string
		events []string
	}{
		{"two indexes, one id", []string{
			ev(`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function",` + fn + `}]},"finish_reason":null}]`),
			ev(`[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_1","type":"function",` + fn + `}]},"finish_reason":null}]`),
		}},
		{"two indexes, two ids", []string{
			ev(`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function",` + fn + `}]},"finish_reason":null}]`),
			ev(`[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function",` + fn + `}]},"finish_reason":null}]`),
		}},
		{"two indexes in one delta", []string{
			ev(`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function",` + fn + `},{"index":1,"id":"call_2","type":"function",` + fn + `}]},"finish_reason":null}]`),
		}},
		{"two choices", []string{
			ev(`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function",` + fn + `}]},"finish_reason":null}]`),
			ev(`[{"index":1,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function",` + fn + `}]},"finish_reason":null}]`),
			ev(`[{"index":1,"delta":{},"finish_reason":"tool_calls"}]`),
		}},
		{"two choices in one event", []string{
			ev(`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function",` + fn + `}]},"finish_reason":null},` +
				`{"index":1,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function",` + fn + `}]},"finish_reason":null}]`),
		}},
	} {
		for _, driver := range testdrivers.Names(t) {
			t.Run(tc.name+", "+driver, func(t *testing.T) {
				st := testdrivers.Open(t, driver, nil)
				var prepays atomic.Int32
				_, svc := newSimPayments(t, st, simPayments{Sim: wxsim.Options{NotifyAttempts: 1}, AttemptTimeout: time.Second,
					Catalog: []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99"}},
					Hook: func(r *http.Request) {
						if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v3/pay/transactions/") && !strings.Contains(r.URL.Path, "/close") {
							prepays.Add(1)
						}
					}})
				up := sseHandler(append(append([]string(nil), tc.events...),
					ev(`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]`), "data: [DONE]\n\n")...)
				fp := newFakeProvider(t, roundByRound(up, textRound(true, "Your order is ready to pay."), up, textRound(true, "Your order is ready to pay.")))
				tools := &countedTools{Tools: simTools(svc)}
				url := paymentProxy(t, fp.URL, nil, tools, st, nil)
				// The bot sends the turn twice (a retry after its own
				// timeout): the second's call runs, and the claim finds
				// the first's order.
				for range 2 {
					resp := post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-twice"})
					if body := readAll(t, resp.Body); resp.StatusCode != http.StatusOK {
						t.Fatalf("status %d: %s", resp.StatusCode, body)
					}
				}
				orders, err := svc.ListOrders(context.Background(), store.OrderFilter{})
				if err != nil {
					t.Fatal(err)
				}
				if len(orders) != 1 || prepays.Load() != 1 || tools.runs.Load() != 2 {
					t.Fatalf("%d create_order run, %d orders, %d prepays of one create_order streamed twice in each of two turns; want one run a turn, one order, one prepay",
						tools.runs.Load(), len(orders), prepays.Load())
				}
				t.Logf("%d create_order run, %d order(s), %d prepay(s): %s", tools.runs.Load(), len(orders), prepays.Load(), tools.last.Load())
			})
		}
	}
}
