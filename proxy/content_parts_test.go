package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
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

// An audio-output chat stream (modalities ["text","audio"]) carries its
// answer in delta.audio, content null. Such a stream that spoke longer than
// first_token was failed over as having no first token: with one target
// the bot got a 504 for an answer the provider was streaming steadily. It
// reaches the bot as it comes, on the plain path and a signed-in user's.
// first_token is 1s, not 300ms (the provider's 300ms gaps add up past it):
// the first audio chunk, sent at once, had 300ms to arrive, too little on
// a loaded CI machine under -race (failover's TestAudioOutputStreamIsTokens
// failed so).
func TestAudioOutputReachesTheBot(t *testing.T) {
	const chunks = 4
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}`+"\n\n")
		w.(http.Flusher).Flush()
		for i := range chunks { // each gap within idle, all of them longer than first_token
			fmt.Fprintf(w, roundChunk+`[{"index":0,"delta":{"audio":{"id":"audio_1","transcript":"word%d ","data":"UklGRiQAAABXQVZF"}},"finish_reason":null}]}`+"\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
		io.WriteString(w, roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
	})
	url := toolsProxy(t, fp.URL, &recordingTools{}, func(c *config.Config) {
		c.Providers[0].Timeouts.FirstToken = config.Duration(time.Second)
	})
	for _, user := range []string{"", "o-user-1"} {
		hdr := map[string]string{}
		if user != "" {
			hdr["X-WeChat-OpenID"] = user
		}
		resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"modalities":["text","audio"],"audio":{"voice":"alloy","format":"pcm16"},"messages":[{"role":"user","content":"hi"}]}`, hdr)
		body := readAll(t, resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "word0 ") || !strings.Contains(body, fmt.Sprintf("word%d ", chunks-1)) {
			t.Errorf("user %q: bot got %d; want the provider's audio stream relayed as it came:\n%.400s", user, resp.StatusCode, body)
		}
	}
}
