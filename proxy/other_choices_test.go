package proxy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// namedCalls is every tool-call name the bot received in an answer, in any
// choice, stream or not.
func namedCalls(stream bool, body string) []string {
	var out []string
	collect := func(names gjson.Result) {
		names.ForEach(func(_, n gjson.Result) bool {
			n.ForEach(func(_, v gjson.Result) bool {
				if v.Str != "" {
					out = append(out, v.Str)
				}
				return true
			})
			return true
		})
	}
	if !stream {
		collect(gjson.Get(body, "choices.#.message.tool_calls.#.function.name"))
		return out
	}
	for _, line := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && d != "[DONE]" {
			collect(gjson.Get(d, "choices.#.delta.tool_calls.#.function.name"))
		}
	}
	return out
}

// TestPaymentCallOfAnotherChoiceNeverRuns: a signed-in turn asks for one
// choice (runTurn refuses n above 1) and continues choice 0's conversation.
// A provider that sends another choice anyway, one with a payment call,
// had that call run in a stream (an order the conversation's answer never
// asked for) and handed raw to the bot in a non-stream answer (a call of a
// tool it does not know, which never ran). In both now the call is
// dropped: never run, never shown (a choice left without a call says
// "stop"), and counted on paygate_tool_calls_total as not_executed (it was
// only logged); choice 0's own calls run as before.
func TestPaymentCallOfAnotherChoiceNeverRuns(t *testing.T) {
	const (
		create = `[{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium\"}"}}]`
		query  = `[{"index":0,"id":"call_q","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]`
	)
	// twoChoices answers with choice 0 (its text, or its calls) and a
	// choice 1 that calls create_order.
	twoChoices := func(stream bool, text, calls string) http.HandlerFunc {
		msg0 := `"content":"` + text + `"`
		if calls != "" {
			msg0 = `"content":null,"tool_calls":` + calls
		}
		fin0 := "stop"
		if calls != "" {
			fin0 = "tool_calls"
		}
		if stream {
			return sseHandler(
				roundChunk+`[{"index":0,"delta":{"role":"assistant",`+msg0+`},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":1,"delta":{"role":"assistant","content":null,"tool_calls":`+create+`},"finish_reason":null}]}`+"\n\n",
				roundChunk+`[{"index":1,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n",
				roundChunk+`[{"index":0,"delta":{},"finish_reason":"`+fin0+`"}]}`+"\n\n",
				"data: [DONE]\n\n")
		}
		return jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[`+
			`{"index":0,"message":{"role":"assistant",`+msg0+`},"finish_reason":"`+fin0+`"},`+
			`{"index":1,"message":{"role":"assistant","content":null,"tool_calls":`+create+`},"finish_reason":"tool_calls"}]}`)
	}
	tests := []struct {
		name     string
		calls    string // choice 0's calls; "" for text
		rounds   int
		executed []string
	}{
		{"beside choice 0's text", "", 1, nil},
		{"beside choice 0's payment call", query, 2, []string{`query_order {"order_no":"X1"}`}},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			name := tc.name + "/non-stream"
			if stream {
				name = tc.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(twoChoices(stream, "Premium is 49.99 CNY.", tc.calls), textRound(stream, "Order X1 is paid.")))
				tools := &recordingTools{}
				s, url := servePaygate(t, testConfig(t, fp.URL, nil), Options{Tools: tools, State: &memState{}}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				if got := tools.executed(); !slices.Equal(got, tc.executed) {
					t.Errorf("executed %q; want %q (choice 1's create_order is not the conversation's)", got, tc.executed)
				}
				if got := namedCalls(stream, body); slices.Contains(got, "create_order") || slices.Contains(got, "query_order") {
					t.Errorf("the bot got payment calls %q: %s", got, body)
				}
				if !stream && tc.rounds == 1 {
					// The rest of choice 1 is the bot's as it came, but
					// for a finish that names calls it no longer has.
					if ch := gjson.Get(body, "choices.1"); !ch.Exists() || ch.Get("finish_reason").Str != "stop" {
						t.Errorf("choice 1 %s; want it without its call, finish_reason \"stop\"", ch.Raw)
					}
				}
				if got := len(fp.requests()); got != tc.rounds {
					t.Errorf("%d upstream rounds; want %d", got, tc.rounds)
				}
				// Counted as a call the model made and paygate did not
				// run, as one of a round it could not read is.
				if got, named := toolCallsServed(t, s, "create_order", "not_executed"); got != 1 || !named {
					t.Errorf(`/metrics paygate_tool_calls_total{tool="create_order",outcome="not_executed"} = %v (named in HELP: %v); want 1, named`, got, named)
				}
			})
		}
	}
}

// TestTextOfAnotherChoiceIsNotTheRounds: the text of a choice other than
// the first, which a provider sent though the turn asked for one, is not
// the round's. A stream read it as choice 0's (the text path looked at no
// index): the assistant message of the payment round, sent back to the
// provider, said choice 1's words beside choice 0's call, where the
// non-stream answer's said none, and the bot's choice 0 got a paragraph
// break before the next round's text, as if it had said something. Both
// paths now send back choice 0's message alone.
func TestTextOfAnotherChoiceIsNotTheRounds(t *testing.T) {
	const query = `[{"index":0,"id":"call_q","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]`
	for _, stream := range []bool{false, true} {
		name := "non-stream"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			round0 := jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[`+
				`{"index":0,"message":{"role":"assistant","content":null,"tool_calls":`+query+`},"finish_reason":"tool_calls"},`+
				`{"index":1,"message":{"role":"assistant","content":"Another answer."},"finish_reason":"stop"}]}`)
			if stream {
				round0 = sseHandler(
					roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":`+query+`},"finish_reason":null}]}`+"\n\n",
					roundChunk+`[{"index":1,"delta":{"role":"assistant","content":"Another "},"finish_reason":null}]}`+"\n\n",
					roundChunk+`[{"index":1,"delta":{"content":"answer."},"finish_reason":null}]}`+"\n\n",
					roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n",
					roundChunk+`[{"index":1,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
					"data: [DONE]\n\n")
			}
			fp := newFakeProvider(t, roundByRound(round0, textRound(stream, "Order X1 is paid.")))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			reqs := fp.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream rounds; want 2: %s", len(reqs), body)
			}
			msg := gjson.GetBytes(reqs[1].Body, `messages.#(role=="assistant")`)
			if c := msg.Get("content"); c.Type != gjson.Null {
				t.Errorf("the payment round's assistant message says %s; want null content (choice 1's text is not choice 0's)", c.Raw)
			}
			text := gjson.Get(body, "choices.0.message.content").Str
			if stream {
				text = firstChoiceText(body)
			}
			if text != "Order X1 is paid." {
				t.Errorf("the bot's choice 0 reads %q; want %q", text, "Order X1 is paid.")
			}
		})
	}
}

// firstChoiceText is the text of choice 0 of a streamed answer.
func firstChoiceText(body string) string {
	var b strings.Builder
	for _, line := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && d != "[DONE]" {
			gjson.Get(d, "choices").ForEach(func(_, ch gjson.Result) bool {
				if ch.Get("index").Int() == 0 {
					b.WriteString(ch.Get("delta.content").Str)
				}
				return true
			})
		}
	}
	return b.String()
}

// TestFinishOfAnotherChoiceIsNotTheRounds: the bot gets each choice's
// finish_reason, stream and non-stream alike, when a provider sends a
// second choice though the turn asked for one. A stream kept the last
// finish chunk of any choice as the round's: choice 1's, when it finished
// after choice 0, went out at the end and choice 0's never did (the Node
// SDK's stream helper fails an answer with a choice left unfinished, and
// choice 0's "length" was lost).
func TestFinishOfAnotherChoiceIsNotTheRounds(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := "non-stream"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			h := jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[`+
				`{"index":0,"message":{"role":"assistant","content":"Premium is"},"finish_reason":"length"},`+
				`{"index":1,"message":{"role":"assistant","content":"Hello."},"finish_reason":"stop"}]}`)
			if stream {
				h = sseHandler(
					roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Premium is"},"finish_reason":null}]}`+"\n\n",
					roundChunk+`[{"index":1,"delta":{"role":"assistant","content":"Hello."},"finish_reason":null}]}`+"\n\n",
					roundChunk+`[{"index":0,"delta":{},"finish_reason":"length"}]}`+"\n\n",
					roundChunk+`[{"index":1,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
					"data: [DONE]\n\n")
			}
			fp := newFakeProvider(t, h)
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			finishes := map[int64][]string{}
			add := func(choices gjson.Result) {
				choices.ForEach(func(_, ch gjson.Result) bool {
					if f := ch.Get("finish_reason").Str; f != "" {
						finishes[ch.Get("index").Int()] = append(finishes[ch.Get("index").Int()], f)
					}
					return true
				})
			}
			if !stream {
				add(gjson.Get(body, "choices"))
			}
			for _, line := range strings.Split(body, "\n") {
				if d, ok := strings.CutPrefix(line, "data: "); stream && ok && d != "[DONE]" {
					add(gjson.Get(d, "choices"))
				}
			}
			if got := finishes[0]; !slices.Equal(got, []string{"length"}) {
				t.Errorf("choice 0 finished %q; want [length]:\n%s", got, body)
			}
			if got := finishes[1]; !slices.Equal(got, []string{"stop"}) {
				t.Errorf("choice 1 finished %q; want [stop]:\n%s", got, body)
			}
		})
	}
}

// TestClientCallsOfAnotherChoiceAreNotTheRounds: the bot's own calls in a
// choice other than the first, which a provider sent though the turn asked
// for one, are that choice's, as a non-stream answer leaves them: a stream
// counted them among the round's, so choice 0, which made no call, ended
// with finish_reason "tool_calls" (and an exchange was kept for calls it
// never made), and a call of choice 0 after one of choice 1's went out
// under index 1, leaving a gap the bot's SDK reads as a missing call.
func TestClientCallsOfAnotherChoiceAreNotTheRounds(t *testing.T) {
	const weather = `[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]`
	const weather0 = `[{"index":0,"id":"call_v","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"BJ\"}"}}]`
	tests := []struct {
		name   string
		msg0   string // choice 0's delta or message members
		fin0   string
		calls0 []string // the calls of choice 0 the bot gets, "index name"
	}{
		{"beside choice 0's text", `"content":"Hi."`, "stop", nil},
		{"before choice 0's own call", `"content":null,"tool_calls":` + weather0, "tool_calls", []string{"0 get_weather"}},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			name := tc.name + "/non-stream"
			if stream {
				name = tc.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				h := jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[`+
					`{"index":0,"message":{"role":"assistant",`+tc.msg0+`},"finish_reason":"`+tc.fin0+`"},`+
					`{"index":1,"message":{"role":"assistant","content":null,"tool_calls":`+weather+`},"finish_reason":"tool_calls"}]}`)
				if stream {
					h = sseHandler(
						roundChunk+`[{"index":1,"delta":{"role":"assistant","content":null,"tool_calls":`+weather+`},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{"role":"assistant",`+tc.msg0+`},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":1,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{},"finish_reason":"`+tc.fin0+`"}]}`+"\n\n",
						"data: [DONE]\n\n")
				}
				fp := newFakeProvider(t, h)
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				calls := map[int64][]string{}
				fin0 := ""
				add := func(choices gjson.Result, path string) {
					choices.ForEach(func(_, ch gjson.Result) bool {
						i := ch.Get("index").Int()
						if f := ch.Get("finish_reason").Str; f != "" && i == 0 {
							fin0 = f
						}
						ch.Get(path).ForEach(func(k, c gjson.Result) bool {
							idx := k.Int() // a message's calls have no index
							if c.Get("index").Exists() {
								idx = c.Get("index").Int()
							}
							calls[i] = append(calls[i], strconv.FormatInt(idx, 10)+" "+c.Get("function.name").Str)
							return true
						})
						return true
					})
				}
				if !stream {
					add(gjson.Get(body, "choices"), "message.tool_calls")
				}
				for _, line := range strings.Split(body, "\n") {
					if d, ok := strings.CutPrefix(line, "data: "); stream && ok && d != "[DONE]" {
						add(gjson.Get(d, "choices"), "delta.tool_calls")
					}
				}
				if fin0 != tc.fin0 {
					t.Errorf("choice 0 finished %q; want %q:\n%s", fin0, tc.fin0, body)
				}
				if !slices.Equal(calls[0], tc.calls0) {
					t.Errorf("choice 0's calls %q; want %q:\n%s", calls[0], tc.calls0, body)
				}
				if want := []string{"0 get_weather"}; !slices.Equal(calls[1], want) {
					t.Errorf("choice 1's calls %q; want %q:\n%s", calls[1], want, body)
				}
			})
		}
	}
}

// TestRoleOfAnotherChoice: the bot's SDK needs one role for each choice
// (the Node SDK's stream helper fails an answer with "missing role for
// choice N"; the Python one joins two roles into one word). A stream
// counted a role of any choice as the turn's: a second choice's role in a
// later round, which a provider sent though the turn asked for one, was
// removed as a repeat of choice 0's, and choice 0's own, after a round 0
// whose only role was choice 1's, was removed as a repeat of that one.
// Each choice now gets its role once.
func TestRoleOfAnotherChoice(t *testing.T) {
	const query = `[{"index":0,"id":"call_q","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]`
	chunk := func(choice, delta, finish string) string {
		return roundChunk + `[{"index":` + choice + `,"delta":{` + delta + `},"finish_reason":` + finish + `}]}` + "\n\n"
	}
	tests := []struct {
		name   string
		round0 []string
		round1 []string
	}{
		{"a second choice first in a later round", []string{
			chunk("0", `"role":"assistant","content":null,"tool_calls":`+query, "null"),
			chunk("0", ``, `"tool_calls"`),
		}, []string{
			chunk("0", `"role":"assistant","content":"Order X1 is paid."`, "null"),
			chunk("1", `"role":"assistant","content":"Hello."`, "null"),
			chunk("1", ``, `"stop"`),
			chunk("0", ``, `"stop"`),
		}},
		{"choice 0's role after a round whose only role was a second choice's", []string{
			chunk("1", `"role":"assistant","content":"Hello."`, "null"),
			chunk("0", `"tool_calls":`+query, "null"),
			chunk("1", ``, `"stop"`),
			chunk("0", ``, `"tool_calls"`),
		}, []string{
			chunk("0", `"role":"assistant","content":"Order X1 is paid."`, "null"),
			chunk("0", ``, `"stop"`),
		}},
		{"a second choice in both rounds", []string{
			chunk("0", `"role":"assistant","content":null,"tool_calls":`+query, "null"),
			chunk("1", `"role":"assistant","content":"Hello."`, "null"),
			chunk("1", ``, `"stop"`),
			chunk("0", ``, `"tool_calls"`),
		}, []string{
			chunk("0", `"role":"assistant","content":"Order X1 is paid."`, "null"),
			chunk("1", `"role":"assistant","content":"Hi."`, "null"),
			chunk("1", ``, `"stop"`),
			chunk("0", ``, `"stop"`),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(
				sseHandler(append(tc.round0, "data: [DONE]\n\n")...),
				sseHandler(append(tc.round1, "data: [DONE]\n\n")...)))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := tools.executed(); len(got) != 1 {
				t.Fatalf("executed %q; want the query_order", got)
			}
			roles := map[int64]int{}
			for _, line := range strings.Split(body, "\n") {
				if d, ok := strings.CutPrefix(line, "data: "); ok && d != "[DONE]" {
					gjson.Get(d, "choices").ForEach(func(_, ch gjson.Result) bool {
						if ch.Get("delta.role").Str != "" {
							roles[ch.Get("index").Int()]++
						}
						return true
					})
				}
			}
			if roles[0] != 1 || roles[1] != 1 {
				t.Errorf("roles per choice %v; want one each:\n%s", roles, body)
			}
		})
	}
}
