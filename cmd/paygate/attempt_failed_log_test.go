package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging/logtest"
)

// TestFailedAttemptLogSaysWhy: a provider's failed attempt that the round
// got past (the next target answered) is logged with the provider's own
// reason, masked and cut short as a client's error is, so that an operator
// can tell why provider A was skipped: its line said "err": null for every
// HTTP-status failure, and the reason reached no line, the client getting
// the next target's answer. A refused provider key's message stays out
// (some providers echo part of the key).
func TestFailedAttemptLogSaysWhy(t *testing.T) {
	const reason = "The server had an error while processing your request (shard 7 overloaded)"
	down := jsonAnswerProvider(t, http.StatusInternalServerError,
		fmt.Sprintf(`{"error":{"message":%q,"type":"server_error"}}`, reason+" key sk-upstream-secret-down "+strings.Repeat("x", 3000)))
	badKey := jsonAnswerProvider(t, http.StatusUnauthorized,
		`{"error":{"message":"Incorrect API key provided: sk-ups****-bad. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}`)
	up := jsonAnswerProvider(t, http.StatusOK, hiAnswer)
	logs := &logtest.Buffer{}
	url, _ := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: down, base_url: "`+down.URL+`/v1", api_key: sk-upstream-secret-down}
  - {name: badkey, base_url: "`+badKey.URL+`/v1", api_key: sk-upstream-secret-bad}
  - {name: up, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret-up}
models:
  - {name: gpt-4o, targets: [{provider: down, model: openai/gpt-4o}, {provider: badkey, model: openai/gpt-4o}, {provider: up, model: openai/gpt-4o}]}
`, logs)
	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"hi"`) {
		t.Fatalf("%d: %s", resp.StatusCode, b)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Msg      string `json:"msg"`
			Provider string `json:"provider"`
			Message  string `json:"message"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "upstream attempt failed" {
			continue
		}
		seen[rec.Provider] = true
		switch rec.Provider {
		case "down":
			if !strings.HasPrefix(rec.Message, reason) || len(rec.Message) > 512 || strings.Contains(line, "sk-upstream-secret-down") {
				t.Errorf("provider down's attempt line (%d bytes), message of %d bytes; want the provider's reason %q, at most 512 bytes, its key masked: %.700s",
					len(line), len(rec.Message), reason, line)
			}
		case "badkey":
			if strings.Contains(line, "Incorrect API key") || strings.Contains(line, "-bad") {
				t.Errorf("a refused key's message was logged (providers echo part of the key): %s", line)
			}
		}
	}
	if !seen["down"] || !seen["badkey"] {
		t.Errorf("attempt lines for %v; want down and badkey:\n%s", seen, logs.String())
	}
}

// hiAnswer is a provider's whole answer "hi", with its usage.
const hiAnswer = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`

// jsonAnswerProvider answers every request with status and the JSON body,
// as a provider that refuses (or answers) each request alike does.
func jsonAnswerProvider(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}
