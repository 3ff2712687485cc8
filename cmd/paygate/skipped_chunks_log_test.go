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

// TestSkippedChunksLoggedOncePerAttempt: a provider (or a relay before it)
// whose stream holds chunks paygate cannot read (JSON arrays here, which
// are not chunk objects) has them skipped, and said twice for the attempt:
// the first at once, and how many in all in one line as the attempt ends. A
// warning per chunk wrote 1,000 lines (181 KB) for one answer of 1,000
// such chunks, 18 MB for a hundred turns of it.
func TestSkippedChunksLoggedOncePerAttempt(t *testing.T) {
	const bad = 1000
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`+"\n\n")
		for range bad {
			fmt.Fprint(w, "data: [1,2]\n\n")
		}
		fmt.Fprint(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	logs := &logtest.Buffer{}
	url, _ := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
`, logs)
	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hello"}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"content":"hi"`) {
		t.Fatalf("%d: %s", resp.StatusCode, b)
	}
	var lines []string
	told := 0
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
		if !strings.HasPrefix(rec.Msg, "upstream chunk") {
			continue
		}
		lines = append(lines, line)
		if rec.RequestID != id || rec.Level != "WARN" {
			t.Errorf("line %s: want WARN with request_id %s", line, id)
		}
		if rec.Msg == "upstream chunks skipped" {
			told = rec.Chunks
		}
	}
	if len(lines) != 2 || told != bad {
		t.Errorf("%d unreadable chunks: %d lines, their count %d (want 2 lines, the count %d); first: %.300s",
			bad, len(lines), told, bad, strings.Join(lines[:min(2, len(lines))], "\n"))
	}
}
