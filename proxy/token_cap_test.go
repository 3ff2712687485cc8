package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonstr"
)

// spendingRound answers one round with text and tool calls (createOrderCall's
// shape, "" for none), streamed or not, and reports completion output
// tokens in its usage (none when completion is negative).
func spendingRound(stream bool, text, calls, finish string, completion int) http.HandlerFunc {
	usage := fmt.Sprintf(`"usage":{"prompt_tokens":50,"completion_tokens":%d,"total_tokens":%d}`, completion, 50+completion)
	if completion < 0 {
		usage = `"usage":null`
	}
	q := string(jsonstr.Append(nil, text))
	if stream {
		head := `data: {"id":"r","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":`
		events := []string{head + `[{"index":0,"delta":{"role":"assistant","content":` + q + `},"finish_reason":null}]}` + "\n\n"}
		if calls != "" {
			events = append(events, head+`[{"index":0,"delta":{"tool_calls":`+calls+`},"finish_reason":null}]}`+"\n\n")
		}
		events = append(events, head+`[{"index":0,"delta":{},"finish_reason":"`+finish+`"}]}`+"\n\n",
			head+`[],`+usage+`}`+"\n\n", "data: [DONE]\n\n")
		return sseHandler(events...)
	}
	msg := `{"role":"assistant","content":` + q
	if calls != "" {
		msg += `,"tool_calls":` + calls
	}
	return jsonHandler(200, `{"id":"r","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":`+msg+`},"finish_reason":"`+finish+`"}],`+usage+`}`)
}

// TestTokenCapSpansTheTurn: a bot's max_completion_tokens (max_tokens)
// bounds the tokens of the answer it gets, and a payment turn's answer is
// every round's: the round after a payment round is asked for what the
// earlier rounds left of the cap (at least 1), so the answer's
// completion_tokens stay within it, as OpenAI's do. Each round was asked
// for the whole cap: a bot that capped answers at 100 tokens for a chat
// bubble got, and paid for, up to 100 per round. A round that reported no
// usage leaves the cap as the bot sent it.
func TestTokenCapSpansTheTurn(t *testing.T) {
	tests := []struct {
		name, members string
		spent         int    // round 1's completion tokens, -1: no usage reported
		want          string // the second round's members, as JSON
	}{
		{"max_completion_tokens", `"max_completion_tokens":100,`, 30, `{"max_completion_tokens":70}`},
		{"max_tokens", `"max_tokens":100,`, 30, `{"max_tokens":70}`},
		{"both", `"max_tokens":100,"max_completion_tokens":80,`, 30, `{"max_tokens":70,"max_completion_tokens":50}`},
		{"one token left", `"max_completion_tokens":31,`, 30, `{"max_completion_tokens":1}`},
		{"no cap", ``, 30, `{}`},
		{"no usage reported", `"max_completion_tokens":100,`, -1, `{"max_completion_tokens":100}`},
		// DashScope's (Qwen) and SiliconFlow's thinking_budget bounds the
		// reasoning apart from max_tokens, which bounds the reply only: a
		// budget over the cap left is their default, not a cap spent.
		{"a thinking_budget apart from the cap", `"max_tokens":3000,"thinking_budget":4096,`, 1500, `{"max_tokens":1500}`},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(spendingRound(stream, "Sure.", createOrderCall, "tool_calls", tc.spent), spendingRound(stream, "Done.", "", "stop", 5)))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				readAll(t, resp.Body)
				reqs := fp.requests()
				if len(reqs) != 2 {
					t.Fatalf("%d upstream rounds; want 2", len(reqs))
				}
				got := map[string]int64{}
				for _, k := range []string{"max_tokens", "max_completion_tokens"} {
					if v := gjson.GetBytes(reqs[1].Body, k); v.Exists() {
						got[k] = v.Int()
					}
				}
				want := map[string]int64{}
				gjson.Parse(tc.want).ForEach(func(k, v gjson.Result) bool { want[k.Str] = v.Int(); return true })
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("the round after the payment round was asked for %v; want %v", got, want)
				}
			})
		}
	}
}

// TestUnmeteredRoundLeavesTheCapForTheTurn: once a round of the turn
// reported no usage, its tokens are unknown and no later round's cap is
// lowered, though the rounds after it report theirs: a turn whose first
// round came without usage and whose second spent 30 of 100 asks its third
// for the bot's 100, not 70 (what the counted round alone would leave).
// The two-round case of TestTokenCapSpansTheTurn cannot tell: an unmetered
// round counts 0, which leaves the whole cap either way.
func TestUnmeteredRoundLeavesTheCapForTheTurn(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream %v", stream), func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(
				spendingRound(stream, "Sure.", createOrderCall, "tool_calls", -1),
				spendingRound(stream, "Again.", createOrderCall, "tool_calls", 30),
				spendingRound(stream, "Done.", "", "stop", 5)))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(stream, `"max_completion_tokens":100,`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			readAll(t, resp.Body)
			reqs := fp.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d upstream rounds; want 3", len(reqs))
			}
			for i, r := range reqs[1:] {
				if got := gjson.GetBytes(r.Body, "max_completion_tokens").Int(); got != 100 {
					t.Errorf("round %d asked for max_completion_tokens %d; want the bot's 100 (an earlier round's count is unknown)", i+1, got)
				}
			}
		})
	}
}

// anthropicBudgetRefusal is Anthropic's 400 (as OpenRouter and Bedrock pass
// it on) for a max_tokens at or below the request's thinking budget, which
// a reasoning model's provider may set itself from the bot's effort.
const anthropicBudgetRefusal = `{"error":{"message":"` + "`max_tokens` must be greater than `thinking.budget_tokens`." +
	` Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size","type":"invalid_request_error","code":400}}`

// TestSpentTokenCapEndsTheTurn: when the rounds of a payment turn have used
// up the bot's token cap (max_completion_tokens, max_tokens), or left less
// of it than the thinking budget the bot asked for, no round follows the
// payment round: the turn ends as OpenAI ends a capped answer, with
// finish_reason "length", and the paygate object still reports the order
// its payment call made. A round asked for 1 token was refused by reasoning
// models' providers (Anthropic: "max_tokens must be greater than
// thinking.budget_tokens"), and the turn, its payment made, failed. A
// later round refused with a 400 that names the lowered cap ends the same
// way: the provider sets the budget itself for an effort.
func TestSpentTokenCapEndsTheTurn(t *testing.T) {
	tests := []struct {
		name, members string
		spent         int
		second        http.HandlerFunc // nil: no second round is asked for
	}{
		{"the cap spent", `"max_completion_tokens":20,`, 30, nil},
		{"the cap spent exactly", `"max_tokens":30,`, 30, nil},
		{"less left than the thinking budget", `"max_tokens":3000,"thinking":{"type":"enabled","budget_tokens":2048},`, 1500, nil},
		{"less left than OpenRouter's reasoning budget", `"max_tokens":3000,"reasoning":{"max_tokens":2000},`, 1500, nil},
		{"the lowered cap refused", `"max_tokens":3000,"reasoning":{"effort":"high"},`, 1500, jsonHandler(400, anthropicBudgetRefusal)},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				rounds := []http.HandlerFunc{spendingRound(stream, "Sure.", createOrderCall, "tool_calls", tc.spent)}
				if tc.second != nil {
					rounds = append(rounds, tc.second)
				} else {
					rounds = append(rounds, spendingRound(stream, "Done.", "", "stop", 5))
				}
				fp := newFakeProvider(t, roundByRound(rounds...))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				wantRounds := 1
				if tc.second != nil {
					wantRounds = 2
				}
				if n := len(fp.requests()); n != wantRounds {
					t.Errorf("%d upstream rounds; want %d", n, wantRounds)
				}
				if got := tools.executed(); len(got) != 1 {
					t.Errorf("executed %q; want the one create_order", got)
				}
				var finish, content string
				var ext gjson.Result
				if stream {
					if strings.Contains(body, `"error"`) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
						t.Fatalf("the stream did not end as an answer: %s", body)
					}
					for _, c := range streamChunks(body) {
						if f := gjson.Get(c, "choices.0.finish_reason"); f.Str != "" {
							finish, ext = f.Str, gjson.Get(c, "paygate")
						}
					}
					content = streamText(body)
				} else {
					finish, ext = gjson.Get(body, "choices.0.finish_reason").Str, gjson.Get(body, "paygate")
					content = gjson.Get(body, "choices.0.message.content").Str
					if calls := gjson.Get(body, "choices.0.message.tool_calls"); calls.Exists() {
						t.Errorf("the answer hands the bot the payment call: %s", calls.Raw)
					}
				}
				if finish != "length" {
					t.Errorf("finish_reason %q; want length: %s", finish, body)
				}
				if got := ext.Get("actions.0.type").Str; got != "order_created" {
					t.Errorf("paygate object %s; want the order_created action", ext.Raw)
				}
				if content != "Sure." {
					t.Errorf("content %q; want the payment round's text", content)
				}
			})
		}
	}
}
