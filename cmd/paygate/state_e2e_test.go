package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/wxsim"
)

// chatJSON sends a non-stream chat request as the test user and returns the
// decoded answer.
func chatJSON(t *testing.T, url, body string) gjson.Result {
	t.Helper()
	return postChat(t, url, e2eClientKey, testOpenID, body)
}

// postChat posts a chat-completions body with a client key and an OpenID and
// returns the decoded answer; anything but 200 fails the test.
func postChat(t *testing.T, url, key, user, body string) gjson.Result {
	t.Helper()
	resp := postAs(t, url, key, user, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat: %d %s", resp.StatusCode, b)
	}
	return gjson.ParseBytes(b)
}

// postAs posts a chat-completions body with a client key and an OpenID and
// returns the response, its body unread.
func postAs(t *testing.T, url, key, user, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-WeChat-OpenID", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// stateScript answers a purchase request with a create_order call, a tool
// result with words, and any other message with plain text.
func stateScript(body string) scriptRound {
	last := gjson.Get(body, "messages.@reverse.0")
	if last.Get("role").Str == "user" && strings.Contains(last.Get("content").Str, "premium") {
		return purchaseScript(body)
	}
	if last.Get("role").Str == "tool" {
		return purchaseScript(body)
	}
	return scriptRound{whole: `{"id":"chatcmpl-T","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Noted."},"finish_reason":"stop"}]}`}
}

func lastOrderNo(t *testing.T, sim *wxsim.Server) string {
	t.Helper()
	no := ""
	for _, rl := range sim.Requests() {
		if rl.Op == "prepay-jsapi" {
			no = rl.OutTradeNo
		}
	}
	if no == "" {
		t.Fatal("no prepay at the simulator")
	}
	return no
}

// checkPrefix asserts that the upstream request's messages before the last
// user message are the client's own, byte for byte, and that exactly one
// paygate system message sits right before the last user message.
func checkPrefix(t *testing.T, client, upstream string) gjson.Result {
	t.Helper()
	cm := gjson.Get(client, "messages").Array()
	um := gjson.Get(upstream, "messages").Array()
	if len(um) != len(cm)+1 {
		t.Fatalf("upstream has %d messages; want the client's %d plus one state message", len(um), len(cm))
	}
	lastUser := len(cm) - 1
	for i := 0; i < lastUser; i++ {
		if um[i].Raw != cm[i].Raw {
			t.Errorf("message %d changed:\nclient   %s\nupstream %s", i, cm[i].Raw, um[i].Raw)
		}
	}
	state := um[lastUser]
	if state.Get("role").Str != "system" {
		t.Fatalf("message before the last user message is %s; want the state message", state.Raw)
	}
	if um[lastUser+1].Raw != cm[lastUser].Raw {
		t.Errorf("last user message changed")
	}
	n := 0
	for _, m := range um {
		if m.Get("role").Str == "system" && strings.Contains(m.Get("content").Str, "Payment state") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d state messages; want exactly one", n)
	}
	return state
}

func TestPaymentConfirmedInNextTurn(t *testing.T) {
	up := newScriptedProvider(t, stateScript)
	url, a := paymentApp(t, up.URL, "")

	turn1 := `{"model":"gpt-4o","messages":[{"role":"system","content":"You sell premium."},{"role":"user","content":"I want premium"}]}`
	chatJSON(t, url, turn1)
	orderNo := lastOrderNo(t, a.sim)
	before := len(up.requests())

	d, err := a.sim.Pay(context.Background(), orderNo)
	if err != nil || !d.Acked {
		t.Fatalf("notification not acknowledged: %+v %v", d, err)
	}
	if n := len(up.requests()); n != before {
		t.Errorf("the notification caused %d upstream calls; want none", n-before)
	}

	turn2 := `{"model":"gpt-4o","messages":[{"role":"system","content":"You sell premium."},{"role":"user","content":"I want premium"},{"role":"assistant","content":"Your order is ready: tap Pay to finish."},{"role":"user","content":"Did it go through?"}]}`
	ans := chatJSON(t, url, turn2)
	reqs := up.requests()
	state := checkPrefix(t, turn2, reqs[len(reqs)-1])
	if s := state.Get("content").Str; !strings.Contains(s, orderNo) || !strings.Contains(s, "— paid") {
		t.Errorf("state message %q; want order %s named as paid", s, orderNo)
	}
	confirmed := ans.Get(`paygate.actions.#(type=="payment_confirmed")`)
	if confirmed.Get("order.order_no").Str != orderNo || confirmed.Get("order.status").Str != "paid" {
		t.Errorf("paygate %s; want one payment_confirmed for %s", ans.Get("paygate").Raw, orderNo)
	}

	turn3 := `{"model":"gpt-4o","messages":[{"role":"system","content":"You sell premium."},{"role":"user","content":"I want premium"},{"role":"assistant","content":"Your order is ready: tap Pay to finish."},{"role":"user","content":"Did it go through?"},{"role":"assistant","content":"Noted."},{"role":"user","content":"Thanks"}]}`
	ans = chatJSON(t, url, turn3)
	reqs = up.requests()
	checkPrefix(t, turn3, reqs[len(reqs)-1])
	if ans.Get(`paygate.actions.#(type=="payment_confirmed")`).Exists() {
		t.Errorf("payment_confirmed announced twice: %s", ans.Get("paygate").Raw)
	}
}

func TestAlreadyPaid(t *testing.T) {
	up := newScriptedProvider(t, stateScript)
	url, a := paymentApp(t, up.URL, "")
	chatJSON(t, url, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"}]}`)
	orderNo := lastOrderNo(t, a.sim)
	if _, err := a.sim.Pay(context.Background(), orderNo); err != nil {
		t.Fatal(err)
	}
	chatJSON(t, url, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium again"}]}`)
	reqs := up.requests()
	if got := reqs[len(reqs)-1]; !strings.Contains(got, `\"status\":\"already_paid\"`) || !strings.Contains(got, orderNo) {
		t.Errorf("tool result for the repeat purchase: %s; want already_paid naming %s", got, orderNo)
	}
	if a.sim.OrderCount() != 1 {
		t.Errorf("simulator has %d orders; want 1", a.sim.OrderCount())
	}
}

// TestDeferredConfirmation: a turn's active query finds the order paid
// whose notification was lost. Its deadline is 3s, not 300ms: the query
// (signed and verified by the official client under -race) had to beat
// 300ms, and on a loaded CI machine the turn rightly went on without it.
// How the deadline bounds a turn: TestSlowQueryDoesNotHoldTheTurn.
func TestDeferredConfirmation(t *testing.T) {
	up := newScriptedProvider(t, stateScript)
	url, a := paymentApp(t, up.URL, "  reconcile: {query_after: 1ms, query_deadline: 3s}\n")
	chatJSON(t, url, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"}]}`)
	orderNo := lastOrderNo(t, a.sim)

	// The user pays but the notification never arrives.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if d, _ := a.sim.Pay(gone, orderNo); d != nil && d.Acked {
		t.Fatal("the notification was delivered; the test needs it lost")
	}
	chatJSON(t, url, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"},{"role":"assistant","content":"ok"},{"role":"user","content":"Paid?"}]}`)
	reqs := up.requests()
	if s := gjson.Get(reqs[len(reqs)-1], `messages.#(role=="system").content`).Str; !strings.Contains(s, orderNo+": ") || !strings.Contains(s, "— paid") {
		t.Errorf("state %q; want %s found paid by the active query", s, orderNo)
	}
}

func TestSlowQueryDoesNotHoldTheTurn(t *testing.T) {
	up := newScriptedProvider(t, stateScript)
	url, a := paymentApp(t, up.URL, "  reconcile: {query_after: 1ms, query_deadline: 100ms}\n")
	chatJSON(t, url, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"}]}`)
	orderNo := lastOrderNo(t, a.sim)
	// The query is processed but its answer never comes: the client would
	// wait for its own attempt timeout (seconds) if the turn waited for it.
	a.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultTimeout, Times: 5})
	chatJSON(t, url, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"},{"role":"assistant","content":"ok"},{"role":"user","content":"Paid?"}]}`)
	reqs := up.requests()
	if s := gjson.Get(reqs[len(reqs)-1], `messages.#(role=="system").content`).Str; !strings.Contains(s, orderNo) || !strings.Contains(s, "awaiting payment") {
		t.Errorf("state %q; want the order as known (awaiting payment): the turn went on past the deadline", s)
	}
}

// TestMixedRoundsParallelConversations: two conversations of one user each
// get a round with a payment call and a client call; each bot follow-up gets
// its own payment exchange back in place, never the other's. The kept
// payment calls go back under ids of paygate's own, alike in both
// conversations: each buys its own item.
func TestMixedRoundsParallelConversations(t *testing.T) {
	sku := map[string]string{"A": "premium-monthly", "B": "premium-yearly"}
	mixed := func(conv string) scriptRound {
		return scriptRound{whole: `{"id":"chatcmpl-` + conv + `","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
			`{"id":"pay_` + conv + `","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"` + sku[conv] + `\"}"}},` +
			`{"id":"client_` + conv + `","type":"function","function":{"name":"lookup","arguments":"{\"conv\":\"` + conv + `\"}"}}]},"finish_reason":"tool_calls"}]}`}
	}
	up := newScriptedProvider(t, func(body string) scriptRound {
		last := gjson.Get(body, "messages.@reverse.0")
		if last.Get("role").Str == "user" {
			return mixed(strings.TrimPrefix(last.Get("content").Str, "conv "))
		}
		return scriptRound{whole: `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}]}`}
	})
	url, _ := paymentApp(t, up.URL, "")
	tools := `"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}]`
	for _, conv := range []string{"A", "B"} {
		ans := chatJSON(t, url, `{"model":"gpt-4o",`+tools+`,"messages":[{"role":"user","content":"conv `+conv+`"}]}`)
		calls := ans.Get("choices.0.message.tool_calls").Array()
		if len(calls) != 1 || calls[0].Get("id").Str != "client_"+conv || ans.Get("choices.0.finish_reason").Str != "tool_calls" {
			t.Fatalf("conv %s: the client must get only its own call: %s", conv, ans.Raw)
		}
	}
	for _, conv := range []string{"B", "A"} {
		other := map[string]string{"A": "B", "B": "A"}[conv]
		body := `{"model":"gpt-4o",` + tools + `,"messages":[{"role":"user","content":"conv ` + conv + `"},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"client_` + conv + `","type":"function","function":{"name":"lookup","arguments":"{\"conv\":\"` + conv + `\"}"}}]},` +
			`{"role":"tool","tool_call_id":"client_` + conv + `","content":"result ` + conv + `"}]}`
		chatJSON(t, url, body)
		reqs := up.requests()
		got := reqs[len(reqs)-1]
		var msgs []gjson.Result // the conversation without paygate's state message
		var raw []string
		for _, m := range gjson.Get(got, "messages").Array() {
			if m.Get("role").Str != "system" {
				msgs = append(msgs, m)
				raw = append(raw, m.Raw)
			}
		}
		if len(msgs) < 4 || msgs[1].Get("tool_calls.#").Int() != 2 || msgs[1].Get("tool_calls.0.function.arguments").Str != `{"sku":"`+sku[conv]+`"}` ||
			msgs[2].Get("tool_call_id").Str != msgs[1].Get("tool_calls.0.id").Str || msgs[3].Get("tool_call_id").Str != "client_"+conv {
			t.Errorf("conv %s: exchange not restored in place: %s", conv, gjson.Get(got, "messages").Raw)
		}
		if conversation := strings.Join(raw, ","); strings.Contains(conversation, sku[other]) || strings.Contains(got, "client_"+other) {
			t.Errorf("conv %s received conversation %s's exchange", conv, other)
		}
	}
}

func TestFollowupModel(t *testing.T) {
	up := newScriptedProvider(t, stateScript)
	url, _ := paymentApp(t, up.URL, "  followup_model: cheap\n")
	ans := chatJSON(t, url, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"}]}`)
	reqs := up.requests()
	if len(reqs) != 2 || gjson.Get(reqs[0], "model").Str != "openai/gpt-4o" || gjson.Get(reqs[1], "model").Str != "vendor/cheap-mini" {
		t.Fatalf("rounds went to %q then %q; want the follow-up on vendor/cheap-mini", gjson.Get(reqs[0], "model").Str, gjson.Get(reqs[1], "model").Str)
	}
	rounds := ans.Get("paygate.rounds").Array()
	if len(rounds) != 2 || rounds[1].Get("provider").Str != "fake" {
		t.Errorf("paygate.rounds %s", ans.Get("paygate.rounds").Raw)
	}
}
