package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store/testdrivers"
)

// payingTools runs create_order and has the order paid at once: the
// payment's notification (a quick user, payments.simulator.pay_after)
// reaches the ledger while the turn that created the order still streams
// its continuation round.
type payingTools struct{ pay func() }

func (*payingTools) IsPayment(name string) bool { return name == "create_order" }
func (p *payingTools) Execute(context.Context, payments.Caller, string, string) payments.Outcome {
	p.pay()
	return payments.Outcome{Result: []byte(`{"order_no":"X1","status":"awaiting_payment"}`), MoneyMoving: true, Executed: true}
}
func (*payingTools) Refused(string, string) payments.Outcome {
	return payments.Outcome{Result: []byte(`{"error":"ask the user"}`), Clarify: true}
}

// TestSellingRoundsCountInTheirTransaction: the rounds of a turn up to its
// create_order call (the model choosing the plan and calling the tool) are
// the cost of the sale, and belong to the transaction when the order is paid
// before the turn's continuation round ends. The turn handed its cost to the
// conversation only when it ended, so a payment that came meanwhile took a
// conversation without them: the sale counted as costing nothing, and its
// rounds went to the conversation's next paid order (or expired with it).
// Non-stream and stream, on both store drivers.
func TestSellingRoundsCountInTheirTransaction(t *testing.T) {
	const (
		callJSON = `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":null,` +
			`"tool_calls":[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}],` +
			`"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}`
		textJSON = `{"id":"c2","object":"chat.completion","created":2,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"Order X1 is ready to pay."},"finish_reason":"stop"}],` +
			`"usage":{"prompt_tokens":2000,"completion_tokens":100,"total_tokens":2100}}`
		head    = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
		callSSE = head + `{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}` + "\n\n" +
			head + `{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n" +
			head + `],"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}` + "\n\n" + "data: [DONE]\n\n"
		textSSE = head + `{"index":0,"delta":{"role":"assistant","content":"Order X1 is ready to pay."},"finish_reason":null}]}` + "\n\n" +
			head + `{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" +
			head + `],"usage":{"prompt_tokens":2000,"completion_tokens":100,"total_tokens":2100}}` + "\n\n" + "data: [DONE]\n\n"
	)
	// At 2.50 input and 10.00 output per million tokens (pricedConfig).
	const sale, continuation = "0.004500", "0.006000"
	sse := func(bodies ...string) http.HandlerFunc {
		var n atomic.Int32
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte(bodies[min(int(n.Add(1))-1, len(bodies)-1)]))
		}
	}
	for _, driver := range testdrivers.Names(t) {
		for _, tc := range []struct {
			name, stream string
			provider     http.HandlerFunc
		}{
			{"non-stream", "false", scriptedAnswers(callJSON, textJSON)},
			{"stream", "true", sse(callSSE, textSSE)},
		} {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				fp := newFakeProvider(t, tc.provider)
				st := testdrivers.Open(t, driver, nil)
				var ledger *accounting.Ledger
				tools := &payingTools{pay: func() {
					ledger.Paid(context.Background(), "shop-bot", "o-user-1", "chat-1", "X1", time.Time{})
				}}
				s, l, _ := ledgerProxy(t, pricedConfig(t, fp.URL), st, tools)
				ledger = l
				t.Cleanup(ledger.Close)
				srv, handled := waitedServer(t, s.Handler())
				resp := post(t, srv.URL, "/v1/chat/completions", `{"model":"gpt-test","stream":`+tc.stream+`,"messages":[{"role":"user","content":"one month of premium"}]}`,
					map[string]string{"X-WeChat-OpenID": "o-user-1", "X-Paygate-Session": "chat-1"})
				if b := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(b, "ready to pay") {
					t.Fatalf("answer %d %s", resp.StatusCode, b)
				}
				handled.Wait() // the turn's end is accounted after its answer
				ledger.Flush()
				got := ledger.Stats()
				if got.PaidOrders != 1 || got.TransactionCost != sale {
					t.Errorf("%d paid orders costing %s; want 1 costing %s, the rounds up to the create_order call", got.PaidOrders, got.TransactionCost, sale)
				}
				if got.Turns != 1 || got.LLMCost != "0.010500" {
					t.Errorf("%d turns costing %s; want 1 costing 0.010500", got.Turns, got.LLMCost)
				}
				// The continuation, after the payment, is the conversation's
				// next transaction's.
				ledger.Paid(context.Background(), "shop-bot", "o-user-1", "chat-1", "X2", time.Time{})
				ledger.Flush()
				if got := ledger.Stats().TransactionCost; got != "0.010500" {
					t.Errorf("after a second order the transactions cost %s; want 0.010500 (%s then %s)", got, sale, continuation)
				}
			})
		}
	}
}
