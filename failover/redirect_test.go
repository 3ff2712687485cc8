package failover

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestRedirectIsAMisconfiguredProvider: a provider that answers a redirect
// (an http:// base_url answered 301 to https, a 308 for a trailing slash)
// serves elsewhere than its base_url says. It used to be classified as the
// bot's client error: the round ended, the breaker counted a success and
// the bot got the 3xx without its Location. Now it is a misconfigured
// provider, as after 401/403: the next target, the provider cooled down,
// and with no target left a 502 that names where the redirect pointed
// (without its query, which may carry a signature) and what to check.
func TestRedirectIsAMisconfiguredProvider(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			redirect := always(statusFn(code, "<html>moved</html>",
				"Location: https://api.example.com/v1/chat/completions?sig=secret", "Content-Type: text/html"))
			e := newEnv(t, map[string]func(*fconn, int){"a": redirect}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			if got.provider != "b" {
				t.Fatalf("a answered %d: round ended with %v, b saw %d requests; want b's answer",
					code, got.openErr, len(e.fakes["b"].hits()))
			}
			if st := statusOf(e.r, "a"); st.CoolingCause != CauseMisconfigured {
				t.Errorf("a cooling cause %q; want %q", st.CoolingCause, CauseMisconfigured)
			}

			only := newEnv(t, map[string]func(*fconn, int){"a": redirect}, []string{"a"}, nil)
			got = only.open(t.Context(), false)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("only target redirecting: %v; want an *UpstreamError", got.openErr)
			}
			want := fmt.Sprintf("provider a answered a redirect (HTTP %d) to https://api.example.com/v1/chat/completions: check its base_url", code)
			if ue.Status != 502 || ue.Code != CauseMisconfigured || !strings.Contains(ue.Message, want) {
				t.Errorf("only target redirecting: %d %s %q; want 502 %s saying %q", ue.Status, ue.Code, ue.Message, CauseMisconfigured, want)
			}
			if strings.Contains(ue.Message, "secret") || strings.Contains(ue.Message, "moved") {
				t.Errorf("message %q carries the Location's query or the redirect's page", ue.Message)
			}
			if n := len(only.fakes["a"].hits()); n != 1 {
				t.Errorf("a asked %d times; want once", n)
			}
		})
	}
}

// TestChatCompletionWithoutBodyFailsOver: a 2xx without a JSON object is no
// chat completion, a 204 No Content included: it used to reach the bot as
// an empty success. On other paths a 204 stays an answer (a DELETE's).
func TestChatCompletionWithoutBodyFailsOver(t *testing.T) {
	e := newEnv(t, map[string]func(*fconn, int){"a": always(statusFn(204, ""))}, []string{"a", "b"}, nil)
	if got := e.open(t.Context(), false); got.provider != "b" {
		t.Errorf("a answered 204: served by %q (err %v, body %q); want b's answer", got.provider, got.openErr, got.body)
	}
	got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "DELETE", Path: "/files/file-1"})
	if got.provider != "a" || got.openErr != nil {
		t.Errorf("a DELETE answered 204: served by %q (err %v); want a's 204", got.provider, got.openErr)
	}
}
