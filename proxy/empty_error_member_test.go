package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestEmptyErrorMemberBesideChoices: a provider (a relay) that puts an
// empty "error": {} on every answer beside valid choices answered: the bot
// gets that answer, whole, from that provider, on the plain path and on a
// payment turn, streamed or not. It was classified a 500, thrown away and
// generated (and billed) again by the next provider.
func TestEmptyErrorMemberBesideChoices(t *testing.T) {
	const c = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","error":{},"choices":`
	for _, stream := range []bool{false, true} {
		for _, turn := range []bool{false, true} {
			name := "non-stream"
			if stream {
				name = "stream"
			}
			if turn {
				name += ", payment turn"
			}
			t.Run(name, func(t *testing.T) {
				var first *fakeProvider
				if stream {
					first = newFakeProvider(t, sseHandler(
						c+`[{"index":0,"delta":{"role":"assistant","content":"Hello from first."},"finish_reason":null}]}`+"\n\n",
						c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
						"data: [DONE]\n\n"))
				} else {
					first = newFakeProvider(t, jsonHandler(200, `{"id":"q1","object":"chat.completion","created":1,"model":"m","error":{},`+
						`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello from first."},"finish_reason":"stop"}]}`))
				}
				other := newFakeProvider(t, jsonHandler(500, `{"error":{"message":"other must not be asked"}}`))
				url, hdr := afterFinishURL(t, testConfig(t, first.URL, withSecondProvider(other.URL)), turn, queryTools{})
				resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":`+map[bool]string{true: "true", false: "false"}[stream]+
					`,"messages":[{"role":"user","content":"x"}]}`, hdr)
				body := readAll(t, resp.Body)
				if resp.StatusCode != 200 || !strings.Contains(body, "Hello from first.") {
					t.Errorf("status %d, body:\n%s\nwant first's answer", resp.StatusCode, body)
				}
				if n := len(other.requests()); n != 0 {
					t.Errorf("the other provider was asked %d times", n)
				}
				if stream {
					if code := lastErrorCode(body); code != "" {
						t.Errorf("the stream ended with error %q:\n%s", code, body)
					}
					if !strings.Contains(body, `"finish_reason":"stop"`) {
						t.Errorf("no finish_reason stop:\n%s", body)
					}
				} else if f := gjson.Get(body, "choices.0.finish_reason").String(); f != "stop" {
					t.Errorf("finish_reason %q; want stop:\n%s", f, body)
				}
			})
		}
	}
}
