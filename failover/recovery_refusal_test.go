package failover

import (
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestRecoveryContentFilterNotAskedAgain: on a recovery round (Request.
// Continuation), a target whose content filter refuses the request ends
// the round with the provider's reason, Refused: it is not taken for a
// refusal of the prefill and asked again without it (SPEC 5: a content
// filter is retried nowhere). A target that refuses the prefill itself is
// still asked again for a fresh answer.
func TestRecoveryContentFilterNotAskedAgain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		b           func(c *fconn)
		wantRefused bool // else b answers fresh
		wantBHits   int
		wantCode    string
		wantMsg     string
	}{
		{"dashscope DataInspectionFailed 400", statusFn(400, dashScopeInspection400),
			true, 1, "DataInspectionFailed", "inappropriate content"},
		{"dashscope data_inspection_failed as the first event", firstEvent(dashScopeInspection),
			true, 1, "data_inspection_failed", "inappropriate content"},
		{"openrouter 403 flagged input", statusFn(403, openRouterFlagged),
			true, 1, "403", "flagged"},
		{"a refused prefill is asked again fresh", func(c *fconn) {
			if gjson.Get(c.lastBody, `messages.#(role=="assistant")`).Exists() {
				c.status(400, errBody("invalid_request_error", "", "assistant prefill is not supported"))
				return
			}
			okStream(c, "fresh")
		}, false, 2, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"b": always(tc.b)}, []string{"a", "b"}, func(cfg *config.Config) {
				cfg.Providers[1].Continuation = "prefill"
			})
			got := e.openReq(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true),
				Stream: true, ContentType: "application/json", ExcludeProviders: []string{"a"},
				Continuation: &Continuation{Text: "Partial"}})
			if n := len(e.fakes["b"].hits()); n != tc.wantBHits {
				t.Errorf("b saw %d requests; want %d", n, tc.wantBHits)
			}
			if !tc.wantRefused {
				if got.openErr != nil || got.provider != "b" || got.text != "fresh" {
					t.Fatalf("got provider %q text %q err %v; want b's fresh answer", got.provider, got.text, got.openErr)
				}
				if !strings.Contains(e.logs.String(), "refused the continuation") {
					t.Errorf("no log line for the refused continuation")
				}
				return
			}
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("got provider %q err %v; want an *UpstreamError", got.provider, got.openErr)
			}
			r, ok := any(ue).(interface{ Refused() bool })
			if !ok || !r.Refused() {
				t.Errorf("%+v is not Refused: the client would not get the filter's reason", ue)
			}
			if ue.Code != tc.wantCode || !strings.Contains(ue.Message, tc.wantMsg) {
				t.Errorf("got code %q message %q; want %q and the provider's %q", ue.Code, ue.Message, tc.wantCode, tc.wantMsg)
			}
			if strings.Contains(e.logs.String(), "refused the continuation") {
				t.Errorf("the content filter was taken for a refused prefill:\n%s", e.logs.String())
			}
		})
	}
}
