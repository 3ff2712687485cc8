package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonstr"
)

// TestJSONModeClarificationIsJSON: a bot that asked for a JSON answer
// (response_format json_object or json_schema) gets the clarification that
// ends a turn whose rounds are spent as a JSON object,
// {"clarification": "<sentence>"}: the content it parses is JSON, streamed
// or not. Where the rounds said something before it, their text comes
// first, as paragraphs, as in a turn without JSON mode: a streaming bot
// already read it.
func TestJSONModeClarificationIsJSON(t *testing.T) {
	clar := `{"clarification":` + string(jsonstr.Append(nil, config.DefaultClarification)) + `}`
	for _, tc := range []struct {
		name, format string
		round        func(stream bool) http.HandlerFunc
		want         string
	}{
		{"json_object", `{"type":"json_object"}`, func(stream bool) http.HandlerFunc { return callsRound(stream, createOrderCall) }, clar},
		{"json_schema", `{"type":"json_schema","json_schema":{"name":"reply","schema":{"type":"object"}}}`,
			func(stream bool) http.HandlerFunc { return callsRound(stream, createOrderCall) }, clar},
		{"json_object after the rounds' text", `{"type":"json_object"}`,
			func(stream bool) http.HandlerFunc { return wordsRound(stream, "On it.", createOrderCall, "tool_calls") },
			"On it.\n\nOn it.\n\nOn it.\n\n" + clar},
	} {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				fp := newFakeProvider(t, tc.round(stream)) // every round calls create_order
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, `"response_format":`+tc.format+`,`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				got := answerText(stream, readAll(t, resp.Body))
				if got != tc.want {
					t.Errorf("the bot read %q; want %q", got, tc.want)
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
