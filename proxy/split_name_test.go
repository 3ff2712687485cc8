package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// callDelta is a streamed chunk of choice 0 holding one tool-call entry.
func callDelta(entry string) string {
	return roundChunk + `[{"index":0,"delta":{"tool_calls":[` + entry + `]},"finish_reason":null}]}` + "\n\n"
}

// callRound streams a round of tool calls: a role chunk, chunks, a
// tool_calls finish and [DONE].
func callRound(chunks ...string) http.HandlerFunc {
	round := append([]string{roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n"}, chunks...)
	return sseHandler(append(round, roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")...)
}

// streamedCallTurn posts one streamed turn of user o-user-1, offering the
// bot's tools (a "tools" member, or ""), to a proxy in front of a provider
// answering with h, and returns the payment calls that ran, the calls the
// bot got, the stream it read and the provider.
func streamedCallTurn(t *testing.T, botTools string, h http.HandlerFunc) (executed, bot []string, body string, fp *fakeProvider) {
	t.Helper()
	fp = newFakeProvider(t, h)
	tools := &recordingTools{}
	body = postTurn(t, toolsProxy(t, fp.URL, tools, nil), true, botTools)
	return tools.executed(), botCalls(true, body), body, fp
}

// postTurn posts one turn of user o-user-1, streamed or not, offering the
// bot's tools (a "tools" member, or ""), to the proxy at url, and returns
// the answer the bot read, failing the test unless it is a 200.
func postTurn(t *testing.T, url string, stream bool, botTools string) string {
	t.Helper()
	resp := post(t, url, "/v1/chat/completions", chatBody(stream, botTools), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return body
}

// callTurnCase is a streamed turn whose first round is the tool calls in
// deltas, offering the bot's tools (a "tools" member, or ""), and whose
// next round is an answer.
type callTurnCase struct {
	name, tools string
	deltas      []string
	executed    []string // the payment calls that ran
	bot         []string // the calls the bot got
}

// run posts the turn, checks the payment calls that ran and the calls the
// bot got, and returns the stream the bot read and the provider.
func (tc callTurnCase) run(t *testing.T) (body string, fp *fakeProvider) {
	t.Helper()
	executed, bot, body, fp := streamedCallTurn(t, tc.tools, roundByRound(callRound(tc.deltas...), textRound(true, "Order O1 is waiting for payment.")))
	if !slices.Equal(executed, tc.executed) {
		t.Errorf("executed %q; want %q", executed, tc.executed)
	}
	if !slices.Equal(bot, tc.bot) {
		t.Errorf("the bot got calls %q; want %q:\n%s", bot, tc.bot, body)
	}
	return body, fp
}

// checkRounds: a turn that ran a payment call asked fp a second round for
// the answer; one that only handed the bot its calls, none.
func (tc callTurnCase) checkRounds(t *testing.T, fp *fakeProvider) {
	t.Helper()
	want := 1
	if len(tc.executed) > 0 {
		want = 2
	}
	if got := len(fp.requests()); got != want {
		t.Errorf("%d upstream rounds; want %d", got, want)
	}
}

// TestToolNameSplitAcrossDeltas: some providers stream a tool's name in
// pieces ("create_" in a call's first delta, "order" in a later one of the
// same index or id; Gemini is reported to), where OpenAI sends it whole in
// the first. paygate read each piece as a call of its own: the bot got a
// bogus call of a tool "create_" (and "order"), and the model's
// create_order never ran. A name that is still the start of a payment
// tool's is now held until it is whole: a payment call runs, and a call of
// the bot's own tool whose name starts a payment tool's ("query", beside
// query_order) goes out as soon as its arguments start, whole. Names that
// come whole, once or repeated in every delta (Qwen), read as before.
func TestToolNameSplitAcrossDeltas(t *testing.T) {
	const queryTool = `"tools":[{"type":"function","function":{"name":"query","parameters":{"type":"object"}}}],`
	tests := []callTurnCase{
		{"by index", "", []string{
			callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"order"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, nil},
		{"by id, without an index", "", []string{
			callDelta(`{"id":"call_c","type":"function","function":{"name":"create"}}`),
			callDelta(`{"id":"call_c","function":{"name":"_ord"}}`),
			callDelta(`{"id":"call_c","function":{"name":"er","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, nil},
		{"whole, repeated in every delta", "", []string{
			callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":""}}`),
			callDelta(`{"index":0,"id":"","function":{"name":"create_order","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, nil},
		{"the bot's own tool named like the start of a payment tool", queryTool, []string{
			callDelta(`{"index":0,"id":"call_q","type":"function","function":{"name":"query","arguments":""}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"q\":"}}`),
			callDelta(`{"index":0,"function":{"arguments":"1}"}}`),
		}, nil, []string{`query {"q":1}`}},
		{"the bot's own tool, its name split", queryTool, []string{
			callDelta(`{"index":0,"id":"call_q","type":"function","function":{"name":"que","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"ry"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"q\":1}"}}`),
		}, nil, []string{`query {"q":1}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, fp := tc.run(t)
			tc.checkRounds(t, fp)
			if len(tc.bot) > 0 && !strings.Contains(body, `"finish_reason":"tool_calls"`) {
				t.Errorf("no finish_reason tool_calls for the bot's call:\n%s", body)
			}
		})
	}
}

// TestCallAfterAHeldNameUnderItsIndex: a provider that gives every call
// index 0 and no id, and sends a call's arguments with its name, had the
// bot's call of its own tool "query" (no arguments: the start of
// query_order's name, so held while it might grow) continued by the next
// call's name: the bot got a call "queryquery_order" with the payment
// call's arguments, and the query_order never ran. A payment tool's whole
// name is another call, and the held call, ended by it, goes to the bot
// whole, as it did before names were read in pieces.
func TestCallAfterAHeldNameUnderItsIndex(t *testing.T) {
	const queryTool = `"tools":[{"type":"function","function":{"name":"query","parameters":{"type":"object"}}}],`
	calls := `[{"index":0,"type":"function","function":{"name":"query","arguments":""}}]`
	second := `[{"index":0,"type":"function","function":{"name":"query_order","arguments":"{\"order_id\":\"O1\"}"}}]`
	executed, bot, body, _ := streamedCallTurn(t, queryTool, sseHandler(
		roundChunk+`[{"index":0,"delta":{"role":"assistant","tool_calls":`+calls+`},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{"tool_calls":`+second+`},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n"))
	if want := []string{`query_order {"order_id":"O1"}`}; !slices.Equal(executed, want) {
		t.Errorf("executed %q; want %q", executed, want)
	}
	if want := []string{"query "}; !slices.Equal(bot, want) {
		t.Errorf("the bot got calls %q; want %q:\n%s", bot, want, body)
	}
	if strings.Contains(body, "O1") {
		t.Errorf("the payment call's arguments reached the bot:\n%s", body)
	}
}

// TestHeldNameEndedByTheFinish: a call of the bot's own tool whose name is
// the start of a payment tool's ("query", beside query_order) is held
// while its name might grow, until its arguments start; a provider that
// sends such a call without arguments (a tool with no parameters) had it
// held for good: at the finish it was refused as a call without a name,
// the model told so in another round, and the bot never got its call. The
// finish ends the name: the call goes to the bot, whole, before the finish.
func TestHeldNameEndedByTheFinish(t *testing.T) {
	const queryTool = `"tools":[{"type":"function","function":{"name":"query","parameters":{"type":"object"}}}],`
	tests := []struct {
		name     string
		deltas   []string
		executed []string
		bot      []string
	}{
		{"alone", []string{
			callDelta(`{"index":0,"id":"call_q","type":"function","function":{"name":"query","arguments":""}}`),
		}, nil, []string{"query "}},
		{"beside a payment call", []string{
			callDelta(`{"index":0,"id":"call_q","type":"function","function":{"name":"query","arguments":""}}`),
			callDelta(`{"index":1,"id":"call_c","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, []string{"query "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			executed, bot, body, fp := streamedCallTurn(t, queryTool, roundByRound(callRound(tc.deltas...), textRound(true, "Done.")))
			if !slices.Equal(executed, tc.executed) {
				t.Errorf("executed %q; want %q", executed, tc.executed)
			}
			if !slices.Equal(bot, tc.bot) {
				t.Errorf("the bot got calls %q; want %q:\n%s", bot, tc.bot, body)
			}
			if got := len(fp.requests()); got != 1 {
				t.Errorf("%d upstream rounds; want 1 (the bot's call ends the turn)", got)
			}
			if !strings.Contains(body, `"finish_reason":"tool_calls"`) || strings.Index(body, `"name":"query"`) > strings.Index(body, `"finish_reason":"tool_calls"`) {
				t.Errorf("the bot's call did not come before a finish_reason tool_calls:\n%s", body)
			}
		})
	}
}

// TestPaymentNameInPiecesAfterAHeldNameUnderItsIndex: with a provider that
// gives every call index 0 and no id and streams names in pieces, the
// bot's call of its own tool "query" without arguments (held: the start of
// query_order's name) followed by query_order in pieces ("query_", then
// "order") was read as one name growing: the bot got a call
// "queryquery_order" with the payment call's arguments, and the
// query_order never ran. A piece that may start a payment tool's name, and
// does not keep the held name the start of one, is another call: the
// payment call runs, and the held call goes to the bot whole before it.
func TestPaymentNameInPiecesAfterAHeldNameUnderItsIndex(t *testing.T) {
	const queryTool = `"tools":[{"type":"function","function":{"name":"query","parameters":{"type":"object"}}}],`
	executed, bot, body, _ := streamedCallTurn(t, queryTool, roundByRound(callRound(
		callDelta(`{"index":0,"type":"function","function":{"name":"query","arguments":""}}`),
		callDelta(`{"index":0,"type":"function","function":{"name":"query_","arguments":""}}`),
		callDelta(`{"index":0,"function":{"name":"order"}}`),
		callDelta(`{"index":0,"function":{"arguments":"{\"order_id\":\"O1\"}"}}`)),
		textRound(true, "Order O1 is paid.")))
	if want := []string{`query_order {"order_id":"O1"}`}; !slices.Equal(executed, want) {
		t.Errorf("executed %q; want %q", executed, want)
	}
	if want := []string{"query "}; !slices.Equal(bot, want) {
		t.Errorf("the bot got calls %q; want %q:\n%s", bot, want, body)
	}
	if strings.Contains(body, "query_") || strings.Contains(body, "O1") {
		t.Errorf("the payment call reached the bot:\n%s", body)
	}
}
