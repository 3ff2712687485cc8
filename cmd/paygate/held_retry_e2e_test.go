package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// heldProvider scripts a purchase of an order above approval_above: the
// first round calls create_order, the round after the tool result is slower
// than the bot's timeout (until the bot has gone), and a round whose payment
// state shows the order waiting for a manager answers in words. firsts
// counts the first rounds.
func heldProvider(t *testing.T, firsts *int, mu *sync.Mutex) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body := string(b)
		stream := gjson.Get(body, "stream").Bool()
		last := gjson.Get(body, "messages.@reverse.0")
		answer := func(whole, chunks string) {
			if !stream {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, whole)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			for _, c := range strings.Split(chunks, "\n") {
				_, _ = io.WriteString(w, "data: "+c+"\n\n")
			}
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
		}
		const head = `{"id":"chatcmpl-h","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
		switch {
		case last.Get("role").Str == "tool":
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
		case strings.Contains(body, "waiting for a manager's approval"):
			answer(`{"id":"chatcmpl-h","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Your order waits for a manager."},"finish_reason":"stop"}]}`,
				head+`{"index":0,"delta":{"role":"assistant","content":"Your order waits for a manager."},"finish_reason":null}]}`+"\n"+
					head+`{"index":0,"delta":{},"finish_reason":"stop"}]}`)
		default:
			mu.Lock()
			*firsts++
			mu.Unlock()
			answer(`{"id":"chatcmpl-h","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_big","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"team-yearly\"}"}}]},"finish_reason":"tool_calls"}]}`,
				head+`{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_big","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"team-yearly\"}"}}]},"finish_reason":null}]}`+"\n"+
					head+`{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`)
		}
	}))
	t.Cleanup(up.Close)
	return up
}

// TestNodeTimedOutHeldOrderRetried: the Node SDK's timeout fires while the
// round after create_order is still running, for an order above
// approval_above, so the answer that carried its approval_required never
// reached the bot, and the SDK sends the same request again. The retry's
// model reads the order in the payment state and answers in words: the
// retry's answer tells the bot the order waits for a manager
// (approval_required, once), streamed or not (streaming, the first
// answer's stream ended in an error and the bot sent it again), and the user's next turn
// does not tell it again. One order, held, and nothing at WeChat Pay. The
// retry's answer had no approval_required: the bot never learnt the order
// was waiting, and showed the user nothing to wait for.
func TestNodeTimedOutHeldOrderRetried(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		for _, mode := range []string{"with-response", "stream-resend"} {
			t.Run(driver+"/"+mode, func(t *testing.T) {
				// Streaming, the answer's headers left with the first
				// round, so the SDK's timeout no longer applies: the round
				// after the order ends the stream with an error event at
				// paygate's first-byte timeout, and the bot sends the
				// request again itself.
				timeouts := ""
				if mode == "stream-resend" {
					timeouts = ", timeouts: {first_byte: 1s}"
				}
				var mu sync.Mutex
				firsts := 0
				up := heldProvider(t, &firsts, &mu)
				url, a := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
admin: {token: admin-token-0123456789}
`+webhookStoreYAML(t, driver)+`
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret`+timeouts+`}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: team-yearly, name: "Team tier, 1 year", price: "600.00", max_quantity: 1}
`, io.Discard)
				out := nodeChat(t, url, mode, "PAYGATE_RETRIES=2", "PAYGATE_TIMEOUT_MS=1500")
				var res struct {
					Error      string          `json:"error"`
					FirstError *string         `json:"firstError"`
					Paygate    json.RawMessage `json:"paygate"`
				}
				if err := json.Unmarshal(out, &res); err != nil {
					t.Fatalf("%s: %v", out, err)
				}
				if res.Error != "" || mode == "stream-resend" && res.FirstError == nil {
					t.Fatalf("the bot got %s; want the retry's answer", out)
				}
				orders, err := a.store.ListOrders(context.Background(), store.OrderFilter{})
				if err != nil {
					t.Fatal(err)
				}
				if len(orders) != 1 || orders[0].Status != store.StatusApprovalRequired {
					t.Fatalf("orders %+v; want one, awaiting approval", orders)
				}
				if n := a.sim.OrderCount(); n != 0 {
					t.Errorf("WeChat Pay holds %d orders; want none before an approval", n)
				}
				held := gjson.GetBytes(res.Paygate, `actions.#(type=="approval_required")#`).Array()
				if len(held) != 1 || held[0].Get("order.order_no").Str != orders[0].OrderNo || held[0].Get("order.status").Str != "approval_required" {
					t.Errorf("the retried answer's paygate %s; want one approval_required of %s", res.Paygate, orders[0].OrderNo)
				}
				if n := gjson.GetBytes(res.Paygate, "actions.#").Int(); n != 1 {
					t.Errorf("the retried answer's paygate %s; want the approval_required alone", res.Paygate)
				}
				mu.Lock()
				if firsts != 1 {
					t.Errorf("%d first rounds called create_order; want 1", firsts)
				}
				mu.Unlock()
				checkQuiet(t, userTurn(t, url, mode != "with-response", "Any news?"))
			})
		}
	}
}
