package proxy

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// queryCall is a raw tool_calls entry: query_order of order no, under id
// (none when ""), at index i of its round.
func queryCall(i int, id, no string) string {
	return `{"index":` + strconv.Itoa(i) + `,"id":"` + id + `","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"` + no + `\"}"}}`
}

// keptCallID is the id paygate gives the payment call at index 0 of a
// turn's first round that also hands the bot calls of its own: the call
// of the exchange kept for the bot's follow-up (uniqueCallIDs).
const keptCallID = "call_pg_1_0"

// weatherCall is the bot's own get_weather call under id at index i.
func weatherCall(i int, id string) string {
	return `{"index":` + strconv.Itoa(i) + `,"id":"` + id + `","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}`
}

// botCallIDs is the ids of the tool calls the bot received, stream or not.
func botCallIDs(stream bool, body string) []string {
	var out []string
	if !stream {
		gjson.Get(body, "choices.0.message.tool_calls.#.id").ForEach(func(_, v gjson.Result) bool { out = append(out, v.Str); return true })
		return out
	}
	for _, c := range streamChunks(body) {
		gjson.Get(c, "choices.0.delta.tool_calls.#.id").ForEach(func(_, v gjson.Result) bool {
			if v.Str != "" {
				out = append(out, v.Str)
			}
			return true
		})
	}
	return out
}

// checkToolIDs fails t unless every assistant message with tool_calls of
// the upstream request body names ids no other call of the request names,
// and is followed by one tool result per call, in its order.
func checkToolIDs(t *testing.T, body []byte) {
	t.Helper()
	seen := map[string]bool{}
	var pending []string
	ok := true
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		switch m.Get("role").Str {
		case "assistant":
			if len(pending) > 0 {
				ok = false
			}
			pending = nil
			m.Get("tool_calls.#.id").ForEach(func(_, v gjson.Result) bool {
				if v.Str == "" || seen[v.Str] {
					ok = false
				}
				seen[v.Str] = true
				pending = append(pending, v.Str)
				return true
			})
		case "tool":
			if len(pending) == 0 || m.Get("tool_call_id").Str != pending[0] {
				ok = false
			} else {
				pending = pending[1:]
			}
		}
		return true
	})
	if !ok || len(pending) > 0 {
		t.Errorf("upstream messages %s; want each call named once in the request and answered once, in order", gjson.GetBytes(body, "messages").Raw)
	}
}

// TestMixedRoundPaymentCallIDsOwnTheirs: in a mixed round the model named
// its payment call and the bot's own call alike ("call_1"); the exchange
// kept for the bot's next request merged them, so that request carried one
// id twice, which a strict provider refuses (400), and every retry restored
// the same exchange. The payment call gets an id of its own; the bot's
// calls keep theirs, which the bot holds. So too when the id paygate makes
// for a payment call without one is the bot's.
func TestMixedRoundPaymentCallIDsOwnTheirs(t *testing.T) {
	for _, tc := range []struct {
		name, pay, bot string
	}{
		{"one id for both", "call_1", "call_1"},
		{"the made id is the bot's", "", "call_pg_1_0"},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "/non-stream", true: "/stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(
					callsRound(stream, `[`+queryCall(0, tc.pay, "X1")+`,`+weatherCall(1, tc.bot)+`]`),
					textRound(stream, "It is paid, and sunny.")))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				const user = `{"role":"user","content":"X1 paid? weather?"}`
				resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, user), hdr)
				body := readAll(t, resp.Body)
				if got := botCallIDs(stream, body); !slices.Equal(got, []string{tc.bot}) {
					t.Fatalf("the bot got calls %q; want its own, %q (%d %s)", got, tc.bot, resp.StatusCode, body)
				}
				next := chatBodyWith(stream, weatherTool, user,
					`{"role":"assistant","content":null,"tool_calls":[{"id":"`+tc.bot+`","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]}`,
					`{"role":"tool","tool_call_id":"`+tc.bot+`","content":"sunny"}`)
				resp = post(t, url, "/v1/chat/completions", next, hdr)
				body = readAll(t, resp.Body)
				reqs := fp.requests()
				if len(reqs) != 2 {
					t.Fatalf("%d upstream requests; want 2 (the bot got %d %s)", len(reqs), resp.StatusCode, body)
				}
				up := reqs[1].Body
				checkToolIDs(t, up)
				if got := gjson.Get(assistantToolMessage(up), "tool_calls.#.id").Array(); len(got) != 2 || got[1].Str != tc.bot {
					t.Errorf("the restored assistant message names %s; want the payment call's id, then the bot's %q", got, tc.bot)
				}
			})
		}
	}
}

// TestMadePaymentCallIDNotTaken: the id paygate makes for a payment call
// ("call_pg_<round>_<i>") was checked against the round's earlier calls
// only: the model's ids "call_pg_1_1" and "" gave both calls call_pg_1_1.
// Each call gets one of paygate's now, none the model's ids.
func TestMadePaymentCallIDNotTaken(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(
				callsRound(stream, `[`+queryCall(0, "call_pg_1_1", "X1")+`,`+queryCall(1, "", "X2")+`]`),
				textRound(stream, "Both checked.")))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, "", `{"role":"user","content":"X1, X2?"}`),
				map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			reqs := fp.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream requests; want 2 (the bot got %d %s)", len(reqs), resp.StatusCode, body)
			}
			checkToolIDs(t, reqs[1].Body)
			if got := gjson.Get(assistantToolMessage(reqs[1].Body), "tool_calls.#.id").Raw; got != `["call_pg_1_0","call_pg_1_1_2"]` {
				t.Errorf("the calls' ids %s; want [call_pg_1_0 call_pg_1_1_2], none the model's call_pg_1_1", got)
			}
		})
	}
}

// TestPaymentCallIDsUniqueInTurn: a model that names a later round's
// payment call as an earlier round's ("call_1" twice), or as a call of the
// conversation the bot sent, gave one upstream request two assistant
// messages calling one id, which strict providers refuse.
func TestPaymentCallIDsUniqueInTurn(t *testing.T) {
	const history = `{"role":"user","content":"weather?"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},` +
		`{"role":"tool","tool_call_id":"call_1","content":"sunny"},{"role":"assistant","content":"Sunny."},`
	for _, tc := range []struct {
		name, history string
	}{{"across rounds", ""}, {"and the conversation's", history}} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "/non-stream", true: "/stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(
					callsRound(stream, `[`+queryCall(0, "call_1", "X1")+`]`),
					callsRound(stream, `[`+queryCall(0, "call_1", "X2")+`]`),
					textRound(stream, "Both checked.")))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, "", tc.history+`{"role":"user","content":"X1, X2?"}`),
					map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				reqs := fp.requests()
				if len(reqs) != 3 {
					t.Fatalf("%d upstream requests; want 3 (the bot got %d %s)", len(reqs), resp.StatusCode, body)
				}
				checkToolIDs(t, reqs[1].Body)
				checkToolIDs(t, reqs[2].Body)
				if !strings.Contains(answerText(stream, body), "Both checked.") {
					t.Errorf("the bot got %d %s", resp.StatusCode, body)
				}
			})
		}
	}
}

// chatBodyWith is a chat request with the given members (each with its
// trailing comma) and messages, streamed or not.
func chatBodyWith(stream bool, members string, messages ...string) string {
	if stream {
		members = `"stream":true,` + members
	}
	return `{"model":"gpt-test",` + members + `"messages":[` + strings.Join(messages, ",") + `]}`
}

// TestKeptPaymentCallIDsAreNotTheBots: the bot's own call of a later round
// named like a payment call of an earlier round of the turn ("call_0" in
// round one for create_order, in round two for get_weather: providers
// that number their ids per answer). The bot keeps its id, which it holds;
// the exchange kept for its next request carried the payment call under
// the same id, so that request named call_0 twice (two assistant calls,
// two results), which strict providers refuse (400) on every retry of the
// bot's. The kept payment call and its result get an id of their own.
func TestKeptPaymentCallIDsAreNotTheBots(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			pay := `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
			fp := newFakeProvider(t, roundByRound(callsRound(stream, pay), callsRound(stream, "["+weatherCall(0, "call_0")+"]"), textRound(stream, "Sunny.")))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, `{"role":"user","content":"buy"}`), hdr).Body)
			if got := botCallIDs(stream, body); !slices.Equal(got, []string{"call_0"}) {
				t.Fatalf("the bot got calls %q; want its own call_0 (%s)", got, body)
			}
			asst := `{"role":"assistant","content":null,"tool_calls":[{"id":"call_0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]}`
			follow := chatBodyWith(stream, weatherTool, `{"role":"user","content":"buy"}`, asst, `{"role":"tool","tool_call_id":"call_0","content":"sunny"}`)
			readAll(t, post(t, url, "/v1/chat/completions", follow, hdr).Body)
			reqs := fp.requests()
			last := reqs[len(reqs)-1].Body
			if !strings.Contains(string(last), "create_order") {
				t.Fatalf("the follow-up carries no kept payment exchange: %s", last)
			}
			checkToolIDs(t, last)
			if got := gjson.GetBytes(last, `messages.#(tool_call_id=="call_0").content`).Str; got != "sunny" {
				t.Errorf("the bot's result for call_0 is %q; want its own, sunny", got)
			}
		})
	}
}

// TestRestoredPaymentCallIDsAreNotTheBots: as above across turns. A mixed
// round kept create_order as call_0 beside the bot's call_1; the bot's
// next turn got its own call named call_0 (a new answer, numbered from 0),
// and its request after that, restored, named call_0 twice.
func TestRestoredPaymentCallIDsAreNotTheBots(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			mixed := `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` + weatherCall(1, "call_1") + `]`
			fp := newFakeProvider(t, roundByRound(callsRound(stream, mixed), callsRound(stream, "["+weatherCall(0, "call_0")+"]"), textRound(stream, "Sunny.")))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
			const w = `"type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]}`
			msgs := []string{`{"role":"user","content":"buy"}`}
			readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
			msgs = append(msgs, `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1",`+w, `{"role":"tool","tool_call_id":"call_1","content":"sunny"}`)
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
			if got := botCallIDs(stream, body); !slices.Equal(got, []string{"call_0"}) {
				t.Fatalf("the bot's second turn got calls %q; want call_0 (%s)", got, body)
			}
			msgs = append(msgs, `{"role":"assistant","content":null,"tool_calls":[{"id":"call_0",`+w, `{"role":"tool","tool_call_id":"call_0","content":"still sunny"}`)
			readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
			reqs := fp.requests()
			last := reqs[len(reqs)-1].Body
			if !strings.Contains(string(last), "create_order") {
				t.Fatalf("the third request carries no kept payment exchange: %s", last)
			}
			checkToolIDs(t, last)
			if got := gjson.GetBytes(last, `messages.#(tool_call_id=="call_0").content`).Str; got != "still sunny" {
				t.Errorf("the result for call_0 is %q; want the bot's own, still sunny", got)
			}
		})
	}
}

// TestBotCallWithoutIDGetsOne: a provider that sends tool calls without
// ids (no "id", or an empty one) in a round that mixes a payment call with
// the bot's own. The bot got its call without an id, so its next request
// could not name it (the Node SDK's stream helper makes up a random one),
// the payment exchange kept for that request under the call's id never
// came back, and the request ran as a new message of the user's. The
// bot's call now gets an id of its own, one that request brings back.
func TestBotCallWithoutIDGetsOne(t *testing.T) {
	for _, tc := range []struct{ name, bot string }{
		{"no id member", `{"index":1,"type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}`},
		{"empty id", weatherCall(1, "")},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "/non-stream", true: "/stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(
					callsRound(stream, `[`+queryCall(0, "", "X1")+`,`+tc.bot+`]`),
					textRound(stream, "It is paid, and sunny.")))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				const user = `{"role":"user","content":"X1 paid? weather?"}`
				resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, user), hdr)
				body := readAll(t, resp.Body)
				ids := botCallIDs(stream, body)
				if len(ids) != 1 || ids[0] == "" {
					t.Fatalf("the bot got call ids %q; want one id for its get_weather call (%d %s)", ids, resp.StatusCode, body)
				}
				id := ids[0]
				next := chatBodyWith(stream, weatherTool, user,
					`{"role":"assistant","content":null,"tool_calls":[{"id":"`+id+`","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]}`,
					`{"role":"tool","tool_call_id":"`+id+`","content":"sunny"}`)
				resp = post(t, url, "/v1/chat/completions", next, hdr)
				body = readAll(t, resp.Body)
				reqs := fp.requests()
				if len(reqs) != 2 {
					t.Fatalf("%d upstream requests; want 2 (the bot got %d %s)", len(reqs), resp.StatusCode, body)
				}
				up := reqs[1].Body
				checkToolIDs(t, up)
				got := gjson.Get(assistantToolMessage(up), "tool_calls.#.function.name").Array()
				if len(got) != 2 || got[0].Str != "query_order" || got[1].Str != "get_weather" {
					t.Errorf("the bot's next request reached the provider with the calls %s; want the payment exchange back: query_order, then get_weather", got)
				}
			})
		}
	}
}

// TestRestoredResultsFollowCallOrder: in a mixed round whose assistant
// message lists the bot's call before the payment call (or the payment
// call between two of the bot's), the bot's next request got the kept
// exchange back with the payment result first and the bot's results after
// it, out of the order of the calls. Providers that pair results with
// calls by position (Gemini's OpenAI-compatible layer, DeepSeek and vLLM
// chat templates) refuse that or pair the wrong result with a call. The
// upstream gets one result per call in the calls' order, the bot's results
// byte for byte as it sent them.
func TestRestoredResultsFollowCallOrder(t *testing.T) {
	const weatherB = `{"index":2,"id":"call_wb","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"BJ\"}"}}`
	for _, tc := range []struct {
		name  string
		calls string
		bot   []string // the bot's calls, in their order
	}{
		{"bot call first", `[` + weatherCall(0, "call_w") + `,` + queryCall(1, "call_q", "X1") + `]`, []string{"call_w"}},
		{"payment call between", `[` + weatherCall(0, "call_w") + `,` + queryCall(1, "call_q", "X1") + `,` + weatherB + `]`, []string{"call_w", "call_wb"}},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "/non-stream", true: "/stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(callsRound(stream, tc.calls), textRound(stream, "It is paid, and sunny.")))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				const user = `{"role":"user","content":"X1 paid? weather?"}`
				resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, user), hdr)
				body := readAll(t, resp.Body)
				if got := botCallIDs(stream, body); !slices.Equal(got, tc.bot) {
					t.Fatalf("the bot got calls %q; want its own, %q (%d %s)", got, tc.bot, resp.StatusCode, body)
				}
				var calls, results []string
				for _, id := range tc.bot {
					city := map[string]string{"call_w": "SH", "call_wb": "BJ"}[id]
					calls = append(calls, `{"id":"`+id+`","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"`+city+`\"}"}}`)
					// Spacing and a field of the bot's own: its results reach the upstream as it sent them.
					results = append(results, `{ "role": "tool", "tool_call_id": "`+id+`", "content": "sunny in `+city+`", "x_bot": [1, 2] }`)
				}
				next := chatBodyWith(stream, weatherTool, append([]string{user,
					`{"role":"assistant","content":null,"tool_calls":[` + strings.Join(calls, ",") + `]}`}, results...)...)
				resp = post(t, url, "/v1/chat/completions", next, hdr)
				body = readAll(t, resp.Body)
				reqs := fp.requests()
				if len(reqs) != 2 {
					t.Fatalf("%d upstream requests; want 2 (the bot got %d %s)", len(reqs), resp.StatusCode, body)
				}
				up := reqs[1].Body
				checkToolIDs(t, up)
				for _, r := range results {
					if !strings.Contains(string(up), r) {
						t.Errorf("the upstream request lacks the bot's result %s as it sent it: %s", r, up)
					}
				}
			})
		}
	}
}

// weatherAfterAPurchase holds a conversation whose first turn keeps a
// payment exchange to the provider's prompt cache (SPEC 3), through a
// toolsProxy for fp: four turns of the bot (the user's first message; its
// get_weather call_1 answered; "and tomorrow?"; its own call_0 answered),
// each answered 200 and, when answered is not nil, passing it. fp must
// then have seen rounds requests, each from the third on carrying the one
// before byte for byte (messagesGrowFrom), the last with ids a provider
// takes and the bot's own result for call_0. Both restored-exchange tests
// run this conversation; they differ in the rounds that keep the exchange.
func weatherAfterAPurchase(t *testing.T, stream bool, fp *fakeProvider, first string, rounds int, answered func(body string)) {
	t.Helper()
	url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
	hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	const w = `"type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]}`
	msgs := []string{first}
	turn := func(add ...string) {
		t.Helper()
		msgs = append(msgs, add...)
		resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr)
		b := readAll(t, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("the bot got %d %s", resp.StatusCode, b)
		}
		if answered != nil {
			answered(b)
		}
	}
	turn()
	turn(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1",`+w, `{"role":"tool","tool_call_id":"call_1","content":"sunny"}`)
	turn(`{"role":"assistant","content":"Sunny; ordered."}`, `{"role":"user","content":"and tomorrow?"}`)
	turn(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_0",`+w, `{"role":"tool","tool_call_id":"call_0","content":"still sunny"}`)
	reqs := fp.requests()
	if len(reqs) != rounds {
		t.Fatalf("%d upstream requests; want %d", len(reqs), rounds)
	}
	messagesGrowFrom(t, reqs, 2)
	last := reqs[rounds-1].Body
	checkToolIDs(t, last)
	if got := gjson.GetBytes(last, `messages.#(tool_call_id=="call_0").content`).Str; got != "still sunny" {
		t.Errorf("the result for call_0 is %q; want the bot's own, still sunny", got)
	}
}

// TestRestoredExchangeStaysAsTheConversationGrows: each request of a
// conversation with a kept payment exchange carries the request before it
// byte for byte, with the new messages after it, so that the provider's
// prompt cache keeps hitting (SPEC 3). A mixed round kept create_order
// under the model's call_0 beside the bot's call_1 (a provider that
// numbers ids per answer); the bot's next turn got its own call named
// call_0, and from then on the kept create_order went back renamed: the
// request diverged from the one before at the exchange, early in the
// conversation, and the provider read all that followed as new.
func TestRestoredExchangeStaysAsTheConversationGrows(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			mixed := `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` + weatherCall(1, "call_1") + `]`
			fp := newFakeProvider(t, roundByRound(callsRound(stream, mixed), textRound(stream, "Sunny; ordered."),
				callsRound(stream, "["+weatherCall(0, "call_0")+"]"), textRound(stream, "Still sunny.")))
			weatherAfterAPurchase(t, stream, fp, `{"role":"user","content":"buy premium if it is sunny"}`, 4, nil)
		})
	}
}

// TestRestoredEarlierRoundStaysAsTheConversationGrows is
// TestRestoredExchangeStaysAsTheConversationGrows for the kept exchange's
// earlier rounds: a payment-only round (create_order under the model's
// call_0) before the round that hands the bot its get_weather (call_1).
// That round is kept with the bot's call and goes back into each later
// request; under the model's call_0, the bot's next turn got its own
// call_0 from the same provider, and from then on the kept round went back
// renamed, departing from the request before early in the conversation.
func TestRestoredEarlierRoundStaysAsTheConversationGrows(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			buy := `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
			fp := newFakeProvider(t, roundByRound(callsRound(stream, buy), callsRound(stream, "["+weatherCall(0, "call_1")+"]"),
				textRound(stream, "Sunny; ordered."), callsRound(stream, "["+weatherCall(0, "call_0")+"]"), textRound(stream, "Still sunny.")))
			weatherAfterAPurchase(t, stream, fp, `{"role":"user","content":"buy premium, then tell me the weather"}`, 5, func(b string) {
				if ids := botCallIDs(stream, b); len(ids) > 0 && !slices.Contains([]string{"call_0", "call_1"}, ids[0]) {
					t.Fatalf("the bot got its call under %v; want the model's id", ids)
				}
			})
		})
	}
}

// messagesGrowFrom fails t for each request from reqs[from] on whose
// messages do not begin with the whole of the request before's,
// naming the byte where they part: a provider's prompt cache holds a
// conversation's prefix only while each request repeats the last one's.
func messagesGrowFrom(t *testing.T, reqs []seenRequest, from int) {
	t.Helper()
	for i := from; i < len(reqs); i++ {
		prev := gjson.GetBytes(reqs[i-1].Body, "messages").Raw
		cur := gjson.GetBytes(reqs[i].Body, "messages").Raw
		prev = prev[:len(prev)-1] // open: the next request adds to it
		if !strings.HasPrefix(cur, prev) {
			n := 0
			for n < len(prev) && prev[n] == cur[n] {
				n++
			}
			t.Errorf("request %d's messages depart from request %d's after %d of its %d bytes:\n  was …%s\n  now …%s",
				i+1, i, n, len(prev), prev[max(0, n-40):min(len(prev), n+40)], cur[max(0, n-40):min(len(cur), n+40)])
		}
	}
}
