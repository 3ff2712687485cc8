package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging/logtest"
)

// TestFailoverDecisionLineBounded: the line that says why the round moved
// on from a provider (here a 400 that says in words the credit is too
// low, which may be the bot's own words) gives the provider's reason
// masked and cut short, as the attempt's line beside it does: logged
// whole, a message of 60 KB (a provider's error body is read up to 64 KB)
// was a line of 60 KB per such request.
func TestFailoverDecisionLineBounded(t *testing.T) {
	const reason = "Your credit balance is too low to access the API"
	msg := reason + ": " + strings.Repeat("z", 60_000)
	low := jsonAnswerProvider(t, http.StatusBadRequest,
		fmt.Sprintf(`{"type":"error","error":{"type":"invalid_request_error","message":%q}}`, msg))
	up := jsonAnswerProvider(t, http.StatusOK, hiAnswer)
	logs := &logtest.Buffer{}
	url, _ := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: low, base_url: "`+low.URL+`/v1", api_key: sk-upstream-secret-low}
  - {name: up, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret-up}
models:
  - {name: gpt-4o, targets: [{provider: low, model: openai/gpt-4o}, {provider: up, model: openai/gpt-4o}]}
`, logs)
	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d; want the next target's answer", resp.StatusCode)
	}
	said := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["provider"] != "low" {
			continue
		}
		if strings.Contains(rec["msg"].(string), "out of credit") {
			said = strings.HasPrefix(rec["message"].(string), reason)
		}
		if len(line) > 2048 {
			t.Errorf("a line of %d bytes for a message of %d: %.300s", len(line), len(msg), line)
		}
	}
	if !said {
		t.Errorf("no line says provider low is out of credit in words, with its reason:\n%.2000s", logs.String())
	}
}
