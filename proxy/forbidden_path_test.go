package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestForwardedPathRefusedKeepsTheProvider: a 401 or 403 on a path the bot
// chose (an endpoint the operator's restricted key lacks the scope of, an
// organization admin path) says the key may not do that, not that the key
// is bad: the bot gets a 403 saying the provider refused paygate's key
// there (not the provider's text, which for a wrong key echoes part of
// it), and chat completions on the same provider go on answering, where
// the provider used to be cooled down as misconfigured for every bot.
func TestForwardedPathRefusedKeepsTheProvider(t *testing.T) {
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/v1/files", http.StatusUnauthorized},
		{"/v1/files", http.StatusForbidden},
		// Listing stored chat completions is a forwarded call too.
		{"/v1/chat/completions?limit=5", http.StatusUnauthorized},
	} {
		status := tc.status
		t.Run(tc.path+" "+http.StatusText(status), func(t *testing.T) {
			const reason = "You have insufficient permissions for this operation. Missing scopes: api.files.read."
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions" {
					_, _ = io.WriteString(w, okCompletion)
					return
				}
				w.WriteHeader(status)
				_, _ = io.WriteString(w, `{"error":{"message":"`+reason+`","type":"invalid_request_error","param":null,"code":null}}`)
			})
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := send(t, http.MethodGet, proxyURL, tc.path, "", nil)
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "upstream_forbidden") {
				t.Errorf("GET %s: %d %s; want 403 upstream_forbidden", tc.path, resp.StatusCode, body)
			}
			if strings.Contains(body, "Missing scopes") {
				t.Errorf("GET %s: the provider's text reached the bot: %s", tc.path, body)
			}
			resp = post(t, proxyURL, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
			body = readAll(t, resp.Body)
			if resp.StatusCode != 200 {
				t.Errorf("chat after the refused path: %d %s; want 200: the provider answers chat", resp.StatusCode, body)
			}
		})
	}
}
