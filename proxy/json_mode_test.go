package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonstr"
)

// answerRefusal is the refusal the bot read of a turn's answer: the
// message's, or the stream's refusal deltas joined.
func answerRefusal(stream bool, body string) string {
	if !stream {
		return gjson.Get(body, "choices.0.message.refusal").Str
	}
	var b strings.Builder
	for _, c := range streamChunks(body) {
		b.WriteString(gjson.Get(c, "choices.0.delta.refusal").Str)
	}
	return b.String()
}

// TestJSONModeClarificationIsJSON: a bot that asked for a JSON object
// (response_format json_object) gets the clarification that ends a turn
// whose rounds are spent as a JSON object, {"clarification": "<sentence>"}:
// the content it parses is JSON, streamed or not. A bot that asked for a
// json_schema, whose SDK parses the content against the schema, gets it as
// the message's refusal, as OpenAI refuses to fill a schema, and no content
// of paygate's. Where the rounds said something before it, their text comes
// first, as paragraphs, as in a turn without JSON mode: a streaming bot
// already read it.
func TestJSONModeClarificationIsJSON(t *testing.T) {
	clar := `{"clarification":` + string(jsonstr.Append(nil, config.DefaultClarification)) + `}`
	const schema = `{"type":"json_schema","json_schema":{"name":"reply","strict":true,"schema":{"type":"object","properties":{"reply":{"type":"string"}},"required":["reply"],"additionalProperties":false}}}`
	for _, tc := range []struct {
		name, format  string
		round         func(stream bool) http.HandlerFunc
		want, refusal string
	}{
		{"json_object", `{"type":"json_object"}`, func(stream bool) http.HandlerFunc { return callsRound(stream, createOrderCall) }, clar, ""},
		{"json_schema", schema,
			func(stream bool) http.HandlerFunc { return callsRound(stream, createOrderCall) }, "", config.DefaultClarification},
		{"json_object after the rounds' text", `{"type":"json_object"}`,
			func(stream bool) http.HandlerFunc { return wordsRound(stream, "On it.", createOrderCall, "tool_calls") },
			"On it.\n\nOn it.\n\nOn it.\n\n" + clar, ""},
		{"json_schema after the rounds' text", schema,
			func(stream bool) http.HandlerFunc { return wordsRound(stream, "On it.", createOrderCall, "tool_calls") },
			"On it.\n\nOn it.\n\nOn it.", config.DefaultClarification},
	} {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				fp := newFakeProvider(t, tc.round(stream)) // every round calls create_order
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, `"response_format":`+tc.format+`,`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				got := answerText(stream, body)
				if got != tc.want {
					t.Errorf("the bot read %q; want %q", got, tc.want)
				}
				if r := answerRefusal(stream, body); r != tc.refusal {
					t.Errorf("the bot read the refusal %q; want %q", r, tc.refusal)
				}
				if !stream && tc.want == "" && gjson.Get(body, "choices.0.message.content").Type != gjson.Null {
					t.Errorf("content %s; want null beside the refusal", gjson.Get(body, "choices.0.message.content").Raw)
				}
				if tc.want == clar {
					var v map[string]string
					if err := json.Unmarshal([]byte(got), &v); err != nil || v["clarification"] != config.DefaultClarification {
						t.Errorf("content %q is not the clarification as a JSON object: %v", got, err)
					}
				}
			})
		}
	}
}
