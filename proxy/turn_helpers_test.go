package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonstr"
	"github.com/paygate/paygate/payments"
)

// recordingTools records each executed call; create_order and request_refund move money.
type recordingTools struct {
	mu    sync.Mutex
	calls []string
}

func (*recordingTools) IsPayment(n string) bool {
	return n == "create_order" || n == "query_order" || n == "request_refund"
}
func (*recordingTools) Names() payments.ToolNames {
	return payments.ToolNames{CreateOrder: "create_order", QueryOrder: "query_order", RequestRefund: "request_refund"}
}
func (x *recordingTools) Execute(_ context.Context, _ payments.Caller, name, args string) payments.Outcome {
	x.mu.Lock()
	x.calls = append(x.calls, name+" "+args)
	x.mu.Unlock()
	if !gjson.Valid(args) {
		return payments.Outcome{Result: []byte(`{"status":"needs_clarification"}`), Clarify: true}
	}
	if name == "create_order" {
		return payments.Outcome{Result: []byte(`{"order_no":"O1","status":"awaiting_payment"}`), MoneyMoving: true, Executed: true,
			Action: []byte(`{"type":"order_created","order":{"order_no":"O1"}}`)}
	}
	return payments.Outcome{Result: []byte(`{"order_no":"X1","status":"paid"}`), Executed: true}
}
func (*recordingTools) Refused(_, why string) payments.Outcome {
	b, _ := json.Marshal(map[string]string{"status": "not_executed", "error": why})
	return payments.Outcome{Result: b, MoneyMoving: true, Clarify: true}
}
func (x *recordingTools) executed() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.calls...)
}

// toolsProxy serves a proxy for the provider at base (testConfig with
// mutate) with tools and exchanges kept in memory; it returns its URL.
func toolsProxy(t *testing.T, base string, tools *recordingTools, mutate func(*config.Config)) string {
	t.Helper()
	return paymentProxy(t, base, mutate, tools, &memState{}, nil)
}

// weatherBotTurn serves one turn of a bot that offers its own get_weather
// (weatherTool), streamed or not, through a toolsProxy whose payment tools
// are recorded, not run, from a provider answering with provider. It fails
// the test unless the turn answered 200, and returns the answer and the
// tools, to ask what ran. It exists because the tests of what a damaged or
// odd provider round makes of a payment call differ only in the round and
// what they expect of it.
func weatherBotTurn(t *testing.T, provider http.HandlerFunc, stream bool) (string, *recordingTools) {
	t.Helper()
	fp := newFakeProvider(t, provider)
	tools := &recordingTools{}
	url := toolsProxy(t, fp.URL, tools, nil)
	resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return body, tools
}

// paymentProxy serves a proxy for the provider at base (testConfig with
// mutate) with the payment tools tools over the state st, refreshed by rc
// (nil: none); it returns its URL.
func paymentProxy(t *testing.T, base string, mutate func(*config.Config), tools PaymentTools, st StateStore, rc Reconciler) string {
	t.Helper()
	_, url := servePaygate(t, testConfig(t, base, mutate), Options{Tools: tools, State: st, Reconciler: rc}, nil)
	return url
}

// roundByRound answers the n-th upstream request with the n-th handler.
func roundByRound(hs ...http.HandlerFunc) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(hs)-1)
		hs[i](w, r)
	}
}

// weatherTool is a bot's own tool, for rounds that mix it with payment calls.
const weatherTool = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],`

// roundChunk begins a streamed chunk; the choices array follows.
const roundChunk = `data: {"id":"c0","object":"chat.completion.chunk","created":1,"model":"m0","choices":`

// callsRound answers one round with the tool calls calls (a raw JSON array
// of tool_calls entries): streamed as one delta, or as a chat.completion's
// message. The same model output reaches either path.
func callsRound(stream bool, calls string) http.HandlerFunc {
	if stream {
		return sseHandler(
			roundChunk+`[{"index":0,"delta":{"role":"assistant","tool_calls":`+calls+`},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
	}
	return jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":`+calls+`},"finish_reason":"tool_calls"}]}`)
}

// endedRound answers one round: streamed, events (whole events, the
// round's deltas), then its tool calls (createOrderCall's shape, "" for
// none) in a delta of their own, its finish and [DONE]; or as a
// chat.completion whose message is msg (an object without its closing
// brace) with the tool calls.
func endedRound(stream bool, events []string, msg, calls, finish string) http.HandlerFunc {
	if !stream {
		if calls != "" {
			msg += `,"tool_calls":` + calls
		}
		return jsonHandler(200, `{"id":"r","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":`+msg+`}`+
			`,"logprobs":null,"finish_reason":"`+finish+`"}]}`)
	}
	if calls != "" {
		events = append(events, roundChunk+`[{"index":0,"delta":{"tool_calls":`+calls+`},"finish_reason":null}]}`+"\n\n")
	}
	return sseHandler(append(events, roundChunk+`[{"index":0,"delta":{},"finish_reason":"`+finish+`"}]}`+"\n\n", "data: [DONE]\n\n")...)
}

// textRound answers one round with text, streamed or not.
func textRound(stream bool, text string) http.HandlerFunc {
	q := string(jsonstr.Append(nil, text))
	if stream {
		return sseHandler(
			roundChunk+`[{"index":0,"delta":{"role":"assistant","content":`+q+`},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")
	}
	return jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":`+q+`},"finish_reason":"stop"}]}`)
}

// chatBody is a signed-in chat request with the given members (each with
// its trailing comma), streamed or not.
func chatBody(stream bool, members string) string {
	if stream {
		members = `"stream":true,` + members
	}
	return `{"model":"gpt-test",` + members + `"messages":[{"role":"user","content":"buy premium"}]}`
}

// botCalls is the tool calls the bot received in an answer, stream or not,
// each as "name arguments"; a streamed call's deltas are joined by index.
func botCalls(stream bool, body string) []string {
	var out []string
	if !stream {
		gjson.Get(body, "choices.0.message.tool_calls").ForEach(func(_, c gjson.Result) bool {
			out = append(out, c.Get("function.name").Str+c.Get("custom.name").Str+" "+c.Get("function.arguments").Str+c.Get("custom.input").Str)
			return true
		})
		return out
	}
	var names, args []string
	for _, line := range strings.Split(body, "\n") {
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		gjson.Get(d, "choices.0.delta.tool_calls").ForEach(func(_, e gjson.Result) bool {
			i := int(e.Get("index").Int())
			for len(names) <= i {
				names, args = append(names, ""), append(args, "")
			}
			if names[i] == "" {
				names[i] = e.Get("function.name").Str + e.Get("custom.name").Str
			}
			args[i] += e.Get("function.arguments").Str + e.Get("custom.input").Str
			return true
		})
	}
	for i := range names {
		out = append(out, names[i]+" "+args[i])
	}
	return out
}
