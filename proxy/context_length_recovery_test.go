package proxy

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestContextLengthTargetNotAskedInRecovery: a stream recovered after its
// first bytes does not go back to a target that refused the stream's round
// for its context length: the continuation is that conversation and more
// (SPEC 5: context_length_exceeded, never the same target again). Asked
// again it refused again, an attempt of the recovery wasted before the
// target that could continue was asked, on the plain path as in a
// payment turn.
func TestContextLengthTargetNotAskedInRecovery(t *testing.T) {
	const c = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	for _, path := range []string{"plain", "turn"} {
		t.Run(path, func(t *testing.T) {
			small := newFakeProvider(t, contextTooLong)
			broken := newFakeProvider(t, sseHandler(
				c+`[{"index":0,"delta":{"role":"assistant","content":"Partial"},"finish_reason":null}]}`+"\n\n",
				`data: {"id":"q1","object":"chat.completion.chunk","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`+"\n\n"))
			rest := newFakeProvider(t, sseHandler(
				c+`[{"index":0,"delta":{"role":"assistant","content":"Partial and the rest"},"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
				"data: [DONE]\n\n"))
			cfg := testConfig(t, small.URL, func(c *config.Config) {
				withSecondProvider(broken.URL)(c)
				p := c.Providers[0]
				p.Name, p.BaseURL = "third", rest.URL+"/v1"
				c.Providers = append(c.Providers, p)
				c.Models[0].Targets = append(c.Models[0].Targets, config.Target{Provider: "third", Model: "vendor/large", Weight: 1})
			})
			url, hdr := pathProxy(t, cfg, path)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr)
			body := readAll(t, resp.Body)
			if !strings.Contains(body, " and the rest") || !strings.Contains(body, "[DONE]") {
				t.Fatalf("the stream was not recovered:\n%s", body)
			}
			if n := len(small.requests()); n != 1 {
				t.Errorf("the target that refused the conversation for its length was asked %d times; want once", n)
			}
		})
	}
}
