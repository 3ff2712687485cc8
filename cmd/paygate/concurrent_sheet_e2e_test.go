package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestConcurrentTurnsHandOneSheet: two messages of one user are answered
// at once (a double tap on send, "buy it" then "hurry up" before the first
// answer came). Turn A's create_order makes the order; turn B, which began
// before the order existed, either calls create_order for the same
// purchase too (the same order comes back, with its payment parameters
// signed afresh) or, begun after it, reads the order in the payment state
// and calls nothing (the order is announced). B's answer leaves first.
// Both answers told the bot of the order: two chat bubbles, each with a
// "pay" button (or an "awaiting approval" notice) for one order, which the
// user reads as two orders, or as a double charge once the second sheet
// says the order is already paid. Exactly one of them carries it now, one
// order and one prepay, and the user's next turn does not tell it again.
func TestConcurrentTurnsHandOneSheet(t *testing.T) {
	cases := []struct {
		name      string
		price     string
		typ       string // the action that tells the bot of the order
		bReadsIt  bool   // B begins once the order exists, and calls nothing
		wantPaid  int    // prepays at WeChat Pay
		wantState store.OrderStatus
	}{
		{name: "payable/both-call", price: "49.99", typ: "order_created", wantPaid: 1, wantState: store.StatusAwaitingPayment},
		{name: "payable/announced", price: "49.99", typ: "order_created", bReadsIt: true, wantPaid: 1, wantState: store.StatusAwaitingPayment},
		{name: "held/both-call", price: "600.00", typ: "approval_required", wantState: store.StatusApprovalRequired},
		{name: "held/announced", price: "600.00", typ: "approval_required", bReadsIt: true, wantState: store.StatusApprovalRequired},
	}
	for _, driver := range testdrivers.Names(t) {
		for _, tc := range cases {
			for _, stream := range []bool{false, true} {
				name := driver + "/" + tc.name + "/nonstream"
				if stream {
					name = driver + "/" + tc.name + "/stream"
				}
				t.Run(name, func(t *testing.T) {
					bFirst := make(chan struct{}) // B's first round arrived
					aTool := make(chan struct{})  // A's round after its create_order arrived
					bDone := make(chan struct{})  // the test has read B's whole answer
					wait := func(ch <-chan struct{}, what string) {
						select {
						case <-ch:
						case <-time.After(20 * time.Second):
							t.Errorf("timed out waiting for %s", what)
						}
					}
					up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						b, _ := io.ReadAll(r.Body)
						body := string(b)
						who := gjson.Get(body, "messages.#(role==\"user\").content").Str[:1]
						toolRound := gjson.Get(body, "messages.@reverse.0.role").Str == "tool"
						var msg string
						switch {
						case toolRound && who == "A":
							close(aTool)
							wait(bDone, "B's answer")
							msg = `{"role":"assistant","content":"Done."}`
						case toolRound:
							msg = `{"role":"assistant","content":"Done."}`
						case who == "C":
							msg = `{"role":"assistant","content":"Still there."}`
						case who == "A":
							if !tc.bReadsIt {
								// B's state was read before the order existed.
								wait(bFirst, "B's first round")
							}
							msg = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"plan\"}"}}]}`
						case tc.bReadsIt:
							msg = `{"role":"assistant","content":"Your order is there."}`
						default:
							close(bFirst)
							wait(aTool, "A's order")
							msg = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_b","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"plan\"}"}}]}`
						}
						finish := "stop"
						if strings.Contains(msg, "tool_calls") {
							finish = "tool_calls"
						}
						if !gjson.Get(body, "stream").Bool() {
							w.Header().Set("Content-Type", "application/json")
							_, _ = io.WriteString(w, `{"id":"chatcmpl-c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":`+msg+`,"finish_reason":"`+finish+`"}]}`)
							return
						}
						delta := msg
						if gjson.Get(msg, "tool_calls").Exists() {
							delta, _ = strings.CutPrefix(msg, `{"role":"assistant","content":null,"tool_calls":[{`)
							delta = `{"role":"assistant","tool_calls":[{"index":0,` + delta
						}
						const head = `{"id":"chatcmpl-c","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
						w.Header().Set("Content-Type", "text/event-stream")
						_, _ = io.WriteString(w, "data: "+head+`{"index":0,"delta":`+delta+`,"finish_reason":null}]}`+"\n\n")
						_, _ = io.WriteString(w, "data: "+head+`{"index":0,"delta":{},"finish_reason":"`+finish+`"}]}`+"\n\ndata: [DONE]\n\n")
					}))
					t.Cleanup(up.Close)
					url, a := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
admin: {token: admin-token-0123456789}
`+webhookStoreYAML(t, driver)+`
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: plan, name: "The plan", price: "`+tc.price+`", max_quantity: 1}
`, io.Discard)
					aRes := make(chan turnResult, 1)
					go func() { aRes <- userTurn(t, url, stream, "A: I want the plan") }()
					if tc.bReadsIt {
						wait(aTool, "A's order")
					}
					rb := userTurn(t, url, stream, "B: the plan, please hurry")
					close(bDone)
					ra := <-aRes
					if ra.failed() || rb.failed() {
						t.Fatalf("A: %d %s\nB: %d %s", ra.status, ra.raw, rb.status, rb.raw)
					}
					orders, err := a.store.ListOrders(context.Background(), store.OrderFilter{})
					if err != nil {
						t.Fatal(err)
					}
					if len(orders) != 1 || orders[0].Status != tc.wantState {
						t.Fatalf("orders %+v; want one, %s", orders, tc.wantState)
					}
					if n := a.sim.OrderCount(); n != tc.wantPaid {
						t.Errorf("WeChat Pay holds %d orders; want %d", n, tc.wantPaid)
					}
					told := len(ra.actions(tc.typ)) + len(rb.actions(tc.typ))
					if told != 1 {
						t.Errorf("the bot was told of order %s %d times; want once\nA: %s\nB: %s", orders[0].OrderNo, told, ra.paygate.Raw, rb.paygate.Raw)
					}
					for _, r := range []turnResult{ra, rb} {
						for _, act := range r.actions(tc.typ) {
							if act.Get("order.order_no").Str != orders[0].OrderNo {
								t.Errorf("an action %s of another order than %s", act.Raw, orders[0].OrderNo)
							}
							if tc.typ == "order_created" && act.Get("request_payment.paySign").Str == "" {
								t.Errorf("order_created without payment parameters: %s", act.Raw)
							}
						}
					}
					checkQuiet(t, userTurn(t, url, stream, "C: so?"))
				})
			}
		}
	}
}
