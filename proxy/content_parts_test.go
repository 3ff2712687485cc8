package proxy

import (
	"strings"
	"testing"
)

// Mistral's reasoning models (Magistral, reasoning_effort high) stream their
// thinking as delta.content lists: a signed-in user's bot gets them as the
// plain path's does.
func TestContentPartsReachTheBot(t *testing.T) {
	think := roundChunk + `[{"index":0,"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":"The user greets me"}]}]},"finish_reason":null}]}` + "\n\n"
	fp := newFakeProvider(t, sseHandler(
		roundChunk+`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n",
		think,
		roundChunk+`[{"index":0,"delta":{"content":"Hello!"},"finish_reason":null}]}`+"\n\n",
		roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n"))
	url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
	for _, user := range []string{"", "o-user-1"} {
		hdr := map[string]string{}
		if user != "" {
			hdr["X-WeChat-OpenID"] = user
		}
		body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`, hdr).Body)
		if !strings.Contains(body, "The user greets me") {
			t.Errorf("user %q: the thinking chunk never reached the bot:\n%s", user, body)
		}
	}
}
