package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestStreamEventsLeaveOnOneLine: an upstream that spreads a chunk over
// several "data:" lines (LF or CRLF), or puts a lone CR between its
// tokens, after its first token: each chunk reaches the bot on one "data:"
// line of JSON with no CR, on the plain path and on a payment turn, as
// the relays send the chunks that need no search for line breaks
// (failover.Response.EventOneLine) without one.
func TestStreamEventsLeaveOnOneLine(t *testing.T) {
	const c = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	for _, turn := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "payment turn"}[turn], func(t *testing.T) {
			fp := newFakeProvider(t, sseHandler(
				c+`[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{"content":" one"},"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{"content":" two"},`+"\n"+`data: "finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{"content":" three"},"finish_reason":null}]`+"\r}\n\n",
				c+`[{"index":0,"delta":{"content":" four"},`+"\r\n"+`data: "finish_reason":null}]}`+"\r\n\r\n",
				c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
				"data: [DONE]\n\n"))
			url, hdr := afterFinishURL(t, testConfig(t, fp.URL, nil), turn, queryTools{})
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr)
			body := readAll(t, resp.Body)
			if resp.StatusCode != 200 || strings.Contains(body, "\r") {
				t.Fatalf("status %d, body with a CR %v:\n%q", resp.StatusCode, strings.Contains(body, "\r"), body)
			}
			for _, line := range strings.Split(body, "\n") {
				if line != "" && line != "data: [DONE]" && !gjson.Valid(strings.TrimPrefix(line, "data: ")) {
					t.Errorf("a line that is no chunk of its own: %q", line)
				}
			}
			if got, want := streamText(body), "Hello one two three four"; got != want {
				t.Errorf("text %q; want %q:\n%s", got, want, body)
			}
		})
	}
}
