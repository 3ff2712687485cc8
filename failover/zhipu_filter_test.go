package failover

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// zhipuSensitive is Zhipu's (BigModel, Z.AI) content filter: business code
// 1301, "System detected potentially unsafe or sensitive content in input
// or generation" (https://docs.z.ai/api-reference/api-code), a string code
// in an OpenAI-style error object, as an HTTP 400 body or an SSE error
// event.
const zhipuSensitive = `{"error":{"code":"1301","message":"系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。"}}`

// TestZhipuContentFilter: Zhipu's 1301 is a content filter wherever it
// comes: classified as a client error (HTTP 400 or the first SSE event: no
// retry, no other provider, the provider's reason to the client), Refused
// inside a stream (not finished elsewhere), and on a recovery request not
// taken for a refused prefill.
func TestZhipuContentFilter(t *testing.T) {
	t.Parallel()
	t.Run("classified", func(t *testing.T) {
		t.Parallel()
		for _, f := range []*failure{
			classifyHTTP(400, http.Header{}, []byte(zhipuSensitive), time.Now()),
			errorObject([]byte(zhipuSensitive)),
			errorObject([]byte(`{"error":{"code":1301,"message":"unsafe or sensitive content"}}`)),
		} {
			if f == nil || f.status != 400 || f.cause != CauseClientError || !f.contentFilter() {
				t.Errorf("got %+v; want status 400, cause %s, a content filter", f, CauseClientError)
			}
		}
		if f := errorObject([]byte(`{"error":{"code":"1302","message":"high concurrency"}}`)); f != nil && f.contentFilter() {
			t.Errorf("1302 taken for a content filter: %+v", f)
		}
	})
	for _, tc := range []struct {
		name   string
		refuse func(c *fconn)
	}{
		{"http 400", statusFn(400, zhipuSensitive)},
		{"first event", firstEvent(zhipuSensitive)},
	} {
		t.Run("not retried/"+tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(tc.refuse)}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) || ue.Status != 400 || ue.Code != "1301" || !strings.Contains(ue.Message, "敏感内容") {
				t.Fatalf("got provider %q err %v; want the provider's 400 1301 and its message", got.provider, got.openErr)
			}
			if a, b := len(e.fakes["a"].hits()), len(e.fakes["b"].hits()); a != 1 || b != 0 {
				t.Errorf("a saw %d requests, b %d; want 1 and 0", a, b)
			}
		})
	}
	t.Run("mid-stream", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, map[string]func(c *fconn, n int){"a": always(func(c *fconn) {
			c.sse()
			c.event(contentChunk("Hel"))
			c.event(zhipuSensitive)
			c.done()
		})}, []string{"a", "b"}, nil)
		got := e.open(t.Context(), true)
		var se *StreamError
		if !errors.As(got.end, &se) || !se.Refused() || se.Code != "1301" || se.Message == "" {
			t.Errorf("stream ended %v (%+v); want a Refused StreamError with code 1301 and the provider's message", got.end, se)
		}
	})
	t.Run("recovery", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, map[string]func(c *fconn, n int){"b": always(statusFn(400, zhipuSensitive))}, []string{"a", "b"},
			func(cfg *config.Config) { cfg.Providers[1].Continuation = "prefill" })
		got := e.openReq(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true,
			ContentType: "application/json", ExcludeProviders: []string{"a"}, Continuation: &Continuation{Text: "Hel"}})
		var ue *UpstreamError
		if !errors.As(got.openErr, &ue) || !ue.Refused() || ue.Code != "1301" {
			t.Errorf("got provider %q err %v; want a Refused 1301", got.provider, got.openErr)
		}
		if n := len(e.fakes["b"].hits()); n != 1 {
			t.Errorf("b saw %d requests; want 1 (a content filter is not a refused prefill)", n)
		}
	})
}
