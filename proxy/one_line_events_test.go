package proxy

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
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

// TestStreamShapesNeverSplitABotEvent: after the first token an upstream
// sends an event whose bytes hold a raw CR or LF that failover's
// validating scan does not mark as whitespace (inside a string, where
// JSON forbids one; in data that is no JSON; in a comment; in a sentinel;
// in an error event), or the answer is cut and another provider's
// recovery stream holds such events. None of them reaches the bot with a
// raw line break (a CR or LF in a "data:" line splits the bot's event: an
// injection into its stream), on the plain path and on a payment turn:
// each line the bot reads is a chunk of JSON of its own, [DONE] or blank.
func TestStreamShapesNeverSplitABotEvent(t *testing.T) {
	const c = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	chunk := func(text string) string {
		return c + `[{"index":0,"delta":{"content":"` + text + `"},"finish_reason":null}]}` + "\n\n"
	}
	first := c + `[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}` + "\n\n"
	finish := c + `[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"
	shapes := map[string]string{
		"raw CR in a string":                chunk(" a\rb"),
		"raw CR at a string's end":          chunk(" a\r"),
		"string over two data lines, LF":    chunk(" a\ndata: b"),
		"string over two data lines, CRLF":  chunk(" a\r\ndata: b"),
		"raw CR in a key":                   c + `[{"index":0,"delta":{"con` + "\r" + `tent":" a"},"finish_reason":null}]}` + "\n\n",
		"no JSON, with a CR":                "data: hello\rdata: {\"x\":1}\n\n",
		"no JSON, over two lines":           "data: hello\ndata: world\n\n",
		"a comment with a CR":               ": ping\rdata: {\"choices\":[]}\n\n",
		"a sentinel with a CR":              "data: [DONE]\r\rdata: {}\n\n",
		"a number broken by a CR":           "data: 1\r2\n\n",
		"an error event with a CR":          "event: error\ndata: {\"error\":\r{\"message\":\"bo\rom\"}}\n\n",
		"an error object over two lines":    "data: {\"error\":\ndata: {\"message\":\"boom\",\"code\":\"server_error\"}}\n\n",
		"a keep-alive of a CR and a space":  "data:\r \n\n",
		"a chunk ending in a CR before LF":  c + `[{"index":0,"delta":{"content":" a"},"finish_reason":null}]}` + "\r\r\n\n",
		"CRs between tokens and in strings": c + `[{"index":0,"delta":{"content":" a` + "\r" + `"},` + "\r" + `"finish_reason":null}]}` + "\n\n",
	}
	for name, shape := range shapes {
		for _, turn := range []bool{false, true} {
			t.Run(name+map[bool]string{false: ", plain", true: ", payment turn"}[turn], func(t *testing.T) {
				up := newFakeProvider(t, sseHandler(first, shape, chunk(" two"), finish, "data: [DONE]\n\n"))
				// Recovery: the first answer is cut after its first token,
				// and the other provider's stream has the shape too.
				cut := newFakeProvider(t, sseHandler(first))
				other := newFakeProvider(t, sseHandler(first, shape, chunk(" two"), finish, "data: [DONE]\n\n"))
				for _, cfg := range []struct {
					name   string
					url    string
					mutate func(*config.Config)
				}{{"one provider", up.URL, nil}, {"recovered", cut.URL, withSecondProvider(other.URL)}} {
					url, hdr := afterFinishURL(t, testConfig(t, cfg.url, cfg.mutate), turn, queryTools{})
					body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr).Body)
					if strings.Contains(body, "\r") {
						t.Errorf("%s: a raw CR reached the bot:\n%q", cfg.name, body)
					}
					for _, line := range strings.Split(body, "\n") {
						if line != "" && line != "data: [DONE]" && !gjson.Valid(strings.TrimPrefix(line, "data: ")) {
							t.Errorf("%s: a line that is no event of its own: %q\n%q", cfg.name, line, body)
						}
					}
				}
			})
		}
	}
}
