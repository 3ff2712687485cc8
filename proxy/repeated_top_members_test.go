package proxy

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestRepeatedResponseFormatIsRefused: a chat request that names its
// response_format twice, or in another case, is a 400 naming it, and no
// round reaches the provider. paygate shapes a turn's answer by the format's
// type (the clarification as {"clarification": …} in JSON mode, as the
// refusal beside a json_schema) and read the first typed copy, where the
// provider's parser keeps the last (and a Go-based one any case): with
// {"type":"text"} first and {"type":"json_object"} second the model wrote
// JSON and the bot, parsing the content, got paygate's clarification as
// plain text.
func TestRepeatedResponseFormatIsRefused(t *testing.T) {
	for _, tc := range []struct{ name, members string }{
		{"text, then json_object", `"response_format":{"type":"text"},"response_format":{"type":"json_object"},`},
		{"json_object, then text", `"response_format":{"type":"json_object"},"response_format":{"type":"text"},`},
		{"null, then json_object", `"response_format":null,"response_format":{"type":"json_object"},`},
		{"in another case", `"response_format":{"type":"text"},"Response_format":{"type":"json_object"},`},
		// Its type, which the turn reads, likewise within the one copy.
		{"its type twice", `"response_format":{"type":"text","type":"json_object"},`},
		{"its type in another case", `"response_format":{"type":"text","Type":"json_object"},`},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				fp := newFakeProvider(t, callsRound(stream, createOrderCall))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if reqs := fp.requests(); len(reqs) > 0 {
					t.Errorf("the provider received %d rounds, the first with response_format %s", len(reqs), gjson.GetBytes(reqs[0].Body, "response_format").Raw)
				}
				if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(gjson.Get(body, "error.param").Str, "response_format") ||
					!strings.Contains(gjson.Get(body, "error.message").Str, "response_format") {
					t.Fatalf("the bot got %d %.300s; want a 400 naming response_format", resp.StatusCode, body)
				}
			})
		}
	}
}

// TestRepeatedTokenCapIsRefused: a chat request that names max_tokens or
// max_completion_tokens twice, or in another case, is a 400 naming it, and
// no round reaches the provider. A payment turn lowers the cap of each round
// after the first to what the earlier rounds left of it
// (TestTokenCapSpansTheTurn), and paygate read and lowered the first copy
// where the provider reads the last: the bot's 100 twice, 30 spent, and the
// second round was still asked for 100, its answer past the bot's cap.
func TestRepeatedTokenCapIsRefused(t *testing.T) {
	for _, tc := range []struct{ name, members, param string }{
		{"max_tokens twice", `"max_tokens":100,"max_tokens":100,`, "max_tokens"},
		{"max_completion_tokens twice", `"max_completion_tokens":100,"max_completion_tokens":100,`, "max_completion_tokens"},
		{"max_tokens in another case", `"max_tokens":100,"Max_tokens":100,`, "max_tokens"},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(spendingRound(stream, "Sure.", createOrderCall, "tool_calls", 30), spendingRound(stream, "Done.", "", "stop", 5)))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if reqs := fp.requests(); len(reqs) > 1 {
					t.Errorf("the provider received %d rounds, the second with %s", len(reqs), reqs[1].Body[1:strings.Index(string(reqs[1].Body), `"messages"`)])
				}
				if resp.StatusCode != http.StatusBadRequest || gjson.Get(body, "error.param").Str != tc.param ||
					!strings.Contains(gjson.Get(body, "error.message").Str, tc.param) {
					t.Fatalf("the bot got %d %.200s; want a 400 naming %s", resp.StatusCode, body, tc.param)
				}
			})
		}
	}
}

// TestRepeatedStopIsRefused: a chat request that names stop twice, or in
// another case, is a 400 naming it. A turn of several rounds breaks their
// text by a paragraph ("\n\n"), or a space where a stop sequence is a line
// break, as OpenAI gives no text that holds one; paygate read the first
// copy and the provider the last: null then "\n", and the bot that stops
// at line breaks got "Sure.\n\nDone.", a line break it asked not to get.
func TestRepeatedStopIsRefused(t *testing.T) {
	for _, tc := range []struct{ name, members string }{
		{"null, then a line break", `"stop":null,"stop":"\n",`},
		{"in another case", `"stop":null,"Stop":["\n"],`},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(spendingRound(stream, "Sure.", createOrderCall, "tool_calls", 30), spendingRound(stream, "Done.", "", "stop", 5)))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if reqs := fp.requests(); len(reqs) > 0 {
					t.Errorf("the provider received %d rounds; the bot read %q", len(reqs), answerText(stream, body))
				}
				if resp.StatusCode != http.StatusBadRequest || gjson.Get(body, "error.param").Str != "stop" ||
					!strings.Contains(gjson.Get(body, "error.message").Str, "stop") {
					t.Fatalf("the bot got %d %.200s; want a 400 naming stop", resp.StatusCode, body)
				}
			})
		}
	}
}

// TestBotToolNamedTwiceExtendingAPaymentName: a bot's tool that names its
// function twice, the last copy (the one the provider reads) the tool
// query_order_history, which extends the payment tool query_order. A
// provider streaming the name in pieces ("query_order", then "_history")
// gets the bot its call whole (TestBotToolExtendingAPaymentNameInPieces)
// only while paygate knows the bot's tool names, and it read the first
// copy: query_order ran without arguments and the bot got a call of
// "_history", a tool it does not have. Every copy of a tool's function
// (or custom) and of its name is now the bot's, in any case, as the check
// of names reserved for payments reads them.
func TestBotToolNamedTwiceExtendingAPaymentName(t *testing.T) {
	const params = `"parameters":{"type":"object"}`
	deltas := []string{
		callDelta(`{"index":0,"id":"call_h","type":"function","function":{"name":"query_order","arguments":""}}`),
		callDelta(`{"index":0,"function":{"name":"_history"}}`),
		callDelta(`{"index":0,"function":{"arguments":"{\"days\":7}"}}`),
	}
	for _, tc := range []struct{ name, tool string }{
		{"function twice", `{"type":"function","function":{"name":"lookup",` + params + `},"function":{"name":"query_order_history",` + params + `}}`},
		{"function in another case", `{"type":"function","function":{"name":"lookup",` + params + `},"Function":{"name":"query_order_history",` + params + `}}`},
		{"name twice", `{"type":"function","function":{"name":"lookup","name":"query_order_history",` + params + `}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			executed, bot, body, _ := streamedCallTurn(t, `"tools":[`+tc.tool+`],`, roundByRound(callRound(deltas...), textRound(true, "Here is your history.")))
			if len(executed) > 0 {
				t.Errorf("executed %q; want nothing of the bot's call run", executed)
			}
			if want := []string{`query_order_history {"days":7}`}; !slices.Equal(bot, want) {
				t.Errorf("the bot got calls %q; want %q:\n%.300s", bot, want, body)
			}
		})
	}
}

// TestRepeatedThinkingBudgetIsRefused: a chat request that names its
// thinking budget twice (Anthropic's thinking or its budget_tokens,
// OpenRouter's reasoning or its max_tokens), or in another case, is a 400
// naming it, and no round reaches the provider. A payment turn ends at
// "length" when its rounds left no more of the bot's cap than that budget
// (capSpent), and paygate read the first copy where the provider reads the
// last: a budget of 2048 first and 10 last, the cap 3000 and 1500 spent,
// and the turn ended capped after its payment round, where the provider
// would have served the round that tells the user.
func TestRepeatedThinkingBudgetIsRefused(t *testing.T) {
	for _, tc := range []struct{ name, members, param string }{
		{"thinking twice", `"thinking":{"type":"enabled","budget_tokens":2048},"thinking":{"type":"enabled","budget_tokens":10},`, "thinking"},
		{"thinking in another case", `"thinking":{"type":"enabled","budget_tokens":2048},"Thinking":{"type":"enabled","budget_tokens":10},`, "thinking"},
		{"its budget_tokens twice", `"thinking":{"type":"enabled","budget_tokens":2048,"budget_tokens":10},`, "thinking.budget_tokens"},
		{"reasoning twice", `"reasoning":{"max_tokens":2000},"reasoning":{"max_tokens":10},`, "reasoning"},
		{"its max_tokens in another case", `"reasoning":{"max_tokens":2000,"Max_tokens":10},`, "reasoning.max_tokens"},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(spendingRound(stream, "Sure.", createOrderCall, "tool_calls", 1500), spendingRound(stream, "Done.", "", "stop", 5)))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, `"max_tokens":3000,`+tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if reqs := fp.requests(); len(reqs) > 0 {
					t.Errorf("the provider received %d rounds, %q executed; the bot read %q", len(reqs), tools.executed(), answerText(stream, body))
				}
				if resp.StatusCode != http.StatusBadRequest || gjson.Get(body, "error.param").Str != tc.param ||
					!strings.Contains(gjson.Get(body, "error.message").Str, tc.param[strings.LastIndexByte(tc.param, '.')+1:]) {
					t.Fatalf("the bot got %d %.200s; want a 400 naming %s", resp.StatusCode, body, tc.param)
				}
			})
		}
	}
}
