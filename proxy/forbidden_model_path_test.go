package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestForwardedPathModelRefusedIsForbidden: a 403 model_not_found on a
// forwarded call (OpenAI's answer to a project key not allowed the
// embedding model: "Project `proj_…` does not have access to model …") is
// the next target's to take, and with none left reaches the bot as the
// 403 upstream_forbidden every 401 or 403 on a forwarded path ends as
// (README), which the SDKs raise as PermissionDeniedError and do not
// retry. Read as the model's failure alone it ended as a 502
// upstream_model_not_found, which the SDKs retry in vain, and it named
// paygate's project to the bot.
func TestForwardedPathModelRefusedIsForbidden(t *testing.T) {
	const reason = "Project `proj_abc123` does not have access to model `text-embedding-3-large`"
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/chat/completions" {
			_, _ = io.WriteString(w, okCompletion)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"error":{"message":"`+reason+`","type":"invalid_request_error","param":null,"code":"model_not_found"}}`)
	})
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, proxyURL, "/v1/embeddings", `{"model":"gpt-test","input":"hi"}`, nil)
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "upstream_forbidden") {
		t.Errorf("POST /v1/embeddings: %d %s; want 403 upstream_forbidden", resp.StatusCode, body)
	}
	if strings.Contains(body, "proj_abc123") {
		t.Errorf("the provider's text reached the bot: %s", body)
	}
	resp = post(t, proxyURL, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	if body := readAll(t, resp.Body); resp.StatusCode != 200 {
		t.Errorf("chat after the refused model: %d %s; want 200", resp.StatusCode, body)
	}
}
