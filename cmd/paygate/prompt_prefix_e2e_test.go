package main

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestConversationPrefixAcrossTurns: a bot's ten-turn conversation (a
// system prompt, a tool of its own, a prompt_cache_key and its user) with
// a purchase in turn 4, paid before turn 5, and the bot's own tool in
// turns 3 and 6. Each request the provider gets carries the request before
// it byte for byte up to that request's new tail: the payment state
// message, the user's last message after it (SPEC 3: the state goes just
// before it) and what the turn added after that. Nothing paygate adds varies
// from one request to the next (the payment tools, the hashed identifiers,
// a kept payment exchange), so the provider's prompt cache keeps hitting.
// In the purchase beside the bot's get_weather the model named its calls
// call_0 and call_1, and the bot's call of turn 6 is call_1 again.
func TestConversationPrefixAcrossTurns(t *testing.T) {
	for _, mixed := range []bool{false, true} {
		t.Run(map[bool]string{false: "purchase alone", true: "purchase beside the bot's call"}[mixed], func(t *testing.T) {
			up := newScriptedProvider(t, func(body string) scriptRound {
				msgs := gjson.Get(body, "messages").Array()
				n := strconv.Itoa(len(msgs))
				last := msgs[len(msgs)-1]
				weather := [3]string{"call_0", "get_weather", `{"city":"Paris"}`}
				switch c := last.Get("content").Str; {
				case last.Get("role").Str == "tool":
					return wholeText("r"+n, "Done with the tools, step "+n+".")
				case strings.Contains(c, "buy") && mixed:
					return callRound("r"+n, weather, [3]string{"call_1", "create_order", `{"sku":"premium-monthly"}`})
				case strings.Contains(c, "buy"):
					return callRound("r"+n, [3]string{"call_0", "create_order", `{"sku":"premium-monthly"}`})
				case strings.Contains(c, "weather again"):
					weather[0] = "call_1"
					return callRound("r"+n, weather)
				case strings.Contains(c, "weather"):
					return callRound("r"+n, weather)
				}
				return wholeText("r"+n, "Answer number "+n+".")
			})
			url, a := paymentApp(t, up.URL, "")
			tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`
			msgs := []string{`{"role":"system","content":"You are the shop's assistant. ` + strings.Repeat("Be kind and brief. ", 40) + `"}`}
			for turn, u := range []string{"hi", "what do you sell?", "what is the weather?", "ok buy premium monthly", "did it go through?",
				"weather again?", "thanks", "anything else?", "tell me more", "bye"} {
				msgs = append(msgs, `{"role":"user","content":"`+u+`"}`)
				for {
					ans := gjson.Parse(chatInSession(t, url, "chat-1", `{"model":"gpt-4o","prompt_cache_key":"conv-42","user":"`+testOpenID+`",`+
						tools+`,"messages":[`+strings.Join(msgs, ",")+`]}`))
					m := ans.Get("choices.0.message")
					if calls := m.Get("tool_calls").Array(); len(calls) > 0 {
						msgs = append(msgs, m.Raw)
						for _, c := range calls {
							msgs = append(msgs, `{"role":"tool","tool_call_id":"`+c.Get("id").Str+`","content":"sunny"}`)
						}
						continue
					}
					msgs = append(msgs, `{"role":"assistant","content":`+m.Get("content").Raw+`}`)
					break
				}
				if turn == 3 {
					if _, err := a.sim.Pay(context.Background(), lastOrderNo(t, a.sim)); err != nil {
						t.Fatal(err)
					}
				}
			}
			reqs := up.requests()
			if len(reqs) != 13 {
				t.Fatalf("%d upstream requests; want 13 (ten turns, the rounds of the bot's tools and of the purchase)", len(reqs))
			}
			states := 0
			for i := 1; i < len(reqs); i++ {
				prev, cur := reqs[i-1], reqs[i]
				// The new tail: the user's last message, what the turn added
				// after it, and the payment state just before it.
				tail := 0
				gjson.Get(prev, "messages").ForEach(func(_, m gjson.Result) bool {
					if m.Get("role").Str == "user" {
						tail = m.Index
					}
					return true
				})
				if at := strings.Index(prev, `{"role":"system","content":"Payment state of this user`); at >= 0 && at < tail {
					tail = at
					states++
				}
				common := 0
				for common < min(len(prev), len(cur)) && prev[common] == cur[common] {
					common++
				}
				t.Logf("request %2d: %5d bytes, %5d in common with the one before (%.1f%%)", i+1, len(cur), common, 100*float64(common)/float64(len(cur)))
				if common < tail {
					t.Errorf("request %d departs from request %d at byte %d, before its new tail at %d:\n  was …%s\n  now …%s",
						i+1, i, common, tail, prev[max(0, common-60):min(len(prev), common+40)], cur[max(0, common-60):min(len(cur), common+40)])
				}
			}
			if states == 0 {
				t.Error("no request carried a payment state: the conversation tested no payment")
			}
		})
	}
}

// wholeText is a text round with its non-stream answer.
func wholeText(id, text string) scriptRound {
	r := textRound(id, text)
	r.whole = `{"id":"` + id + `","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` + text + `"},"finish_reason":"stop"}]}`
	return r
}
