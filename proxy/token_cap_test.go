package proxy

import (
	"fmt"
	"net/http"
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
		{"the cap spent", `"max_completion_tokens":20,`, 30, `{"max_completion_tokens":1}`},
		{"no cap", ``, 30, `{}`},
		{"no usage reported", `"max_completion_tokens":100,`, -1, `{"max_completion_tokens":100}`},
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
