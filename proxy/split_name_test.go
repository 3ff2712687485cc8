package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

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
	delta := func(entry string) string {
		return roundChunk + `[{"index":0,"delta":{"tool_calls":[` + entry + `]},"finish_reason":null}]}` + "\n\n"
	}
	tests := []struct {
		name, tools string
		deltas      []string
		executed    []string // the payment calls that ran
		bot         []string // the calls the bot got
	}{
		{"by index", "", []string{
			delta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_","arguments":""}}`),
			delta(`{"index":0,"function":{"name":"order"}}`),
			delta(`{"index":0,"function":{"arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, nil},
		{"by id, without an index", "", []string{
			delta(`{"id":"call_c","type":"function","function":{"name":"create"}}`),
			delta(`{"id":"call_c","function":{"name":"_ord"}}`),
			delta(`{"id":"call_c","function":{"name":"er","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, nil},
		{"whole, repeated in every delta", "", []string{
			delta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":""}}`),
			delta(`{"index":0,"id":"","function":{"name":"create_order","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, nil},
		{"the bot's own tool named like the start of a payment tool", queryTool, []string{
			delta(`{"index":0,"id":"call_q","type":"function","function":{"name":"query","arguments":""}}`),
			delta(`{"index":0,"function":{"arguments":"{\"q\":"}}`),
			delta(`{"index":0,"function":{"arguments":"1}"}}`),
		}, nil, []string{`query {"q":1}`}},
		{"the bot's own tool, its name split", queryTool, []string{
			delta(`{"index":0,"id":"call_q","type":"function","function":{"name":"que","arguments":""}}`),
			delta(`{"index":0,"function":{"name":"ry"}}`),
			delta(`{"index":0,"function":{"arguments":"{\"q\":1}"}}`),
		}, nil, []string{`query {"q":1}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			round0 := append([]string{roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n"}, tc.deltas...)
			round0 = append(round0, roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
			fp := newFakeProvider(t, roundByRound(sseHandler(round0...), textRound(true, "Order O1 is waiting for payment.")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(true, tc.tools), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := tools.executed(); !slices.Equal(got, tc.executed) {
				t.Errorf("executed %q; want %q", got, tc.executed)
			}
			if got := botCalls(true, body); !slices.Equal(got, tc.bot) {
				t.Errorf("the bot got calls %q; want %q:\n%s", got, tc.bot, body)
			}
			wantRounds := 1
			if len(tc.executed) > 0 {
				wantRounds = 2
			}
			if got := len(fp.requests()); got != wantRounds {
				t.Errorf("%d upstream rounds; want %d", got, wantRounds)
			}
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
	fp := newFakeProvider(t, sseHandler(
		roundChunk+`[{"index":0,"delta":{"role":"assistant","tool_calls":`+calls+`},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{"tool_calls":`+second+`},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n"))
	tools := &recordingTools{}
	url := toolsProxy(t, fp.URL, tools, nil)
	resp := post(t, url, "/v1/chat/completions", chatBody(true, queryTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got, want := tools.executed(), []string{`query_order {"order_id":"O1"}`}; !slices.Equal(got, want) {
		t.Errorf("executed %q; want %q", got, want)
	}
	if got, want := botCalls(true, body), []string{"query "}; !slices.Equal(got, want) {
		t.Errorf("the bot got calls %q; want %q:\n%s", got, want, body)
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
	delta := func(entry string) string {
		return roundChunk + `[{"index":0,"delta":{"tool_calls":[` + entry + `]},"finish_reason":null}]}` + "\n\n"
	}
	tests := []struct {
		name     string
		deltas   []string
		executed []string
		bot      []string
	}{
		{"alone", []string{
			delta(`{"index":0,"id":"call_q","type":"function","function":{"name":"query","arguments":""}}`),
		}, nil, []string{"query "}},
		{"beside a payment call", []string{
			delta(`{"index":0,"id":"call_q","type":"function","function":{"name":"query","arguments":""}}`),
			delta(`{"index":1,"id":"call_c","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{`create_order {"sku":"premium"}`}, []string{"query "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			round0 := append([]string{roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n"}, tc.deltas...)
			round0 = append(round0, roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n")
			fp := newFakeProvider(t, roundByRound(sseHandler(round0...), textRound(true, "Done.")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(true, queryTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := tools.executed(); !slices.Equal(got, tc.executed) {
				t.Errorf("executed %q; want %q", got, tc.executed)
			}
			if got := botCalls(true, body); !slices.Equal(got, tc.bot) {
				t.Errorf("the bot got calls %q; want %q:\n%s", got, tc.bot, body)
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
	delta := func(entry string) string {
		return roundChunk + `[{"index":0,"delta":{"tool_calls":[` + entry + `]},"finish_reason":null}]}` + "\n\n"
	}
	fp := newFakeProvider(t, roundByRound(sseHandler(
		roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}`+"\n\n",
		delta(`{"index":0,"type":"function","function":{"name":"query","arguments":""}}`),
		delta(`{"index":0,"type":"function","function":{"name":"query_","arguments":""}}`),
		delta(`{"index":0,"function":{"name":"order"}}`),
		delta(`{"index":0,"function":{"arguments":"{\"order_id\":\"O1\"}"}}`),
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n"),
		textRound(true, "Order O1 is paid.")))
	tools := &recordingTools{}
	url := toolsProxy(t, fp.URL, tools, nil)
	resp := post(t, url, "/v1/chat/completions", chatBody(true, queryTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got, want := tools.executed(), []string{`query_order {"order_id":"O1"}`}; !slices.Equal(got, want) {
		t.Errorf("executed %q; want %q", got, want)
	}
	if got, want := botCalls(true, body), []string{"query "}; !slices.Equal(got, want) {
		t.Errorf("the bot got calls %q; want %q:\n%s", got, want, body)
	}
	if strings.Contains(body, "query_") || strings.Contains(body, "O1") {
		t.Errorf("the payment call reached the bot:\n%s", body)
	}
}
