package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging/logtest"
)

// TestRefusedTurnLoggedOnce: a bot's request the provider refuses with a
// 4xx of its own (a bad parameter), passed on to the bot as it came, is one
// line at the default level: the attempt's, which names the provider,
// target, status, code and the provider's reason. The turn's own line
// repeated the status and the whole message (up to 64 KB) beside it, two
// warnings per request, 675 KB per 1,000 such requests.
func TestRefusedTurnLoggedOnce(t *testing.T) {
	const reason = "Invalid value for 'temperature': must be <= 2"
	up := jsonAnswerProvider(t, http.StatusBadRequest,
		fmt.Sprintf(`{"error":{"message":%q,"type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`, reason))
	logs := &logtest.Buffer{}
	url, _ := serveFake(t, up.URL, "", logs)
	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","temperature":3,"messages":[{"role":"user","content":"hello"}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != 400 || !strings.Contains(string(b), reason) {
		t.Fatalf("%d: %s; want the provider's 400 passed on", resp.StatusCode, b)
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Level     string `json:"level"`
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.RequestID == id && rec.Level != "DEBUG" && rec.Level != "INFO" {
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("a refused request wrote %d warnings (%d bytes); want 1:\n%s", len(lines), len(strings.Join(lines, "\n"))+1, strings.Join(lines, "\n"))
	}
	var rec struct {
		Msg, Provider, Code, Message string
		Status                       int
	}
	_ = json.Unmarshal([]byte(lines[0]), &rec)
	if rec.Msg != "upstream attempt failed" || rec.Provider != "fake" || rec.Status != 400 || rec.Code != "invalid_value" || rec.Message != reason {
		t.Errorf("the line %s; want the attempt's, with provider fake, status 400, code invalid_value and the reason", lines[0])
	}
}
