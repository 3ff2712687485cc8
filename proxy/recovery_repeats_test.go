package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestRecoveryRepeatsNoOpaqueDelta: a stream cut after the client got a
// delta no fresh answer can be matched against — content given as parts
// (Mistral's reasoning models stream their thinking as
// "content":[{"type":"thinking",…}]), audio or an image model's picture
// (delta.images), however large — is not recovered: the
// fresh answer would hand the client those parts again (SPEC 5: nothing
// already sent is sent twice). The stream ends with the error event naming
// the cut, and no other provider is asked. On the plain path and on a
// payment turn.
func TestRecoveryRepeatsNoOpaqueDelta(t *testing.T) {
	const c = `data: {"id":"m1","object":"chat.completion.chunk","created":1,"model":"magistral","choices":`
	deltas := map[string]string{
		"thinking parts": `{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"UNIQUE-PART"}]}]}`,
		"audio":          `{"role":"assistant","content":null,"audio":{"id":"audio_1","transcript":"UNIQUE-PART","data":"AAAA"}}`,
		"image":          `{"role":"assistant","content":"","images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,UNIQUE-PART"}}]}`,
		// Over largeEvent: logged with a stand-in for the picture.
		"large image": `{"role":"assistant","content":"","images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,UNIQUE-PART` + strings.Repeat("A", largeEvent) + `"}}]}`,
	}
	for name, delta := range deltas {
		for _, turn := range []bool{false, true} {
			path := "plain"
			if turn {
				path = "payment turn"
			}
			t.Run(name+", "+path, func(t *testing.T) {
				first := newFakeProvider(t, sseHandler(
					c+`[{"index":0,"delta":`+delta+`,"finish_reason":null}]}`+"\n\n",
					c+`[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}`+"\n\n"))
				// first ends here: its connection closes without a finish_reason.
				other := newFakeProvider(t, sseHandler(
					c+`[{"index":0,"delta":`+delta+`,"finish_reason":null}]}`+"\n\n",
					c+`[{"index":0,"delta":{"content":"Hello world."},"finish_reason":null}]}`+"\n\n",
					c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
					"data: [DONE]\n\n"))
				url, hdr := afterFinishURL(t, testConfig(t, first.URL, withSecondProvider(other.URL)), turn, queryTools{})
				body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr).Body)
				if n := strings.Count(body, "UNIQUE-PART"); n != 1 {
					t.Errorf("the client received the %s %d times; want once:\n%s", name, n, body)
				}
				if n := len(other.requests()); n != 0 {
					t.Errorf("the other provider was asked %d times for an answer that cannot be matched", n)
				}
				if code := lastErrorCode(body); code != "upstream_connection_lost" {
					t.Errorf("the stream ended with error code %q; want the cut's upstream_connection_lost:\n%s", code, body)
				}
			})
		}
	}
}

// TestRecoveryRepeatsNoRefusal: a refusal delta is text like content: a
// fresh answer must repeat the refusal the client already has, which is
// skipped, and only the rest reaches the client. A provider that
// continues a prefill is not given one: a refusal cannot be prefilled,
// and a model continuing the text would refuse again from the start. On
// the plain path and on a payment turn.
func TestRecoveryRepeatsNoRefusal(t *testing.T) {
	const c = `data: {"id":"m1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":`
	for _, tc := range []struct {
		name    string
		prefill bool
		text    string // content before the refusal
	}{
		{"refusal only", false, ""},
		{"text then refusal, prefill provider", true, "Well. "},
	} {
		for _, turn := range []bool{false, true} {
			path := "plain"
			if turn {
				path = "payment turn"
			}
			t.Run(tc.name+", "+path, func(t *testing.T) {
				var head []string
				if tc.text != "" {
					head = append(head, c+`[{"index":0,"delta":{"role":"assistant","content":"`+tc.text+`"},"finish_reason":null}]}`+"\n\n")
				}
				head = append(head, c+`[{"index":0,"delta":{"role":"assistant","refusal":"UNIQUE-REFUSAL "},"finish_reason":null}]}`+"\n\n")
				first := newFakeProvider(t, sseHandler(head...))
				other := newFakeProvider(t, sseHandler(append(head,
					c+`[{"index":0,"delta":{"refusal":"I can't help."},"finish_reason":null}]}`+"\n\n",
					c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
					"data: [DONE]\n\n")...))
				cfg := testConfig(t, first.URL, withSecondProvider(other.URL))
				if tc.prefill {
					cfg.Providers[1].Continuation = "prefill"
				}
				url, hdr := afterFinishURL(t, cfg, turn, queryTools{})
				body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr).Body)
				if n := strings.Count(body, "UNIQUE-REFUSAL"); n != 1 {
					t.Errorf("the client received the refusal text %d times; want once:\n%s", n, body)
				}
				if n := strings.Count(body, "I can't help."); n != 1 {
					t.Errorf("the client received the refusal's rest %d times; want once:\n%s", n, body)
				}
				if tc.text != "" && strings.Count(body, tc.text) != 1 {
					t.Errorf("the client received the text before the refusal %d times; want once:\n%s", strings.Count(body, tc.text), body)
				}
				if code := lastErrorCode(body); code != "" {
					t.Errorf("the stream ended with error %q; want the recovered answer:\n%s", code, body)
				}
				for _, r := range other.requests() {
					if last := gjson.GetBytes(r.Body, "messages.@reverse.0.role").String(); last == "assistant" {
						t.Errorf("the recovery was sent a prefill: %s", r.Body)
					}
				}
			})
		}
	}
}

// lastErrorCode is the code of the error event a client stream holds, ""
// when it holds none.
func lastErrorCode(body string) string {
	code := ""
	for _, line := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			if e := gjson.Get(d, "error"); e.Exists() {
				code = e.Get("code").String()
				if code == "" {
					code = "(no code)"
				}
			}
		}
	}
	return code
}
