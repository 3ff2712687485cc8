package main

import (
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// callRound is a round of tool calls, each {id, name, arguments}, in both
// stream and non-stream form.
func callRound(id string, calls ...[3]string) scriptRound {
	head := `{"id":"` + id + `","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	r := scriptRound{chunks: []string{head + `{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}`}}
	var whole []string
	for i, c := range calls {
		args := strings.ReplaceAll(c[2], `"`, `\"`)
		call := `"id":"` + c[0] + `","type":"function","function":{"name":"` + c[1] + `","arguments":"` + args + `"}`
		r.chunks = append(r.chunks, head+`{"index":0,"delta":{"tool_calls":[{"index":`+strconv.Itoa(i)+`,`+call+`}]},"finish_reason":null}]}`)
		whole = append(whole, `{`+call+`}`)
	}
	r.chunks = append(r.chunks, head+`{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`)
	r.whole = `{"id":"` + id + `","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
		strings.Join(whole, ",") + `]},"finish_reason":"tool_calls"}]}`
	return r
}

// messageSignature names a message by its role and the tool-call ids it carries or
// answers: "assistant:pay_1,client_1", "tool:pay_1", "user".
func messageSignature(m gjson.Result) string {
	role := m.Get("role").Str
	switch role {
	case "assistant":
		var ids []string
		for _, c := range m.Get("tool_calls").Array() {
			ids = append(ids, c.Get("id").Str)
		}
		return role + ":" + strings.Join(ids, ",")
	case "tool":
		return role + ":" + m.Get("tool_call_id").Str
	}
	return role
}

// TestExchangeRestoredAcrossRounds: a turn that ends with the bot's own tool
// call, after payment rounds or in a round mixed with payment calls, gives
// the provider back on the bot's follow-up every payment call and result
// paygate added, in order and exactly once, and executes none of them again.
func TestExchangeRestoredAcrossRounds(t *testing.T) {
	createOrder := [3]string{"pay_1", "create_order", `{"sku":"premium-monthly"}`}
	queryOrder := [3]string{"pay_2", "query_order", `{"order_no":"PG-nope"}`}
	receipt := [3]string{"client_1", "send_receipt", `{}`}
	tests := []struct {
		name   string
		rounds []scriptRound // the first turn's rounds
		want   []string      // the follow-up's conversation as the provider gets it
	}{
		{
			name:   "payment round then a round of the bot's call only",
			rounds: []scriptRound{callRound("c1", createOrder), callRound("c2", receipt)},
			want:   []string{"user", "assistant:call_pg_1_0", "tool:call_pg_1_0", "assistant:client_1", "tool:client_1"},
		},
		{
			name:   "payment round then a mixed round",
			rounds: []scriptRound{callRound("c1", createOrder), callRound("c2", queryOrder, receipt)},
			want:   []string{"user", "assistant:call_pg_1_0", "tool:call_pg_1_0", "assistant:call_pg_2_0,client_1", "tool:call_pg_2_0", "tool:client_1"},
		},
		{
			name:   "mixed round first",
			rounds: []scriptRound{callRound("c1", createOrder, receipt)},
			want:   []string{"user", "assistant:call_pg_1_0,client_1", "tool:call_pg_1_0", "tool:client_1"},
		},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			name := tc.name + "/non-stream"
			if stream {
				name = tc.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				up := newScriptedProvider(t, func(body string) scriptRound {
					last := gjson.Get(body, "messages.@reverse.0")
					if last.Get("tool_call_id").Str == "client_1" {
						r := textRound("c9", "Receipt sent.")
						r.whole = `{"id":"c9","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Receipt sent."},"finish_reason":"stop"}]}`
						return r
					}
					// The first turn: one round per payment round before.
					n := 0
					for _, m := range gjson.Get(body, "messages").Array() {
						if m.Get("role").Str == "assistant" {
							n++
						}
					}
					return tc.rounds[n]
				})
				url, a := paymentApp(t, up.URL, "")
				tools := `"tools":[{"type":"function","function":{"name":"send_receipt","parameters":{"type":"object"}}}]`
				mode := `"stream":false,`
				if stream {
					mode = `"stream":true,`
				}
				user := `{"role":"user","content":"buy premium and send me a receipt"}`

				got := chatBody(t, url, `{"model":"gpt-4o",`+mode+tools+`,"messages":[`+user+`]}`)
				if !strings.Contains(got, `"client_1"`) || !strings.Contains(got, `"finish_reason":"tool_calls"`) || strings.Contains(got, `"pay_1"`) || strings.Contains(got, `"pay_2"`) {
					t.Fatalf("the bot must get its own call and only that: %s", got)
				}
				if n := len(up.requests()); n != len(tc.rounds) {
					t.Fatalf("first turn took %d upstream rounds; want %d", n, len(tc.rounds))
				}

				follow := `{"model":"gpt-4o",` + mode + tools + `,"messages":[` + user + `,` +
					`{"role":"assistant","content":null,"tool_calls":[{"id":"client_1","type":"function","function":{"name":"send_receipt","arguments":"{}"}}]},` +
					`{"role":"tool","tool_call_id":"client_1","content":"sent"}]}`
				if got := chatBody(t, url, follow); !strings.Contains(got, "Receipt sent.") {
					t.Errorf("follow-up answer: %s", got)
				}
				reqs := up.requests()
				if len(reqs) != len(tc.rounds)+1 {
					t.Fatalf("the follow-up took %d upstream rounds; want 1", len(reqs)-len(tc.rounds))
				}
				var msgs []string // without paygate's state message
				for _, m := range gjson.Get(reqs[len(reqs)-1], "messages").Array() {
					if m.Get("role").Str != "system" {
						msgs = append(msgs, messageSignature(m))
					}
				}
				if !reflect.DeepEqual(msgs, tc.want) {
					t.Errorf("the provider got the conversation\n  %v\nwant\n  %v", msgs, tc.want)
				}
				prepays := 0
				for _, rl := range a.sim.Requests() {
					if strings.HasPrefix(rl.Op, "prepay") {
						prepays++
					}
				}
				if a.sim.OrderCount() != 1 || prepays != 1 {
					t.Errorf("%d orders, %d prepay calls; want the one create_order executed once", a.sim.OrderCount(), prepays)
				}
			})
		}
	}
}

// chatBody sends a chat request as the test user and returns the answer's body,
// a stream read to its end; anything but 200 fails the test.
func chatBody(t *testing.T, url, body string) string {
	t.Helper()
	resp := postAs(t, url, e2eClientKey, testOpenID, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat: %d %s", resp.StatusCode, b)
	}
	return string(b)
}
