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

// TestSkippedChunksLoggedOncePerAttempt: a provider (or a relay before it)
// whose event stream holds chunks paygate cannot read as they are (JSON
// arrays, which are not chunk objects; a member named twice) has each
// skipped or read as documented, and said twice for the attempt: the first
// at once, and how many in all in one line as the attempt ends, streamed
// or assembled for a non-stream request. A warning per chunk wrote 1,000
// lines (181-266 KB) for one answer of 1,000 such chunks.
func TestSkippedChunksLoggedOncePerAttempt(t *testing.T) {
	const bad = 1000
	for _, tc := range []struct {
		name, stream, chunk, first, all string
	}{
		{"stream, arrays", "true", `[1,2]`, "upstream chunk skipped", "upstream chunks skipped"},
		{"whole, content twice", "false",
			`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a","content":"a"},"finish_reason":null}]}`,
			"upstream chunk naming a member two ways skipped", "upstream chunks naming a member two ways skipped"},
		{"whole, a usage count twice", "false",
			`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"total_tokens":2}}`,
			"upstream chunk naming a usage count two ways read with its first copy", "upstream chunks naming a usage count two ways read with their first copies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`+"\n\n")
				for range bad {
					fmt.Fprintf(w, "data: %s\n\n", tc.chunk)
				}
				fmt.Fprint(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n")
				fmt.Fprint(w, "data: [DONE]\n\n")
			}))
			t.Cleanup(up.Close)
			logs := &logtest.Buffer{}
			url, _ := serveFake(t, up.URL, "", logs)
			resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","stream":`+tc.stream+`,"messages":[{"role":"user","content":"hello"}]}`)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			id := resp.Header.Get("X-Request-Id")
			if resp.StatusCode != 200 || !strings.Contains(string(b), `hi`) {
				t.Fatalf("%d: %s", resp.StatusCode, b)
			}
			var lines []string
			firsts, told := 0, 0
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec struct {
					Msg       string `json:"msg"`
					Level     string `json:"level"`
					RequestID string `json:"request_id"`
					Chunks    int    `json:"chunks"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				switch rec.Msg {
				case tc.first:
					firsts++
				case tc.all:
					told = rec.Chunks
				default:
					continue
				}
				lines = append(lines, line)
				if rec.RequestID != id || rec.Level != "WARN" {
					t.Errorf("line %s: want WARN with request_id %s", line, id)
				}
			}
			if len(lines) != 2 || firsts != 1 || told != bad {
				t.Errorf("%d such chunks: %d lines, their count %d (want the first and the count %d); first: %.300s",
					bad, len(lines), told, bad, strings.Join(lines[:min(2, len(lines))], "\n"))
			}
		})
	}
}
