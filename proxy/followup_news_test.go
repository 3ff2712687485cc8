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

// TestNewsToldAgainInTheFollowUp: news since the user's last turn (a
// payment confirmed, a refund's outcome, a manager's rejection) is claimed
// by the turn whose answer tells it, and only that turn's payment state
// lists an order settled more than settled_after ago. When that answer is
// the bot's own tool call, the model writes the text the user reads in the
// bot's follow-up with the tool's result: it read no line of those orders
// there, and the news reached paygate.actions but never the chat. The
// follow-up that carries the results of that answer's calls gets the same
// lines, news and all, and so does each later tool round of it, as long as
// no message of the user's came since: not a parallel conversation of the
// user's (the same call id after another message), not a follow-up of other
// calls, not a new message. paygate.actions does not carry the news again.
// So too when the follow-ups spell their assistant messages' tool_calls
// key with an escape ("tool\u005fcalls"), which the provider reads as
// tool_calls: the turn asked a byte search for `"tool_calls"` whether to
// look for the news at all.
func TestNewsToldAgainInTheFollowUp(t *testing.T) {
	const (
		question = `{"role":"user","content":"what's the weather, and where are my orders?"}`
		callW1   = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_w1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}`
		resultW1 = `{"role":"tool","tool_call_id":"call_w1","content":"sunny"}`
		callW2   = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_w2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Lyon\"}"}}]}`
		resultW2 = `{"role":"tool","tool_call_id":"call_w2","content":"rain"}`
	)
	news := []string{
		"order NEWS-PAID: Premium tier, 1 month ×1, 49.99 CNY — paid",
		"order NEWS-REFUND:", "the user's refund of 49.99 CNY was closed by WeChat Pay",
		"order NEWS-REJECTED:", "a manager rejected it",
	}
	// The answer's calls: the bot's own call alone, or beside a payment
	// call paygate ran (a mixed round, whose exchange the follow-up gets
	// back too).
	firstCalls := map[string]string{
		"own-call": `[{"index":0,"id":"call_w1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]`,
		"mixed": `[{"index":0,"id":"call_q1","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"NEWS-PAID\"}"}},` +
			`{"index":1,"id":"call_w1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]`,
	}
	for _, driver := range testdrivers.Names(t) {
		for _, round := range []string{"own-call", "mixed"} {
			for _, v := range []struct {
				stream bool
				key    string // of the follow-ups' calls
			}{{false, "tool_calls"}, {true, "tool_calls"}, {false, `tool\u005fcalls`}, {true, `tool\u005fcalls`}} {
				stream := v.stream
				name := driver + "/" + round + "/non-stream"
				if stream {
					name = driver + "/" + round + "/stream"
				}
				if v.key != "tool_calls" {
					name += "/escaped key"
				}
				callW1, callW2 := strings.Replace(callW1, "tool_calls", v.key, 1), strings.Replace(callW2, "tool_calls", v.key, 1)
				t.Run(name, func(t *testing.T) {
					ctx := context.Background()
					clock := storetest.NewClock()
					st := testdrivers.Open(t, driver, clock.Now)
					const user = "o-followup-news"
					paid := storetest.NewOrder("NEWS-PAID", "shop-bot", user, clock.Now())
					paid.Status, paid.PaidAt = store.StatusPaid, clock.Now()
					refund := storetest.NewOrder("NEWS-REFUND", "shop-bot", user, clock.Now().Add(-40*24*time.Hour))
					refund.Status, refund.PaidAt = store.StatusPaid, refund.CreatedAt
					refund.RefundOutcomes = []store.RefundOutcome{{OutRefundNo: "RF1", RefundID: "rf_1", AmountFen: 4999, Status: store.RefundClosed, At: clock.Now()}}
					rejected := storetest.NewOrder("NEWS-REJECTED", "shop-bot", user, clock.Now())
					rejected.Status = store.StatusRejected
					for _, o := range []*store.Order{paid, refund, rejected} {
						if err := st.CreateOrder(ctx, o); err != nil {
							t.Fatal(err)
						}
					}
					// Two days on: every order is settled past settled_after,
					// and each has news the user has not heard.
					clock.Advance(48 * time.Hour)
					fp := newFakeProvider(t, roundByRound(
						callsRound(stream, firstCalls[round]),
						textRound(stream, "Other calls."),
						textRound(stream, "Other conversation."),
						textRound(stream, "Hello."),
						callsRound(stream, `[{"index":0,"id":"call_w2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Lyon\"}"}}]`),
						textRound(stream, "Rain in Lyon."),
						textRound(stream, "You're welcome."),
					))
					url := paymentProxy(t, fp.URL, nil, queryTools{}, st, payableReconciler{})
					turn := func(messages ...string) (told []string, state string) {
						t.Helper()
						resp := post(t, url, "/v1/chat/completions",
							`{"model":"gpt-test","stream":`+map[bool]string{false: "false", true: "true"}[stream]+`,`+weatherTool+
								`"messages":[`+strings.Join(messages, ",")+`]}`,
							map[string]string{"X-WeChat-OpenID": user})
						body := readAll(t, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							t.Fatalf("status %d: %s", resp.StatusCode, body)
						}
						if stream {
							for _, line := range strings.Split(body, "\n") {
								if p := strings.TrimPrefix(line, "data: "); p != line && gjson.Get(p, "paygate").Exists() {
									body = p
								}
							}
						}
						gjson.Get(body, "paygate.actions").ForEach(func(_, a gjson.Result) bool {
							told = append(told, a.Get("type").Str+" "+a.Get("order.order_no").Str)
							return true
						})
						reqs := fp.requests()
						for _, m := range gjson.GetBytes(reqs[len(reqs)-1].Body, "messages").Array() {
							if m.Get("role").Str == "system" {
								state = m.Get("content").Str
							}
						}
						return told, state
					}
					missing := func(state string) (out []string) {
						for _, n := range news {
							if !strings.Contains(state, n) {
								out = append(out, n)
							}
						}
						return out
					}
					told, state := turn(question)
					if len(told) != 3 {
						t.Errorf("the answer with the bot's own call told %q; want payment_confirmed, refund_closed and order_rejected", told)
					}
					if m := missing(state); len(m) > 0 {
						t.Errorf("the first turn's payment state %q lacks %q", state, m)
					}
					for _, tc := range []struct {
						what     string
						messages []string
					}{
						{"a follow-up of other calls", []string{question,
							`{"role":"assistant","content":null,"tool_calls":[{"id":"call_zz","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}`,
							`{"role":"tool","tool_call_id":"call_zz","content":"sunny"}`}},
						{"a parallel conversation with the same call after another message", []string{
							`{"role":"user","content":"weather please"}`, callW1, resultW1}},
						{"a new message", []string{`{"role":"user","content":"hello"}`}},
					} {
						told, state = turn(tc.messages...)
						if len(told) != 0 || strings.Contains(state, "NEWS-") {
							t.Errorf("%s: told %q, payment state %q; want no news and no line of the settled orders", tc.what, told, state)
						}
					}
					told, state = turn(question, callW1, resultW1)
					if m := missing(state); len(m) > 0 {
						t.Errorf("the follow-up with the results of the calls of the answer that told the news: payment state %q lacks %q", state, m)
					}
					if len(told) != 0 {
						t.Errorf("the follow-up told %q again in paygate.actions; want nothing", told)
					}
					if reqs := fp.requests(); round == "mixed" && !strings.Contains(string(reqs[len(reqs)-1].Body), `"tool_call_id":"`+keptCallID+`"`) {
						t.Errorf("the mixed round's follow-up reached the provider without its payment exchange: %s", reqs[len(reqs)-1].Body)
					}
					// The model answered the follow-up with another call of
					// the bot's: the follow-up with its result is where it
					// writes the text the user reads, still with no message
					// of the user's since the news.
					told, state = turn(question, callW1, resultW1, callW2, resultW2)
					if m := missing(state); len(m) > 0 {
						t.Errorf("the second follow-up round, whose answer the user reads: payment state %q lacks %q", state, m)
					}
					if len(told) != 0 {
						t.Errorf("the second follow-up round told %q again in paygate.actions; want nothing", told)
					}
					told, state = turn(question, callW1, resultW1, callW2, resultW2,
						`{"role":"assistant","content":"Rain in Lyon."}`, `{"role":"user","content":"thanks"}`)
					if len(told) != 0 || strings.Contains(state, "NEWS-") {
						t.Errorf("the user's next message: told %q, payment state %q; want no news and no line of the settled orders", told, state)
					}
				})
			}
		}
	}
}
