package proxy

import (
	"strings"
	"testing"
)

// TestMoneyCallsHeldWhenTheFollowUpsExchangeIsUnreadable: the bot's
// follow-up (its tool's result after a mixed round that made an order)
// continues the user's message, and what that message already did is read
// from the kept exchange. When that read fails (a store blip, or the
// reads' one deadline spent on the earlier rounds of a long conversation,
// which are read first), the request went upstream as a fresh turn: the
// model's next create_order ran, a second payment for one message of the
// user whose budget was one. It is held back until the user's next
// message; an unreadable exchange before that message holds nothing.
func TestMoneyCallsHeldWhenTheFollowUpsExchangeIsUnreadable(t *testing.T) {
	const (
		mixed  = `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},{"index":1,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]`
		yearly = `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-yearly\"}"}}]`
	)
	for _, stream := range []bool{false, true} {
		name := "non-stream"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(callsRound(stream, mixed), callsRound(stream, yearly), textRound(stream, "Done."),
				callsRound(stream, yearly), textRound(stream, "Done.")))
			tools := &recordingTools{}
			st := &failingReads{StateStore: &memState{}}
			url := paymentProxy(t, fp.URL, nil, tools, st, nil)
			hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
			orders := func() int {
				n := 0
				for _, c := range tools.executed() {
					if strings.HasPrefix(c, "create_order ") {
						n++
					}
				}
				return n
			}
			msgs := []string{`{"role":"user","content":"buy premium and tell me the weather"}`}
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
			if got := botCallIDs(stream, body); len(got) != 1 || got[0] != "call_1" {
				t.Fatalf("the bot got calls %q; want its call_1 (%s)", got, body)
			}
			if n := orders(); n != 1 {
				t.Fatalf("%d create_order calls run in the mixed round; want 1", n)
			}

			st.fail = true
			msgs = append(msgs, `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`,
				`{"role":"tool","tool_call_id":"call_1","content":"sunny"}`)
			readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
			if n := orders(); n != 1 {
				t.Fatalf("%d create_order calls run after the bot's follow-up whose kept exchange was unreadable; want still 1", n)
			}
			reqs := fp.requests()
			if last := string(reqs[len(reqs)-1].Body); !strings.Contains(last, `not_executed`) {
				t.Errorf("the held call's result must say it was not executed: %s", last)
			}

			// The user's next message has its budget, the earlier exchange
			// still unreadable.
			msgs = append(msgs, `{"role":"assistant","content":"Done."}`, `{"role":"user","content":"and a year too"}`)
			readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
			if n := orders(); n != 2 {
				t.Errorf("%d create_order calls run after the user's next message; want 2", n)
			}
		})
	}
}
