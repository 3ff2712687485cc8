package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging/logtest"
)

// TestStreamErrorEventLogBounded: an error event a provider (or a relay)
// sends inside an event stream, after the answer began or after its
// finish, is logged with its reason masked and cut short, as an attempt's
// is, however long its message: the provider's text may quote what the
// user wrote, and an event holds up to 32 MiB. Logged whole, one of 100 KB
// wrote two or three lines of 100 KB each for one turn.
func TestStreamErrorEventLogBounded(t *testing.T) {
	const reason = "upstream overloaded, request quoted: "
	msg := reason + "sk-upstream-secret " + strings.Repeat("y", 100_000)
	errEvent := fmt.Sprintf(`data: {"error":{"message":%q,"type":"server_error","code":"boom"}}`+"\n\n", msg)
	chunk := func(finish string) string {
		return `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":` + finish + `}]}` + "\n\n"
	}
	for _, tc := range []struct{ name, stream, events string }{
		{"stream, after the first byte", "true", chunk("null") + errEvent},
		{"stream, after the finish", "true", chunk(`"stop"`) + errEvent},
		{"whole, after the finish", "false", chunk(`"stop"`) + errEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, tc.events)
			}))
			t.Cleanup(up.Close)
			logs := &logtest.Buffer{}
			url, _ := serveFake(t, up.URL, "", logs)
			resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","stream":`+tc.stream+`,"messages":[{"role":"user","content":"hello"}]}`)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			id := resp.Header.Get("X-Request-Id")
			said := false
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) != nil || rec["request_id"] != id {
					continue
				}
				said = said || strings.Contains(line, reason)
				if len(line) > 2048 {
					t.Errorf("a line of %d bytes for an error event of %d: %.300s", len(line), len(msg), line)
				}
			}
			if !said {
				t.Errorf("no line of the turn gives the provider's reason %q:\n%.3000s", reason, logs.String())
			}
		})
	}
}
