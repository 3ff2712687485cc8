package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/proxy/h1/h1test"
)

// TestEmptyErrorMemberBesideChoices: a provider (a relay) that puts an
// empty "error": {} on every answer beside valid choices answered: the bot
// gets that answer, whole, from that provider, on the plain path and on a
// payment turn, streamed or not. It was classified a 500, thrown away and
// generated (and billed) again by the next provider. So is a key spelled
// with an escape ("err\u006fr", which the Node SDK reads as error): the
// relay's check for an empty error looked for `"error"` only, and the
// stream then ended with the provider's error.
func TestEmptyErrorMemberBesideChoices(t *testing.T) {
	for _, key := range []string{"error", `err\u006fr`} {
		c := `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","` + key + `":{},"choices":`
		for _, stream := range []bool{false, true} {
			for _, turn := range []bool{false, true} {
				name := key + ", non-stream"
				if stream {
					name = key + ", stream"
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
						first = newFakeProvider(t, jsonHandler(200, `{"id":"q1","object":"chat.completion","created":1,"model":"m","`+key+`":{},`+
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
}

// TestEmptyErrorMemberOnEmptyChoicesFirstChunk: Azure's first chunk has
// empty choices and prompt_filter_results; a relay that puts "error":{} on
// every chunk puts it there too. That provider answered: the bot gets its
// answer, on the plain path and on a payment turn, and no other provider
// is asked. The chunk was classified a 500 before the first byte: every
// provider was asked and the bot got a 502.
func TestEmptyErrorMemberOnEmptyChoicesFirstChunk(t *testing.T) {
	const c = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","error":{},"choices":`
	for _, turn := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "payment turn"}[turn], func(t *testing.T) {
			first := newFakeProvider(t, sseHandler(
				`data: {"id":"","object":"","created":0,"model":"","error":{},"choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}`+"\n\n",
				c+`[{"index":0,"delta":{"role":"assistant","content":"Hello from first."},"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
				"data: [DONE]\n\n"))
			other := newFakeProvider(t, jsonHandler(500, `{"error":{"message":"other must not be asked"}}`))
			url, hdr := afterFinishURL(t, testConfig(t, first.URL, withSecondProvider(other.URL)), turn, queryTools{})
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr)
			body := readAll(t, resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(body, "Hello from first.") {
				t.Errorf("status %d, body:\n%s\nwant first's answer", resp.StatusCode, body)
			}
			if n := len(other.requests()); n != 0 {
				t.Errorf("the other provider was asked %d times", n)
			}
			for _, ch := range streamChunks(body) {
				if gjson.Get(ch, "error").Exists() {
					t.Errorf("a chunk with an error member reached the bot: %s", ch)
				}
			}
		})
	}
}

// TestEmptyErrorMemberOnUsageChunk: a relay that puts "error":{} on every
// chunk puts it on the include_usage chunk after the finish too (choices
// empty). Its usage reaches the bot that asked for it, without the empty
// error, and the ledger counts its tokens, whether the bot asked for usage
// or paygate forced include_usage upstream, on the plain path and on a
// payment turn. The chunk was taken for an error event after the finish:
// the stream ended there, the bot got no usage and the ledger counted 0.
func TestEmptyErrorMemberOnUsageChunk(t *testing.T) {
	const c = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","error":{},"choices":`
	for _, asked := range []bool{false, true} {
		for _, turn := range []bool{false, true} {
			name := map[bool]string{false: "usage forced", true: "usage asked"}[asked] + ", " + map[bool]string{false: "plain", true: "payment turn"}[turn]
			t.Run(name, func(t *testing.T) {
				fp := newFakeProvider(t, sseHandler(
					c+`[{"index":0,"delta":{"role":"assistant","content":"Hello."},"finish_reason":null}]}`+"\n\n",
					c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
					c+`[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`+"\n\n",
					"data: [DONE]\n\n"))
				var tools PaymentTools
				hdr := map[string]string(nil)
				if turn {
					tools, hdr = queryTools{}, map[string]string{"X-WeChat-OpenID": "o-user-1"}
				}
				s, ledger, reg := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, tools)
				t.Cleanup(ledger.Close)
				srv := h1test.NewServer(s.Handler())
				t.Cleanup(srv.Close)
				opts := ""
				if asked {
					opts = `"stream_options":{"include_usage":true},`
				}
				body := readAll(t, post(t, srv.URL, "/v1/chat/completions", `{"model":"gpt-test","stream":true,`+opts+`"messages":[{"role":"user","content":"hi"}]}`, hdr).Body)
				var usage gjson.Result
				for _, ch := range streamChunks(body) {
					if gjson.Get(ch, "error").Exists() {
						t.Errorf("a chunk with an error member reached the bot: %s", ch)
					}
					if u := gjson.Get(ch, "usage"); u.IsObject() {
						usage = u
					}
				}
				if asked && usage.Get("total_tokens").Int() != 15 {
					t.Errorf("usage %s; want the provider's (15 tokens):\n%s", usage.Raw, body)
				}
				if !asked && usage.Exists() {
					t.Errorf("usage %s sent to a bot that did not ask for it", usage.Raw)
				}
				if lastErrorCode(body) != "" || !strings.Contains(body, "data: [DONE]") {
					t.Errorf("the stream did not end well:\n%s", body)
				}
				ledger.Close()
				for kind, want := range map[string]float64{"prompt": 10, "completion": 5} {
					if n := tokensCounted(t, reg, kind); n != want {
						t.Errorf("%s tokens counted: %v; want %v", kind, n, want)
					}
				}
			})
		}
	}
}
