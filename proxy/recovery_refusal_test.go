package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestRecoveryRefusedByContentFilter: a stream cut after its first byte is
// recovered at the other provider with the sent text as a prefill. When
// that provider's content filter refuses the recovery request, the client's
// stream ends with the provider's own reason, and the provider is asked
// once: a content filter is retried nowhere (SPEC 5), so it is neither
// taken for a refused prefill and asked again fresh nor reported as "not
// recovered". A provider that refuses only the prefill is still asked
// again for a fresh answer, which finishes the client's.
func TestRecoveryRefusedByContentFilter(t *testing.T) {
	const c = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"qwen-plus","choices":`
	prefillRefused := func(w http.ResponseWriter, r *http.Request) {
		body := readAll(t, r.Body)
		if gjson.Get(body, `messages.#(role=="assistant")`).Exists() {
			jsonHandler(400, `{"error":{"message":"assistant prefill is not supported","type":"invalid_request_error","code":null}}`)(w, r)
			return
		}
		sseHandler(
			c+`[{"index":0,"delta":{"role":"assistant","content":"Partial and the rest from elsewhere"},"finish_reason":null}]}`+"\n\n",
			c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
			"data: [DONE]\n\n")(w, r)
	}
	tests := []struct {
		name      string
		other     http.HandlerFunc
		wantAsked int
		want      []string // in the client's stream
		not       []string
	}{
		{"dashscope DataInspectionFailed 400",
			jsonHandler(400, `{"code":"DataInspectionFailed","message":"Input data may contain inappropriate content.","request_id":"1","error":{"code":"DataInspectionFailed","message":"Input data may contain inappropriate content.","type":"DataInspectionFailed"}}`),
			1, []string{"Input data may contain inappropriate content.", `"code":"DataInspectionFailed"`},
			[]string{"not recovered", "[DONE]"}},
		{"dashscope data_inspection_failed as the first event",
			sseHandler(`data: {"error":{"message":"Output data may contain inappropriate content.","type":"data_inspection_failed","param":null,"code":"data_inspection_failed"},"id":"q2"}` + "\n\n"),
			1, []string{"Output data may contain inappropriate content.", `"code":"data_inspection_failed"`},
			[]string{"not recovered", "[DONE]"}},
		{"a refused prefill is asked again fresh", prefillRefused,
			2, []string{" and the rest from elsewhere", "[DONE]"}, []string{`"error"`}},
	}
	for _, tc := range tests {
		for _, path := range []string{"plain", "turn"} {
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				// The first provider's connection ends after "Partial".
				first := newFakeProvider(t, sseHandler(
					c+`[{"index":0,"delta":{"role":"assistant","content":"Partial"},"finish_reason":null}]}`+"\n\n"))
				other := newFakeProvider(t, tc.other)
				cfg := testConfig(t, first.URL, func(cfg *config.Config) {
					withSecondProvider(other.URL)(cfg)
					cfg.Providers[1].Continuation = "prefill"
				})
				url, hdr := pathProxy(t, cfg, path)
				resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr)
				body := readAll(t, resp.Body)
				if n := len(other.requests()); n != tc.wantAsked {
					t.Errorf("the other provider was asked %d times; want %d", n, tc.wantAsked)
				}
				if !strings.Contains(body, "Partial") {
					t.Errorf("the client lacks the text sent before the cut:\n%s", body)
				}
				for _, w := range tc.want {
					if !strings.Contains(body, w) {
						t.Errorf("the client's stream lacks %q:\n%s", w, body)
					}
				}
				for _, w := range tc.not {
					if strings.Contains(body, w) {
						t.Errorf("the client's stream has %q:\n%s", w, body)
					}
				}
			})
		}
	}
}
