package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonstr"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// templateRefusal is what vLLM answers when a Qwen3.5/3.6 chat template
// raises on a system message that is not the first message
// (vllm-project/vllm#41114).
const templateRefusal = `{"error":{"message":"System message must be at the beginning.","type":"BadRequestError","param":null,"code":400}}`

// strictTemplate answers as a Qwen3.5/3.6 chat template on vLLM or
// llama.cpp does: 400 templateRefusal when any system message is not the
// first message (the template's rule: role "system" and not loop.first),
// next otherwise.
func strictTemplate(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		late := false
		gjson.GetBytes(body, "messages").ForEach(func(k, m gjson.Result) bool {
			late = m.Get("role").Str == "system" && k.Int() > 0
			return !late
		})
		if late {
			jsonHandler(http.StatusBadRequest, templateRefusal)(w, r)
			return
		}
		next(w, r)
	}
}

// rawMessages are the messages of a request body, each as its raw bytes.
func rawMessages(body []byte) []string {
	var out []string
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		out = append(out, m.Raw)
		return true
	})
	return out
}

// placementTurn is a signed-in user with an awaiting_payment order, served by
// a proxy whose gpt-test targets are the given providers in order.
type placementTurn struct {
	url   string
	state string // the payment-state text the turn adds
}

// placementProvider is one target of a placementTurn.
type placementProvider struct {
	fp   *fakeProvider
	mode string // providers[].system_messages, "" for the default
}

const placementUser = "o-placement"

func newPlacementTurn(t *testing.T, provs ...placementProvider) placementTurn {
	t.Helper()
	return newPlacementTurnWith(t, queryTools{}, provs...)
}

// newPlacementTurnWith is newPlacementTurn with the payment tools tools.
func newPlacementTurnWith(t *testing.T, tools PaymentTools, provs ...placementProvider) placementTurn {
	t.Helper()
	clock := storetest.NewClock()
	st := testdrivers.Open(t, "embedded", clock.Now)
	o := storetest.NewOrder("ORD-PLACE-1", "shop-bot", placementUser, clock.Now())
	if err := st.CreateOrder(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	state := stateMessage([]*store.Order{o}, clock.Now(), time.Hour, nil)
	if state == "" || !strings.Contains(state, "ORD-PLACE-1") {
		t.Fatalf("state message %q; want one naming ORD-PLACE-1", state)
	}
	url := paymentProxy(t, provs[0].fp.URL, func(c *config.Config) {
		base := c.Providers[0]
		c.Providers = c.Providers[:0]
		c.Models = c.Models[:1] // embed-test names the provider replaced here
		c.Models[0].Targets = c.Models[0].Targets[:0]
		for i, p := range provs {
			pc := base
			pc.Name = "p" + string(rune('a'+i))
			pc.BaseURL = p.fp.URL + "/v1"
			if p.mode != "" {
				pc.SystemMessages = p.mode
			}
			c.Providers = append(c.Providers, pc)
			c.Models[0].Targets = append(c.Models[0].Targets, config.Target{Provider: pc.Name, Model: "vendor/upstream-model", Weight: 1})
		}
	}, tools, st, nil)
	return placementTurn{url: url, state: state}
}

// placementMessages is a conversation of three turns after lead (a raw
// leading message and its comma, or ""), written with spaces and line breaks
// as a hand-written bot sends it: bytes a re-encoding would change.
func placementMessages(lead string) string {
	return "[\n    " + lead + `{"role": "user", "content": "I want premium"},
    {"role": "assistant", "content": "Shall I order it?"},
    {"role": "user", "content": "is my order paid?", "name": "li"}
  ]`
}

func placementBody(stream bool, lead string) string {
	s := ""
	if stream {
		s = `"stream": true, `
	}
	return `{"model": "gpt-test", ` + s + `"messages": ` + placementMessages(lead) + `, "temperature": 0.2}`
}

// TestStateMessageOnStrictTemplates: a provider whose chat template refuses
// a system message anywhere but first (Qwen on vLLM, llama.cpp, DashScope)
// answers every turn of a user with an order with a 400 when the payment
// state is a system message before the last user message (SPEC 3's
// placement). With system_messages: first_only the state joins the leading
// system (or developer) message, or is a new system message at index 0, in
// every round of the turn, and every other message reaches the provider as
// the bot sent it; a provider left at the default gets today's placement in
// the same round.
func TestStateMessageOnStrictTemplates(t *testing.T) {
	const (
		sysLead  = `{"role": "system", "content": "You are the shop's assistant.", "name": "shop"},` + "\n    "
		partLead = `{"role": "system", "content": [{"type": "text", "text": "You are the shop's assistant."}]},` + "\n    "
		devLead  = `{"role": "developer", "content": "Answer briefly."},` + "\n    "
	)
	// checkFirstOnly checks one upstream request in the first_only form:
	// the state in its leading message as lead's shape wants, the bot's
	// other messages byte for byte, then what the turn appended.
	checkFirstOnly := func(t *testing.T, turn placementTurn, lead string, body []byte) {
		t.Helper()
		botMsgs := rawMessages([]byte(`{"messages":` + placementMessages(lead) + `}`))
		got := rawMessages(body)
		if len(got) < len(botMsgs) {
			t.Fatalf("upstream got %d messages; want at least the bot's %d: %s", len(got), len(botMsgs), body)
		}
		first := gjson.Parse(got[0])
		switch lead {
		case "":
			if want := `{"role":"system","content":` + string(jsonstr.Append(nil, turn.state)) + `}`; got[0] != want {
				t.Errorf("leading message\n got %s\nwant %s", got[0], want)
			}
			got = got[1:]
		case partLead:
			parts := first.Get("content").Array()
			if len(parts) != 2 || parts[0].Raw != `{"type": "text", "text": "You are the shop's assistant."}` ||
				parts[1].Get("type").Str != "text" || parts[1].Get("text").Str != "\n\n"+turn.state {
				t.Errorf("leading message %s; want the bot's part, then a text part with the payment state", got[0])
			}
			got[0] = botMsgs[0]
		default:
			want := gjson.Parse(botMsgs[0])
			if first.Get("role").Str != want.Get("role").Str || first.Get("name").Str != want.Get("name").Str ||
				first.Get("content").Str != want.Get("content").Str+"\n\n"+turn.state {
				t.Errorf("leading message %s; want the bot's %s with the payment state appended as a paragraph", got[0], botMsgs[0])
			}
			got[0] = botMsgs[0]
		}
		for i, m := range botMsgs {
			if got[i] != m {
				t.Errorf("message %d\n got %s\nwant %s (the bot's bytes)", i, got[i], m)
			}
		}
		for i, m := range got[len(botMsgs):] {
			if r := gjson.Get(m, "role").Str; r != "assistant" && r != "tool" {
				t.Errorf("message %d after the bot's is a %s message: %s", len(botMsgs)+i, r, m)
			}
		}
	}
	// checkAnywhere checks a request in today's form: the bot's messages
	// with the state as a system message just before the last user message.
	checkAnywhere := func(t *testing.T, turn placementTurn, lead string, body []byte) {
		t.Helper()
		botMsgs := rawMessages([]byte(`{"messages":` + placementMessages(lead) + `}`))
		want := append([]string(nil), botMsgs[:len(botMsgs)-1]...)
		want = append(want, `{"role":"system","content":`+string(jsonstr.Append(nil, turn.state))+`}`, botMsgs[len(botMsgs)-1])
		got := rawMessages(body)
		if len(got) < len(want) {
			t.Fatalf("upstream got %d messages; want at least %d: %s", len(got), len(want), body)
		}
		for i, m := range want {
			if got[i] != m {
				t.Errorf("message %d\n got %s\nwant %s", i, got[i], m)
			}
		}
		if !strings.Contains(string(body), `"messages": [`+"\n    ") {
			t.Errorf("the bot's messages array lost its spacing: %s", body)
		}
	}
	check := map[string]func(*testing.T, placementTurn, string, []byte){
		config.SystemMessagesFirstOnly: checkFirstOnly,
		"":                             checkAnywhere,
	}
	type prov struct {
		mode   string
		refuse bool // answers 401 before looking at the body: the next target serves
	}
	tests := []struct {
		name  string
		lead  string
		provs []prov
	}{
		{"no system message", "", []prov{{mode: config.SystemMessagesFirstOnly}}},
		{"string content", sysLead, []prov{{mode: config.SystemMessagesFirstOnly}}},
		{"array content", partLead, []prov{{mode: config.SystemMessagesFirstOnly}}},
		{"developer message first", devLead, []prov{{mode: config.SystemMessagesFirstOnly}}},
		{"failover anywhere to first_only", sysLead, []prov{{refuse: true}, {mode: config.SystemMessagesFirstOnly}}},
		{"failover first_only to anywhere", sysLead, []prov{{mode: config.SystemMessagesFirstOnly, refuse: true}, {}}},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			name := tc.name + "/non-stream"
			if stream {
				name = tc.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				var fps []*fakeProvider
				var provs []placementProvider
				for _, p := range tc.provs {
					h := roundByRound(
						callsRound(stream, `[{"index":0,"id":"call_q","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"ORD-PLACE-1\"}"}}]`),
						textRound(stream, "Not yet paid."))
					if p.mode == config.SystemMessagesFirstOnly {
						// The provider an operator marks first_only has
						// a strict template; one left anywhere takes a
						// system message anywhere.
						h = strictTemplate(h)
					}
					if p.refuse {
						h = jsonHandler(http.StatusUnauthorized, `{"error":{"message":"bad key","type":"invalid_request_error"}}`)
					}
					fp := newFakeProvider(t, h)
					fps = append(fps, fp)
					provs = append(provs, placementProvider{fp: fp, mode: p.mode})
				}
				turn := newPlacementTurn(t, provs...)
				resp := post(t, turn.url, "/v1/chat/completions", placementBody(stream, tc.lead), map[string]string{"X-WeChat-OpenID": placementUser})
				body := readAll(t, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Not yet paid.") {
					t.Fatalf("status %d, body %s; want 200 with the answer", resp.StatusCode, body)
				}
				rounds := 0
				for i, fp := range fps {
					for _, req := range fp.requests() {
						if !tc.provs[i].refuse {
							rounds++
						}
						check[tc.provs[i].mode](t, turn, tc.lead, req.Body)
					}
				}
				if rounds != 2 {
					t.Errorf("%d rounds served; want 2 (the query_order round and the answer)", rounds)
				}
				if n := len(fps[0].requests()); n == 0 {
					t.Errorf("the first target was never asked")
				}
			})
		}
	}
}

// TestStateMessageDefaultPlacementOnStrictTemplate: left at the default, a
// strict-template provider gets SPEC 3's placement, and the bot gets the
// provider's reason, naming the error an operator searches for.
func TestStateMessageDefaultPlacementOnStrictTemplate(t *testing.T) {
	fp := newFakeProvider(t, strictTemplate(textRound(false, "hi")))
	turn := newPlacementTurn(t, placementProvider{fp: fp})
	resp := post(t, turn.url, "/v1/chat/completions", placementBody(false, ""), map[string]string{"X-WeChat-OpenID": placementUser})
	body := readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "System message must be at the beginning.") {
		t.Fatalf("status %d, body %s; want the provider's 400", resp.StatusCode, body)
	}
}

// clarifyTools asks for a clarification on every call, as an invalid or
// over-budget payment call gets: the next round runs with tool_choice "none".
type clarifyTools struct{ queryTools }

func (clarifyTools) Execute(context.Context, payments.Caller, string, string) payments.Outcome {
	return payments.Outcome{Result: []byte(`{"error":"ask the user which plan"}`), Clarify: true}
}

// TestStateMessageFirstOnlyEveryRound: with system_messages: first_only the
// clarification round, and the round of a bot's next request whose payment
// exchange paygate restores (SPEC 3.7), keep the state in the leading
// system message too: a strict template refuses any round that does not.
func TestStateMessageFirstOnlyEveryRound(t *testing.T) {
	const sys = `{"role":"system","content":"You are the shop's assistant."}`
	onlyFirst := func(t *testing.T, turn placementTurn, reqs []seenRequest) {
		t.Helper()
		for i, r := range reqs {
			msgs := rawMessages(r.Body)
			if want := "You are the shop's assistant.\n\n" + turn.state; gjson.Get(msgs[0], "content").Str != want {
				t.Errorf("request %d: leading message %s; want the bot's with the state appended", i, msgs[0])
			}
			for j, m := range msgs[1:] {
				if gjson.Get(m, "role").Str == "system" {
					t.Errorf("request %d: message %d is a system message: %s", i, j+1, m)
				}
			}
		}
	}
	for _, stream := range []bool{false, true} {
		sf, mode := "", "non-stream"
		if stream {
			sf, mode = `"stream":true,`, "stream"
		}
		t.Run(mode+"/clarification round", func(t *testing.T) {
			fp := newFakeProvider(t, strictTemplate(roundByRound(
				callsRound(stream, `[{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":"{}"}}]`),
				textRound(stream, "Which plan?"))))
			turn := newPlacementTurnWith(t, clarifyTools{}, placementProvider{fp: fp, mode: config.SystemMessagesFirstOnly})
			resp := post(t, turn.url, "/v1/chat/completions", `{"model":"gpt-test",`+sf+`"messages":[`+sys+`,{"role":"user","content":"buy"}]}`,
				map[string]string{"X-WeChat-OpenID": placementUser})
			body := readAll(t, resp.Body)
			resp.Body.Close()
			reqs := fp.requests()
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Which plan?") || len(reqs) != 2 {
				t.Fatalf("status %d, %d rounds, body %s; want 200 with the clarification round's answer", resp.StatusCode, len(reqs), body)
			}
			if tc := gjson.GetBytes(reqs[1].Body, "tool_choice").Str; tc != "none" {
				t.Errorf("second round's tool_choice %q; want none (a clarification round)", tc)
			}
			onlyFirst(t, turn, reqs)
		})
		t.Run(mode+"/restored exchange", func(t *testing.T) {
			fp := newFakeProvider(t, strictTemplate(roundByRound(
				callsRound(stream, `[{"index":0,"id":"call_q","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"ORD-PLACE-1\"}"}},`+
					`{"index":1,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]`),
				textRound(stream, "Not yet paid, and sunny."))))
			turn := newPlacementTurn(t, placementProvider{fp: fp, mode: config.SystemMessagesFirstOnly})
			hdr := map[string]string{"X-WeChat-OpenID": placementUser}
			resp := post(t, turn.url, "/v1/chat/completions", `{"model":"gpt-test",`+sf+weatherTool+`"messages":[`+sys+`,{"role":"user","content":"paid? weather?"}]}`, hdr)
			body := readAll(t, resp.Body)
			resp.Body.Close()
			if !strings.Contains(body, "call_w") {
				t.Fatalf("status %d, body %s; want the bot's own call", resp.StatusCode, body)
			}
			next := `{"model":"gpt-test",` + sf + weatherTool + `"messages":[` + sys + `,{"role":"user","content":"paid? weather?"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
			resp = post(t, turn.url, "/v1/chat/completions", next, hdr)
			body = readAll(t, resp.Body)
			resp.Body.Close()
			reqs := fp.requests()
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Not yet paid, and sunny.") || len(reqs) != 2 {
				t.Fatalf("status %d, %d upstream requests, body %s; want 200 with the answer", resp.StatusCode, len(reqs), body)
			}
			if asst := assistantToolMessage(reqs[1].Body); gjson.Get(asst, "tool_calls.#").Int() != 2 {
				t.Errorf("restored assistant message %s; want both calls (the payment exchange restored)", asst)
			}
			onlyFirst(t, turn, reqs)
		})
	}
}
