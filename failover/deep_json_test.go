package failover

import (
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestDeeplyNestedAnswerIsMalformed: a provider's answer nested a million
// levels deep (2 MB: under every size bound) is a malformed answer, the
// next target's taken, and a stream's such event is skipped as one,
// without a parse that recurses per level. gjson's validation took a stack
// frame per level: 128 MB of stack for this one, and a 32 MiB chat answer
// (MaxResponseBytes) or a 128 MiB forwarded one passed the runtime's 1 GB
// stack limit, a fatal error that ended the process with every stream and
// payment in flight. The test runs with a 16 MB stack limit, which such a
// parse exceeds (a fatal "stack overflow", not a failure).
func TestDeeplyNestedAnswerIsMalformed(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(16 << 20))
	const depth = 1 << 20
	deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
	completion := `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"from a"},"finish_reason":"stop"}],"x":` + deep + `}`
	for _, tc := range []struct {
		name, path string
		body       string
	}{
		{"chat", "/chat/completions", completion},
		{"forwarded JSON", "/embeddings", `{"object":"list","data":[],"model":"from a","x":` + deep + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(*fconn, int){
				"a": always(statusFn(200, tc.body, "Content-Type: application/json")),
				"b": always(func(c *fconn) { okJSON(c, "from b") }),
			}, []string{"a", "b"}, nil)
			got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: tc.path, Body: chatBody(false),
				ContentType: "application/json"})
			if got.openErr != nil || got.provider != "b" {
				t.Fatalf("answered by %q (%v); want b, a's answer malformed", got.provider, got.openErr)
			}
		})
	}
	t.Run("stream event", func(t *testing.T) {
		e := newEnv(t, map[string]func(*fconn, int){
			"a": always(func(c *fconn) {
				c.sse()
				c.event(contentChunk("from a"))
				c.event(`{"choices":[{"index":0,"delta":{"content":` + deep + `}}]}`)
				c.event(finishChunk())
				c.done()
			}),
		}, []string{"a"}, func(c *config.Config) {
			// Skipping the 2 MB event is paygate's work, under -race on a
			// loaded machine more than the suite's idle second, which
			// this test is not about.
			c.Providers[0].Timeouts.Idle = config.Duration(time.Minute)
		})
		got := e.open(t.Context(), true)
		if got.openErr != nil || !got.complete() || got.text != "from a" {
			t.Fatalf("stream: %v, end %v, text %q; want complete, the deep event skipped", got.openErr, got.end, got.text)
		}
		for _, ev := range got.events {
			if len(ev) > 1<<20 {
				t.Fatalf("the deep event (%d bytes) was passed on", len(ev))
			}
		}
	})
}
