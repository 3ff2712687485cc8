package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// vllmLike validates history as vLLM's chat_utils._postprocess_messages
// (and sglang, Mistral's own tooling) do: every assistant tool call's
// arguments must parse as JSON, else 400. Otherwise it serves next.
func vllmLike(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bad := false
		gjson.GetBytes(b, "messages.#.tool_calls.#.function.arguments").ForEach(func(_, per gjson.Result) bool {
			per.ForEach(func(_, a gjson.Result) bool {
				var v any
				bad = bad || json.Unmarshal([]byte(a.Str), &v) != nil
				return true
			})
			return true
		})
		if bad {
			jsonHandler(400, `{"error":{"message":"Unterminated string starting at: line 1 column 9 (char 8)","type":"BadRequestError","param":null,"code":400}}`)(w, r)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		next(w, r)
	}
}

// A payment call cut by max_tokens gets the clarification, not the
// provider's 400 on the next round: its arguments go back as {}.
func TestInvalidPaymentArgumentsGetTheClarification(t *testing.T) {
	r0 := sseHandler(
		roundChunk+`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium"}}]},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
	r1 := sseHandler(
		roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Which plan would you like?"},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")
	fp := newFakeProvider(t, vllmLike(roundByRound(r0, r1)))
	tools := &recordingTools{}
	url := toolsProxy(t, fp.URL, tools, nil)
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"buy premium"}]}`,
		map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	if !strings.Contains(body, "Which plan would you like?") || strings.Contains(body, `"error"`) {
		t.Errorf("the user should get the clarifying question; got:\n%s", body)
	}
	if got := tools.executed(); len(got) != 1 || got[0] != `create_order {"sku":"premium` {
		t.Errorf("executed %q; want the cut create_order once (its result asks for clarification)", got)
	}
}

// Nor does a kept exchange carry the cut arguments into every later request
// of the conversation.
func TestInvalidPaymentArgumentsInAKeptExchange(t *testing.T) {
	r0 := sseHandler(
		roundChunk+`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium"}}]},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
	r1 := sseHandler(
		roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Sunny. Which plan?"},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")
	fp := newFakeProvider(t, vllmLike(roundByRound(r0, r1)))
	url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
	hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,`+weatherTool+`"messages":[{"role":"user","content":"buy premium; weather?"}]}`, hdr).Body)
	// The bot answers its own call, as any SDK loop does.
	follow := `{"model":"gpt-test","stream":true,` + weatherTool + `"messages":[{"role":"user","content":"buy premium; weather?"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},` +
		`{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
	resp := post(t, url, "/v1/chat/completions", follow, hdr)
	if body := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(body, "Which plan?") {
		t.Errorf("bot's follow-up: %d %s", resp.StatusCode, body)
	}
}

// The {} is for the provider only: the bot's own call in a non-stream mixed
// round reaches the bot as the model wrote it, and the bot's echo of it
// still restores the kept payment exchange.
func TestBotCallArgumentsKeptInANonStreamMixedRound(t *testing.T) {
	const botArgs = `{'city': 'SH'}`
	r0 := `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
		`{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}},` +
		`{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{'city': 'SH'}"}}]},"finish_reason":"tool_calls"}]}`
	r1 := `{"id":"c2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Sunny."},"finish_reason":"stop"}]}`
	fp := newFakeProvider(t, scriptedAnswers(r0, r1))
	url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
	hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test",`+weatherTool+`"messages":[{"role":"user","content":"x"}]}`, hdr).Body)
	if got := gjson.Get(body, "choices.0.message.tool_calls.0.function.arguments").Str; got != botArgs {
		t.Errorf("the bot's own call reached it with arguments %q; want %q as the model wrote them\n%s", got, botArgs, body)
	}
	asst := gjson.Get(body, "choices.0.message").Raw
	follow := `{"model":"gpt-test",` + weatherTool + `"messages":[{"role":"user","content":"x"},` + asst +
		`,{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
	readAll(t, post(t, url, "/v1/chat/completions", follow, hdr).Body)
	seen := fp.requests()
	if last := string(seen[len(seen)-1].Body); !strings.Contains(last, `"`+keptCallID+`"`) {
		t.Errorf("the follow-up reached the provider without the kept payment exchange (%s):\n%s", keptCallID, last)
	}
}

// A custom tool's call of the bot's in a mixed round reaches the bot as the
// model wrote it (type custom, its name and input in "custom"), stream or
// not, and the bot's echo of it restores the kept payment exchange with the
// call as the provider made it (the payment call under paygate's id).
func TestBotCustomCallInAMixedRound(t *testing.T) {
	const (
		sqlTool = `"tools":[{"type":"custom","custom":{"name":"run_sql"}}],`
		custom  = `{"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"select 1"}}`
		calls   = `[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}},` + custom + `]`
	)
	for _, stream := range []bool{true, false} {
		t.Run(map[bool]string{true: "stream", false: "non-stream"}[stream], func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(callsRound(stream, calls), textRound(stream, "Done.")))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, sqlTool), hdr).Body)
			if stream {
				var entries []string
				for _, line := range strings.Split(body, "\n") {
					if d, ok := strings.CutPrefix(line, "data: "); ok {
						gjson.Get(d, "choices.0.delta.tool_calls").ForEach(func(_, e gjson.Result) bool {
							entries = append(entries, e.Raw)
							return true
						})
					}
				}
				if want := `{"index":0,"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"select 1"}}`; strings.Join(entries, "\n") != want {
					t.Errorf("the bot got tool-call entries\n%s\nwant\n%s", strings.Join(entries, "\n"), want)
				}
			} else if got := gjson.Get(body, "choices.0.message.tool_calls").Raw; got != "["+custom+"]" {
				t.Errorf("the bot got tool_calls %s; want [%s] as the model wrote it", got, custom)
			}
			follow := `{"model":"gpt-test",` + map[bool]string{true: `"stream":true,`}[stream] + sqlTool +
				`"messages":[{"role":"user","content":"buy premium"},` +
				`{"role":"assistant","content":null,"tool_calls":[` + custom + `]},` +
				`{"role":"tool","tool_call_id":"call_c","content":"1"}]}`
			readAll(t, post(t, url, "/v1/chat/completions", follow, hdr).Body)
			seen := fp.requests()
			last := seen[len(seen)-1].Body
			restored := gjson.GetBytes(last, "messages.1.tool_calls").Raw
			want := `[{"id":"` + keptCallID + `","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}},` + custom + `]`
			if restored != want || gjson.GetBytes(last, "messages.2.tool_call_id").Str != keptCallID {
				t.Errorf("the follow-up reached the provider without the kept payment exchange as the model made it:\n%s\nwant messages.1.tool_calls %s", last, want)
			}
		})
	}
}

// TestNoMoneyMovedAfterAClarification: once a payment call got the
// clarification (SPEC 3: invalid arguments, nothing executed, ask the
// user), no money-moving call of the turn runs, stream or not. The next
// round's tool_choice "none" is a request many OpenAI-compatible providers
// ignore: a create_order the model guessed there (quantity 12), or at a
// later index of the same round, gets the refusal that asks the user, also
// while the turn's max_payment_calls has room (the cut call did not count).
func TestNoMoneyMovedAfterAClarification(t *testing.T) {
	const (
		cut   = `{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium"}}`
		guess = `{"id":"call_2","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"quantity\":12}"}}`
	)
	tests := []struct {
		name     string
		rounds   []string // each tool round's calls; a round of words follows
		maxCalls int      // max_payment_calls; 0 the default
		guessID  string   // the id paygate gives the guess (uniqueCallIDs)
	}{
		{"the next round ignores tool_choice none", []string{"[" + cut + "]", "[" + guess + "]"}, 0, "call_pg_2_0"},
		{"the next round, max_payment_calls 2", []string{"[" + cut + "]", "[" + guess + "]"}, 2, "call_pg_2_0"},
		{"a later call of the same round", []string{"[" + cut + "," + guess + "]"}, 0, "call_pg_1_1"},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: "/stream", false: "/non-stream"}[stream], func(t *testing.T) {
				var hs []http.HandlerFunc
				for _, calls := range tc.rounds {
					hs = append(hs, callsRound(stream, calls))
				}
				hs = append(hs, textRound(stream, "Which plan would you like?"))
				fp := newFakeProvider(t, roundByRound(hs...))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, func(c *config.Config) {
					if tc.maxCalls > 0 {
						c.Payments.Budget.MaxPaymentCalls = tc.maxCalls
					}
				})
				body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
				if got := tools.executed(); len(got) != 1 || got[0] != `create_order {"sku":"premium` {
					t.Errorf("executed %q; want only the cut create_order (its result asks for clarification)", got)
				}
				reqs := fp.requests()
				if len(reqs) != len(hs) {
					t.Fatalf("%d upstream rounds; want %d", len(reqs), len(hs))
				}
				last := reqs[len(reqs)-1].Body
				if got := gjson.GetBytes(last, "tool_choice").Str; got != "none" {
					t.Errorf("the last round's tool_choice %q; want \"none\"", got)
				}
				res := gjson.GetBytes(last, `messages.#(tool_call_id=="`+tc.guessID+`").content`).Str
				if !strings.Contains(res, "not_executed") || !strings.Contains(res, "was asked to clarify") {
					t.Errorf("the guessed create_order's result %q; want the refusal that says the user was asked to clarify", res)
				}
				if strings.Contains(body, "order_created") || !strings.Contains(body, "Which plan would you like?") {
					t.Errorf("the user should be asked, with no order created; got:\n%s", body)
				}
			})
		}
	}
}

// TestToolCallsReadAlikeStreamOrNot: the same model output gets the same
// outcome stream or not: the same payment calls executed, the same calls
// handed to the bot. A call paygate cannot tell for the bot's own is
// refused as a payment call, never executed and never shown to the bot.
func TestToolCallsReadAlikeStreamOrNot(t *testing.T) {
	tests := []struct {
		name     string
		calls    string   // the first round's tool_calls; a round of words follows
		executed []string // by the payment tools
		bot      []string // the calls the bot gets
	}{
		{"no index and one id for a payment call and the bot's",
			`[{"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` +
				`{"id":"call_0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]`,
			[]string{`create_order {"sku":"premium-monthly"}`}, []string{`get_weather {"city":"SH"}`}},
		{"a call without a name",
			`[{"id":"call_x","type":"function","function":{"arguments":"{\"sku\":\"premium-monthly\"}"}}]`,
			nil, nil},
		{"a call without a name beside the bot's",
			`[{"id":"call_x","type":"function","function":{"arguments":"{\"sku\":\"premium-monthly\"}"}},` +
				`{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]`,
			nil, []string{`get_weather {"city":"SH"}`}},
		{"a name twice",
			`[{"id":"call_x","type":"function","function":{"name":"get_weather","name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`,
			nil, nil},
		{"a name twice, the payment tool's first",
			`[{"id":"call_x","type":"function","function":{"name":"create_order","name":"get_weather","arguments":"{\"sku\":\"premium-monthly\"}"}}]`,
			nil, nil},
		{"a custom tool call of the bot's (no function member)",
			`[{"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"select 1"}}]`,
			nil, []string{`run_sql select 1`}},
		{"a function and a custom member",
			`[{"id":"call_x","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"},` +
				`"custom":{"name":"run_sql","input":"select 1"}}]`,
			nil, nil},
		{"a custom call named like a payment tool",
			`[{"id":"call_x","type":"custom","custom":{"name":"create_order","input":"{\"sku\":\"premium-monthly\"}"}}]`,
			nil, nil},
		{"a custom call named like a payment tool beside the bot's",
			`[{"id":"call_x","type":"custom","custom":{"name":"create_order","input":"{\"sku\":\"premium-monthly\"}"}},` +
				`{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]`,
			nil, []string{`get_weather {"city":"SH"}`}},
		{"a custom call of the bot's beside a payment call",
			`[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}},` +
				`{"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"select 1"}}]`,
			[]string{`query_order {"order_no":"X1"}`}, []string{`run_sql select 1`}},
		{"a function twice",
			`[{"id":"call_x","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"},` +
				`"function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]`,
			nil, nil},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: "/stream", false: "/non-stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(callsRound(stream, tc.calls), textRound(stream, "Which plan would you like?")))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, nil)
				body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
				if got := tools.executed(); strings.Join(got, "\n") != strings.Join(tc.executed, "\n") {
					t.Errorf("executed %q; want %q", got, tc.executed)
				}
				if got := botCalls(stream, body); strings.Join(got, "\n") != strings.Join(tc.bot, "\n") {
					t.Errorf("the bot got calls %q; want %q\n%s", got, tc.bot, body)
				}
				if len(tc.bot) == 0 && !strings.Contains(body, "Which plan would you like?") {
					t.Errorf("the user should be asked; got:\n%s", body)
				}
			})
		}
	}
}

// TestRefusalSaysWhy: a payment call the turn does not execute gets a
// result that tells the model why, so that what it asks the user fits:
// the turn's budget (with its number), or a call without one name.
func TestRefusalSaysWhy(t *testing.T) {
	const (
		buy      = `{"id":"call_%d","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
		nameless = `{"id":"call_9","type":"function","function":{"arguments":"{\"sku\":\"premium-monthly\"}"}}`
	)
	tests := []struct {
		name     string
		calls    string
		maxCalls int
		refused  string // the refused call's id, paygate's (uniqueCallIDs)
		want     string
	}{
		{"beyond a budget of one", "[" + fmt.Sprintf(buy, 1) + "," + fmt.Sprintf(buy, 2) + "]", 1, "call_pg_1_1", "only one payment action is allowed per message"},
		{"beyond a budget of two", "[" + fmt.Sprintf(buy, 1) + "," + fmt.Sprintf(buy, 2) + "," + fmt.Sprintf(buy, 3) + "]", 2, "call_pg_1_2", "only 2 payment actions are allowed per message"},
		{"a call without a name", "[" + nameless + "]", 1, "call_pg_1_0", "no single name"},
		{"a custom call named like a payment tool", `[{"id":"call_8","type":"custom","custom":{"name":"create_order","input":"{\"sku\":\"premium-monthly\"}"}}]`, 1, "call_pg_1_0", "function tool"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(callsRound(true, tc.calls), textRound(true, "Shall I?")))
			url := toolsProxy(t, fp.URL, &recordingTools{}, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = tc.maxCalls })
			readAll(t, post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			reqs := fp.requests()
			res := gjson.GetBytes(reqs[len(reqs)-1].Body, `messages.#(tool_call_id=="`+tc.refused+`").content`).Str
			if !strings.Contains(res, "not_executed") || !strings.Contains(res, tc.want) {
				t.Errorf("the refused call's result %q; want not_executed saying %q", res, tc.want)
			}
		})
	}
}

// TestClarificationRoundAsksForNoCall: the round after a clarification
// asks for words by every member of the request that asks for a tool call:
// tool_choice "none" where it offers tools, and the legacy function_call
// "none" where the bot sent one. Only tool_choice was set, always: a
// provider that reads function_call (it forced create_order) had the model
// call it again, refused again round after round until the turn ended with
// the configured clarification in place of the model's question; and a
// request with the legacy functions and no tools got a tool_choice, which
// OpenAI refuses ("'tool_choice' is only allowed when 'tools' are
// specified"), so the user got an error.
func TestClarificationRoundAsksForNoCall(t *testing.T) {
	const functions = `"functions":[{"name":"get_weather","parameters":{"type":"object"}}],`
	for _, tc := range []struct{ name, members, toolChoice, functionCall string }{
		{"function_call forcing create_order", weatherTool + `"function_call":{"name":"create_order"},`, `"none"`, `"none"`},
		{"function_call auto", weatherTool + `"function_call":"auto",`, `"none"`, `"none"`},
		{"tools alone", weatherTool, `"none"`, ``},
		{"legacy functions", functions + `"function_call":"auto",`, ``, `"none"`},
		// No function_call is "auto" for a provider that reads functions:
		// the clarification round must ask for none all the same.
		{"legacy functions without function_call", functions, ``, `"none"`},
	} {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s stream %v", tc.name, stream), func(t *testing.T) {
				up := newFakeProvider(t, roundByRound(
					callsRound(stream, `[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"prem"}}]`),
					textRound(stream, "Which plan would you like?"),
				))
				url := toolsProxy(t, up.URL, &recordingTools{}, nil)
				body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
				reqs := up.requests()
				if len(reqs) != 2 {
					t.Fatalf("%d upstream rounds; want 2: %s", len(reqs), body)
				}
				if got := gjson.GetBytes(reqs[1].Body, "tool_choice").Raw; got != tc.toolChoice {
					t.Errorf("the clarification round's tool_choice %q; want %q", got, tc.toolChoice)
				}
				if got := gjson.GetBytes(reqs[1].Body, "function_call").Raw; got != tc.functionCall {
					t.Errorf("the clarification round's function_call %q; want %q", got, tc.functionCall)
				}
			})
		}
	}
}

// openaiStrict validates history as OpenAI does: an assistant tool call
// with an empty function name is a 400 ("Invalid
// 'messages[2].tool_calls[0].function.name': empty string"). Otherwise it
// serves next.
func openaiStrict(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bad := false
		gjson.GetBytes(b, "messages.#.tool_calls.#.function.name").ForEach(func(_, per gjson.Result) bool {
			per.ForEach(func(_, n gjson.Result) bool {
				bad = bad || n.Str == ""
				return true
			})
			return true
		})
		if bad {
			jsonHandler(400, `{"error":{"message":"Invalid 'messages[2].tool_calls[0].function.name': empty string. Expected a string with minimum length 1, but got an empty string instead.","type":"invalid_request_error","param":"messages[2].tool_calls[0].function.name","code":"empty_string"}}`)(w, r)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		next(w, r)
	}
}

// TestNamelessCallGoesBackNamed: a tool call that came without a name
// (StepFun and Xiaomi MiMo send some so), or named twice, is refused, and
// goes back to the provider under a placeholder name with its refusal, in
// the next round and in the exchange kept for the bot's follow-up. It went
// back with an empty name, which OpenAI refuses with a 400: the user got an
// error in place of the question, and every follow-up of a mixed round
// failed the same way while the exchange was kept.
func TestNamelessCallGoesBackNamed(t *testing.T) {
	const nameless = `{"id":"call_x","type":"function","function":{"arguments":"{\"sku\":\"premium-monthly\"}"}}`
	const twice = `{"id":"call_x","type":"function","function":{"name":"get_weather","name":"create_order","arguments":"{}"}}`
	const own = `{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}`
	for _, tc := range []struct {
		name, call string
	}{{"without a name", nameless}, {"named twice", twice}} {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s stream %v", tc.name, stream), func(t *testing.T) {
				up := newFakeProvider(t, openaiStrict(roundByRound(
					callsRound(stream, "["+tc.call+"]"),
					textRound(stream, "Which plan would you like?"),
				)))
				url := toolsProxy(t, up.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != 200 || !strings.Contains(body, "Which plan would you like?") || strings.Contains(body, `"error"`) {
					t.Errorf("the user should get the question; got %d:\n%s", resp.StatusCode, body)
				}
				reqs := up.requests()
				res := gjson.GetBytes(reqs[len(reqs)-1].Body, `messages.#(tool_call_id=="call_pg_1_0").content`).Str
				if !strings.Contains(res, "no single name") {
					t.Errorf("the refused call's result %q; want the refusal naming why", res)
				}
			})
			t.Run(fmt.Sprintf("%s beside the bot's call, follow-up, stream %v", tc.name, stream), func(t *testing.T) {
				up := newFakeProvider(t, openaiStrict(roundByRound(
					callsRound(stream, "["+tc.call+","+own+"]"),
					textRound(stream, "It is sunny."),
				)))
				url := toolsProxy(t, up.URL, &recordingTools{}, nil)
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), hdr).Body)
				sf := ""
				if stream {
					sf = `"stream":true,`
				}
				follow := `{"model":"gpt-test",` + sf + weatherTool + `"messages":[{"role":"user","content":"buy premium"},` +
					`{"role":"assistant","content":null,"tool_calls":[` + own + `]},{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
				resp := post(t, url, "/v1/chat/completions", follow, hdr)
				body := readAll(t, resp.Body)
				if resp.StatusCode != 200 || !strings.Contains(body, "It is sunny.") {
					t.Errorf("the bot's follow-up got %d:\n%s", resp.StatusCode, body)
				}
				reqs := up.requests()
				if last := reqs[len(reqs)-1].Body; !gjson.GetBytes(last, `messages.#(tool_call_id=="`+keptCallID+`")`).Exists() {
					t.Errorf("the kept exchange was not restored into the follow-up: %s", last)
				}
			})
		}
	}
}

// TestRefusalOfAnUnreadCallHoldsTheFollowUp: a payment call refused
// because paygate could not read it as a function call to a payment tool
// (one without a name or named twice, a custom call to one) asks the user
// to clarify, and that still stands in the bot's follow-up with its own
// tool's result: the model's create_order there is refused, never run.
// The follow-up read only the results of calls whose function name is a
// payment tool's, so these refusals were not seen and the order was made
// before the user said what they wanted.
func TestRefusalOfAnUnreadCallHoldsTheFollowUp(t *testing.T) {
	const own = `{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}`
	for _, tc := range []struct{ name, call string }{
		{"without a name", `{"id":"call_x","type":"function","function":{"arguments":"{\"sku\":\"premium-monthly\"}"}}`},
		{"named twice", `{"id":"call_x","type":"function","function":{"name":"get_weather","name":"create_order","arguments":"{}"}}`},
		{"custom call to a payment tool", `{"id":"call_x","type":"custom","custom":{"name":"create_order","input":"premium-monthly"}}`},
	} {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s stream %v", tc.name, stream), func(t *testing.T) {
				tools := &recordingTools{}
				up := newFakeProvider(t, roundByRound(
					callsRound(stream, "["+tc.call+","+own+"]"),
					callsRound(stream, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`),
					textRound(stream, "Which plan would you like?"),
				))
				url := toolsProxy(t, up.URL, tools, nil)
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), hdr).Body)
				follow := chatBodyWith(stream, weatherTool, `{"role":"user","content":"buy premium"}`,
					`{"role":"assistant","content":null,"tool_calls":[`+own+`]}`, `{"role":"tool","tool_call_id":"call_w","content":"sunny"}`)
				body := readAll(t, post(t, url, "/v1/chat/completions", follow, hdr).Body)
				reqs := up.requests()
				if !gjson.GetBytes(reqs[1].Body, `messages.#(tool_call_id=="`+keptCallID+`")`).Exists() {
					t.Fatalf("the kept exchange was not restored into the follow-up: %s", reqs[1].Body)
				}
				if ex := tools.executed(); len(ex) != 0 {
					t.Errorf("executed %q in the follow-up of a refusal that asked the user to clarify: %s", ex, body)
				}
			})
		}
	}
}

// objectArgsOnly validates history as SGLang does since
// sgl-project/sglang#28035, and as Gemini, whose function call arguments
// are a Struct: every assistant tool call's arguments must parse to a JSON
// object, else 400. Otherwise it serves next.
func objectArgsOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bad := false
		gjson.GetBytes(b, "messages.#.tool_calls.#.function.arguments").ForEach(func(_, per gjson.Result) bool {
			per.ForEach(func(_, a gjson.Result) bool {
				var v any
				_ = json.Unmarshal([]byte(a.Str), &v) // nil when it does not parse
				_, isObject := v.(map[string]any)
				bad = bad || !isObject
				return true
			})
			return true
		})
		if bad {
			jsonHandler(400, `{"error":{"message":"tool call arguments must be a JSON object","type":"BadRequestError","param":null,"code":400}}`)(w, r)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		next(w, r)
	}
}

// A payment call whose arguments are JSON but no object, in a mixed round,
// does not carry them into the bot's follow-up through the kept exchange
// either: they go back as {}.
func TestNonObjectPaymentArgumentsInAKeptExchange(t *testing.T) {
	r0 := sseHandler(
		roundChunk+`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"[\"premium-monthly\"]"}}]},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
	r1 := sseHandler(
		roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Sunny. Which plan?"},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")
	fp := newFakeProvider(t, objectArgsOnly(roundByRound(r0, r1)))
	url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
	hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,`+weatherTool+`"messages":[{"role":"user","content":"buy premium; weather?"}]}`, hdr).Body)
	follow := `{"model":"gpt-test","stream":true,` + weatherTool + `"messages":[{"role":"user","content":"buy premium; weather?"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},` +
		`{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
	resp := post(t, url, "/v1/chat/completions", follow, hdr)
	if body := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(body, "Which plan?") {
		t.Errorf("bot's follow-up: %d %s", resp.StatusCode, body)
	}
	seen := fp.requests()
	if last := string(seen[len(seen)-1].Body); !strings.Contains(last, `"`+keptCallID+`"`) {
		t.Errorf("the follow-up reached the provider without the kept payment exchange (%s):\n%s", keptCallID, last)
	}
}
