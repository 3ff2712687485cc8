package proxy

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"
)

// rawPieces answers with the given bytes, flushed piece by piece: the
// stream exactly as a provider's server wrote it.
func rawPieces(pieces ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for _, p := range pieces {
			_, _ = io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
	}
}

// streamedBotTurn streams a weatherBotTurn from a provider writing pieces
// as they are, and returns the stream the bot read and the tools, to ask
// what ran. It exists because the damaged-stream tests of the bot's own
// calls differ only in the bytes the provider wrote and what they expect.
func streamedBotTurn(t *testing.T, pieces ...string) (string, *recordingTools) {
	t.Helper()
	return weatherBotTurn(t, rawPieces(pieces...), true)
}

// finishedOrMalformed checks that a stream ended either with the finish
// (when malformed is false) or, with no such finish, with an
// upstream_malformed_response error event (when it is true). It exists
// because the tests of rounds that skipped an event before their finish
// all ask the stream this one question.
func finishedOrMalformed(t *testing.T, body, finish string, malformed bool) {
	t.Helper()
	finished := strings.Contains(body, `"finish_reason":"`+finish+`"`)
	gotMalformed := strings.Contains(body, `"code":"upstream_malformed_response"`)
	if finished == malformed || gotMalformed != malformed {
		t.Errorf("stream %s; want the finish %v, an upstream_malformed_response error %v", body, !malformed, malformed)
	}
}

// TestStreamedPaymentCallWithALostEventNotRun: a payment call whose
// arguments came over several events, one of which paygate could not
// read (a relay's truncated event, which failover skips as malformed; a
// chunk naming a member twice, which the capture skips), is refused, not
// run: the pieces that are left can still make a valid call that is not
// the one the model made. Here the model asked for two, and without the
// lost `,"quantity":2` paygate bought one. An event that cannot be a chunk
// (blank, a word, a null) in the middle of the call loses nothing, and the
// call runs.
func TestStreamedPaymentCallWithALostEventNotRun(t *testing.T) {
	const head = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	args := func(frag string) string {
		return head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + frag + `}}]},"finish_reason":null}]}` + "\n\n"
	}
	first := head + `[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\""}}]},"finish_reason":null}]}` + "\n\n"
	finish := head + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n"
	truncated := strings.TrimSuffix(args(`",\"quantity\":2"`), "}\n\n") + "\n\n"
	twice := head + `[],"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":",\"quantity\":2"}}]},"finish_reason":null}]}` + "\n\n"
	tests := []struct {
		name   string
		middle string // the event between the first and the last piece of the arguments
		after  string // an event after the finish chunk
		run    bool
	}{
		{"a truncated event", truncated, "", false},
		{"a chunk naming its choices twice", twice, "", false},
		{"a blank keep-alive", "data: \n\n", "", true},
		// Events that cannot be a chunk lose nothing either: a word some
		// servers send as a keep-alive, a null some relays slip in.
		{"a word", "data: ping\n\n", "", true},
		{"a null", "data: null\n\n", "", true},
		// Nor do unreadable events after the round's finish: the call was
		// whole by then.
		{"a truncated event after the finish", "", truncated, true},
		{"a chunk naming its choices twice after the finish", "", twice, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tools := &recordingTools{}
			fp := newFakeProvider(t, roundByRound(
				rawPieces(first, tc.middle, args(`"}"`), finish, tc.after, "data: [DONE]\n\n"),
				textRound(true, "Let me check with you first.")))
			url := toolsProxy(t, fp.URL, tools, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			got := tools.executed()
			if tc.run {
				if !slices.Equal(got, []string{`create_order {"sku":"premium-monthly"}`}) {
					t.Fatalf("executed %q; want the call run once", got)
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("executed %q; want nothing run of a call an unreadable event may have carried a piece of", got)
			}
			reqs := fp.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream requests; want the refusal sent back to the model in a second round", len(reqs))
			}
			result := gjson.GetBytes(reqs[1].Body, `messages.#(role=="tool").content`).Str
			if gjson.Get(result, "status").Str != "not_executed" {
				t.Errorf("tool result %s; want not_executed", result)
			}
			if !strings.Contains(body, "Let me check with you first.") {
				t.Errorf("stream %s; want the second round's words", body)
			}
		})
	}
}

// TestStreamedClientCallWithALostEventNotHanded: the bot's own call
// (get_weather) in a payment turn's round, one of whose events paygate
// could not read (malformed, or naming a member twice) and skipped, is
// not handed to the bot with a finish that tells it to run it: the
// skipped event may have held a piece of its arguments, and what is left
// still read as a call the model did not make (`{"city":"Paris"}` without
// its lost `,"unit":"F"`). The stream ends with an upstream_malformed_response
// error event, as payment calls so damaged are not run. An unreadable
// event after the finish loses nothing.
func TestStreamedClientCallWithALostEventNotHanded(t *testing.T) {
	const head = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	args := func(frag string) string {
		return head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + frag + `}}]},"finish_reason":null}]}` + "\n\n"
	}
	first := head + `[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\""}}]},"finish_reason":null}]}` + "\n\n"
	finish := head + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n"
	truncated := strings.TrimSuffix(args(`",\"unit\":\"F\""`), "}\n\n") + "\n\n"
	twice := head + `[],"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":",\"unit\":\"F\""}}]},"finish_reason":null}]}` + "\n\n"
	tests := []struct {
		name, middle, after string
		handed              bool
	}{
		{"a truncated event", truncated, "", false},
		{"a chunk naming its choices twice", twice, "", false},
		{"a blank keep-alive", "data: \n\n", "", true},
		{"a truncated event after the finish", "", truncated, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := streamedBotTurn(t, first, tc.middle, args(`"}"`), finish, tc.after, "data: [DONE]\n\n")
			finished := strings.Contains(body, `"finish_reason":"tool_calls"`)
			if tc.handed {
				if !finished || strings.Contains(body, `"error"`) {
					t.Fatalf("stream %s; want the call handed with its finish", body)
				}
				return
			}
			if finished || !strings.Contains(body, `"code":"upstream_malformed_response"`) {
				t.Errorf("stream %s; want no tool_calls finish and an upstream_malformed_response error", body)
			}
		})
	}
}

// TestLostEventRoundsPaymentCallsCounted: a round with the bot's own call
// and a payment call, one of whose events paygate could not read, ends
// the stream without running the payment call or handing the bot's on;
// the payment call is counted on paygate_tool_calls_total as not
// executed, as a damaged call of a round without the bot's calls is.
// Uncounted, the calls the model made read short by them.
func TestLostEventRoundsPaymentCallsCounted(t *testing.T) {
	const head = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	first := head + `[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\""}},` +
		`{"index":1,"id":"call_2","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}` + "\n\n"
	truncated := head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":",\"unit\":\"F\""}}]},"finish_reason":null}]` + "\n\n"
	rest := head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]},"finish_reason":null}]}` + "\n\n"
	finish := head + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n"
	fp := newFakeProvider(t, rawPieces(first, truncated, rest, finish, "data: [DONE]\n\n"))
	tools := &recordingTools{}
	s, url := servePaygate(t, testConfig(t, fp.URL, nil), Options{Tools: tools, State: &memState{}}, nil)
	resp := post(t, url, "/v1/chat/completions", chatBody(true, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	if !strings.Contains(body, `"code":"upstream_malformed_response"`) || len(tools.executed()) != 0 {
		t.Fatalf("stream %s, executed %q; want an upstream_malformed_response error and nothing run", body, tools.executed())
	}
	if got := testutil.ToFloat64(s.metrics.toolCalls.WithLabelValues("create_order", "not_executed")); got != 1 {
		t.Errorf("tool calls create_order not_executed: %v; want 1", got)
	}
}

// TestStreamedCallsFinishWithTheirCallLost: a stream whose one tool call
// came in an event paygate skipped (truncated, or naming a member two
// ways: the call's arguments twice, two "choices") and whose finish says
// it made calls ("tool_calls", or the legacy "function_call") has no call
// left to hand on or run. The bot got that finish with no call, an answer
// its SDK reads as calls to run and finds none of, the model's call lost
// without a word. It ends with an upstream_malformed_response error
// event, as a round whose lost event may have held a piece of the bot's
// own call does; a finish of "stop" after a skipped event is still the
// answer.
func TestStreamedCallsFinishWithTheirCallLost(t *testing.T) {
	const head = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	role := head + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n"
	call := `{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]}`
	tests := []struct {
		name, skipped, finish string
		malformed             bool
	}{
		{"a truncated event", head + `[{"index":0,"delta":` + call + `,"finish_reason":null}` + "\n\n", "tool_calls", true},
		{"choices twice", head + `[],"choices":[{"index":0,"delta":` + call + `,"finish_reason":null}]}` + "\n\n", "tool_calls", true},
		{"a legacy call's arguments twice", head + `[{"index":0,"delta":{"function_call":{"name":"create_order","arguments":"{}","arguments":"{}"}},"finish_reason":null}]}` + "\n\n", "function_call", true},
		{"text, then stop", head + `[],"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}` + "\n\n", "stop", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			finish := head + `[{"index":0,"delta":{},"finish_reason":"` + tc.finish + `"}]}` + "\n\n"
			body, tools := streamedBotTurn(t, role, tc.skipped, finish, "data: [DONE]\n\n")
			if ex := tools.executed(); len(ex) != 0 {
				t.Errorf("executed %q", ex)
			}
			finishedOrMalformed(t, body, tc.finish, tc.malformed)
		})
	}
}

// TestStreamedBotLegacyCallWithALostPiece: a legacy function_call of the
// bot's own goes out as it comes, piece by piece, and is no ClientCall:
// a round that skipped an event before its finish (truncated, or naming a
// member two ways) and ended with "stop" (as Gemini ends a tool round)
// handed the bot get_weather {"city":"Paris"} whose lost `,"unit":"F"` the
// model wrote, and an SDK that reads the message's function_call ran it,
// where the same call in the tools shape, or this one with a finish of
// "function_call", or the same events answering a non-stream request,
// end with upstream_malformed_response (README: nor are the bot's own
// calls of such a round handed to it to run). It ends so too; the call
// whole, the finish goes out.
func TestStreamedBotLegacyCallWithALostPiece(t *testing.T) {
	const head = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	piece := func(args string) string {
		return head + `[{"index":0,"delta":{"function_call":{"arguments":"` + args + `"}},"finish_reason":null}]}` + "\n\n"
	}
	first := head + `[{"index":0,"delta":{"role":"assistant","content":null,"function_call":{"name":"get_weather","arguments":"{\"city\":\"Paris\""}},"finish_reason":null}]}` + "\n\n"
	unit := piece(`,\"unit\":\"F\"`)
	tests := []struct {
		name, middle, finish string
		malformed            bool
	}{
		{"choices twice, stop", head + `[],"choices":[{"index":0,"delta":{"function_call":{"arguments":",\"unit\":\"F\""}},"finish_reason":null}]}` + "\n\n", "stop", true},
		{"a truncated event, stop", strings.TrimSuffix(unit, "}\n\n") + "\n\n", "stop", true},
		{"arguments twice, stop", head + `[{"index":0,"delta":{"function_call":{"arguments":",\"unit\":\"F\"","arguments":""}},"finish_reason":null}]}` + "\n\n", "stop", true},
		{"choices twice, function_call", head + `[],"choices":[{"index":0,"delta":{"function_call":{"arguments":",\"unit\":\"F\""}},"finish_reason":null}]}` + "\n\n", "function_call", true},
		{"whole, stop", unit, "stop", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			finish := head + `[{"index":0,"delta":{},"finish_reason":"` + tc.finish + `"}]}` + "\n\n"
			body, _ := streamedBotTurn(t, first, tc.middle, piece(`}`), finish, "data: [DONE]\n\n")
			finishedOrMalformed(t, body, tc.finish, tc.malformed)
		})
	}
}

// TestStreamedCallAndFinishInASkippedChunk: a provider that sends a tool
// call whole with its finish in one chunk (Gemini's compatible endpoint
// does) and names a member of that chunk two ways has the chunk skipped:
// the call and the finish with it. The bot got the round's text and a
// finish of "stop" paygate made up, the model's call (the bot's own, or a
// create_order) lost without a word, where the same chunk cut short, a
// malformed event, ends the stream with an error, and the same events
// answering a non-stream request are asked again. It ends with an
// upstream_malformed_response error event: no finish read, what the
// skipped chunk held is not known. A skipped chunk before a finish that
// came is TestStreamedCallsFinishWithTheirCallLost's.
func TestStreamedCallAndFinishInASkippedChunk(t *testing.T) {
	const head = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	role := head + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n"
	text := head + `[{"index":0,"delta":{"content":"Let me check."},"finish_reason":null}]}` + "\n\n"
	weather := `{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}`
	order := `{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
	for _, tc := range []struct{ name, skipped string }{
		{"the bot's call, choices twice", head + `[],"choices":[{"index":0,"delta":{"tool_calls":[` + weather + `]},"finish_reason":"tool_calls"}]}` + "\n\n"},
		{"a payment call, choices twice", head + `[],"choices":[{"index":0,"delta":{"tool_calls":[` + order + `]},"finish_reason":"tool_calls"}]}` + "\n\n"},
		{"the bot's call, its arguments twice, stop", head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}","arguments":"{}"}}]},"finish_reason":"stop"}]}` + "\n\n"},
		{"a legacy call, its arguments twice", head + `[{"index":0,"delta":{"function_call":{"name":"get_weather","arguments":"{}","arguments":"{}"}},"finish_reason":"function_call"}]}` + "\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, tools := streamedBotTurn(t, role, text, tc.skipped, "data: [DONE]\n\n")
			if ex := tools.executed(); len(ex) != 0 {
				t.Errorf("executed %q", ex)
			}
			if strings.Contains(body, `"finish_reason":"`) || !strings.Contains(body, `"code":"upstream_malformed_response"`) {
				t.Errorf("stream %s; want no finish, an upstream_malformed_response error", body)
			}
		})
	}
}
