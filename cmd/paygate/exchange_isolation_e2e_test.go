package main

import (
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// chatInSession sends a chat request as the test user in the conversation
// named session and returns the answer's body.
func chatInSession(t *testing.T, url, session, body string) string {
	t.Helper()
	return string(userSessionChat(t, url, testOpenID, session, body))
}

// userSessionChat sends a chat request as user in the conversation named
// session (none: the header is not sent) and returns the answer's body,
// failing the test on anything but a 200.
func userSessionChat(t *testing.T, url, user, session, body string) []byte {
	t.Helper()
	status, b, err := postSessionChat(url, user, session, body)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK {
		t.Fatalf("chat: %d %s", status, b)
	}
	return b
}

// postSessionChat is userSessionChat for a caller that judges the answer
// itself (or runs off the test's goroutine): its status and body.
func postSessionChat(url, user, session, body string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e2eClientKey)
	req.Header.Set("X-WeChat-OpenID", user)
	if session != "" {
		req.Header.Set("X-Paygate-Session", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// userMessage is a non-stream chat body of one user message, content as
// it is (no JSON escapes needed).
func userMessage(content string) string {
	return `{"model":"gpt-4o","messages":[{"role":"user","content":"` + content + `"}]}`
}

// TestExchangeStaysInItsConversation: a kept payment exchange goes back only
// into the assistant message that carries the very calls the bot got with
// it, in the conversation it was made in. Kimi K2 numbers tool-call ids
// "functions.<name>:<n>", so another conversation of the user, or a later
// turn of the same one, reuses an id for another call: that call must not
// get the payment exchange (the provider would see an order it never made
// there, with another conversation's arguments).
func TestExchangeStaysInItsConversation(t *testing.T) {
	const id = "functions.lookup:1"
	order := [3]string{"functions.create_order:0", "create_order", `{"sku":"premium-monthly"}`}
	lookup := func(conv string) [3]string { return [3]string{id, "lookup", `{"conv":"` + conv + `"}`} }
	assistant := func(conv string) string {
		return `{"role":"assistant","content":null,"tool_calls":[{"id":"` + id + `","type":"function","function":{"name":"lookup","arguments":"{\"conv\":\"` + conv + `\"}"}}]}`
	}
	result := func(conv string) string {
		return `{"role":"tool","tool_call_id":"` + id + `","content":"result ` + conv + `"}`
	}
	user := func(conv string) string { return `{"role":"user","content":"conv ` + conv + `"}` }

	for _, stream := range []bool{false, true} {
		mode := `"stream":false,`
		if stream {
			mode = `"stream":true,`
		}
		up := newScriptedProvider(t, func(body string) scriptRound {
			last := gjson.Get(body, "messages.@reverse.0")
			switch last.Get("content").Str {
			case "conv A":
				return callRound("a1", order, lookup("A"))
			case "conv B":
				return callRound("b1", lookup("B"))
			case "result A":
				return callRound("a2", lookup("A2"))
			}
			r := textRound("x", "done")
			r.whole = `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}]}`
			return r
		})
		url, _ := paymentApp(t, up.URL, "")
		tools := `"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}]`
		chat := func(session string, msgs ...string) []string {
			t.Helper()
			chatInSession(t, url, session, `{"model":"gpt-4o",`+mode+tools+`,"messages":[`+strings.Join(msgs, ",")+`]}`)
			reqs := up.requests()
			var got []string // without paygate's state message
			for _, m := range gjson.Get(reqs[len(reqs)-1], "messages").Array() {
				if m.Get("role").Str != "system" {
					got = append(got, messageSignature(m)+m.Get("tool_calls.#.function.arguments").Raw)
				}
			}
			return got
		}
		restored := []string{"user", `assistant:functions.create_order:0,functions.lookup:1["{\"sku\":\"premium-monthly\"}","{\"conv\":\"A\"}"]`,
			"tool:functions.create_order:0", "tool:functions.lookup:1"}
		for _, tc := range []struct {
			name    string
			session string
			msgs    []string
			want    []string
		}{
			// Conversation A ends with create_order and the bot's lookup;
			// conversation B's lookup gets the same id.
			{"conversation A", "conv-A", []string{user("A")}, []string{"user"}},
			{"conversation B", "conv-B", []string{user("B")}, []string{"user"}},
			{"B's follow-up gets nothing of A", "conv-B", []string{user("B"), assistant("B"), result("B")},
				[]string{"user", `assistant:functions.lookup:1["{\"conv\":\"B\"}"]`, "tool:functions.lookup:1"}},
			{"A's follow-up in B's session gets nothing", "conv-B", []string{user("A"), assistant("A"), result("A")},
				[]string{"user", `assistant:functions.lookup:1["{\"conv\":\"A\"}"]`, "tool:functions.lookup:1"}},
			// A's own follow-up gets its exchange back; the provider then
			// calls lookup again under the same id.
			{"A's follow-up gets its exchange", "conv-A", []string{user("A"), assistant("A"), result("A")}, restored},
			{"a later turn of A reusing the id gets nothing", "conv-A", []string{user("A"), assistant("A"), result("A"), assistant("A2"), result("A2")},
				append(append([]string(nil), restored...), `assistant:functions.lookup:1["{\"conv\":\"A2\"}"]`, "tool:functions.lookup:1")},
		} {
			name := tc.name + "/non-stream"
			if stream {
				name = tc.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				if got := chat(tc.session, tc.msgs...); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("the provider got the conversation\n  %v\nwant\n  %v", got, tc.want)
				}
			})
		}
	}
}

// TestExchangeKeepsTheModelsCallOrder: the assistant message of a kept
// exchange lists the round's calls as the model made them, the bot's own
// and the payment calls interleaved. It listed the payment calls first, so
// the provider got back an assistant message it never wrote, and lost its
// prompt cache from there (SPEC 3: the restored prefix equals what the
// provider saw). The payment call goes back under paygate's id, as every
// payment call of a round mixed with the bot's does.
func TestExchangeKeepsTheModelsCallOrder(t *testing.T) {
	weather := [3]string{"call_wx", "get_weather", `{"city":"Paris"}`}
	order := [3]string{"call_order", "create_order", `{"sku":"premium-monthly"}`}
	stock := [3]string{"call_stock", "get_stock", `{"sku":"premium-monthly"}`}
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			up := newScriptedProvider(t, func(body string) scriptRound {
				if gjson.Get(body, "messages.@reverse.0.role").Str == "user" {
					return callRound("r1", weather, order, stock)
				}
				r := textRound("r2", "done")
				r.whole = `{"id":"r2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}]}`
				return r
			})
			url, _ := paymentApp(t, up.URL, "")
			mode := `"stream":false,`
			if stream {
				mode = `"stream":true,`
			}
			tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}},{"type":"function","function":{"name":"get_stock","parameters":{"type":"object"}}}]`
			user := `{"role":"user","content":"buy it if it is sunny"}`
			chatInSession(t, url, "s1", `{"model":"gpt-4o",`+mode+tools+`,"messages":[`+user+`]}`)
			// The bot got its two calls; it sends their results back.
			assistant := `{"role":"assistant","content":null,"tool_calls":[` +
				`{"id":"call_wx","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},` +
				`{"id":"call_stock","type":"function","function":{"name":"get_stock","arguments":"{\"sku\":\"premium-monthly\"}"}}]}`
			results := `{"role":"tool","tool_call_id":"call_wx","content":"sunny"},{"role":"tool","tool_call_id":"call_stock","content":"3 left"}`
			chatInSession(t, url, "s1", `{"model":"gpt-4o",`+mode+tools+`,"messages":[`+user+`,`+assistant+`,`+results+`]}`)
			reqs := up.requests()
			var got string
			for _, m := range gjson.Get(reqs[len(reqs)-1], "messages").Array() {
				if m.Get("role").Str == "assistant" {
					got = messageSignature(m)
				}
			}
			if want := "assistant:call_wx,call_pg_1_0,call_stock"; got != want {
				t.Errorf("the provider got back %s; want %s, the order it made them in", got, want)
			}
		})
	}
}
