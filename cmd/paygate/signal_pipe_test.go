package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDrainOutlivesItsLogReader: the log's reader goes away (`paygate serve
// 2>&1 | jq`, both ended by the one Ctrl-C; a log shipper restarted) and
// then SIGTERM comes: paygate still drains. A write to a broken pipe on
// standard error ended a Go program by SIGPIPE at once, so the drain's own
// first log line killed it: the stream in flight was cut without its end
// and the exit was SIGPIPE's, not 0.
func TestDrainOutlivesItsLogReader(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one \"},\"finish_reason\":null}]}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"two\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	defer letGo()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, `
server: {listen: "127.0.0.1:0", admin_listen: "off", shutdown_timeout: 20s}
clients: [{name: bot, key: k-signal-0123}]
store: {path: "`+filepath.Join(dir, "p.db")+`"}
providers: [{name: fake, base_url: "`+up.URL+`", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	cmd, _, base, log := startPaygateLog(t, cfg)

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
	req.Header.Set("Authorization", "Bearer k-signal-0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	if line, _ := body.ReadString('\n'); !strings.Contains(line, "one") {
		t.Fatalf("first event %q", line)
	}

	log.Close() // the log's reader is gone
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The drain has begun (or the process is gone) once the listener
	// refuses new connections; poll until then.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still takes connections 10s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond) // polling an external state change, not synchronising
	}
	letGo()
	rest, err := io.ReadAll(body)
	if err != nil || !strings.Contains(string(rest), "two") || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("the stream in flight, drained with no log reader: %q, %v; want the rest of the answer and its [DONE]", rest, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM with no log reader: %v; want 0, the drain done", err)
	}
}
