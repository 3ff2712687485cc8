package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestShutdownDrainsStreams: SIGTERM (here: ctx cancel, which is what the
// signal handler does) stops new connections but lets an in-flight stream
// finish.
func TestShutdownDrainsStreams(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	started := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one \"},\"finish_reason\":null}]}\n\n")
		w.(http.Flusher).Flush()
		close(started)
		<-release
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"two\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	defer letGo() // first: a failing check must not leave the upstream (and up.Close) waiting
	src := `
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", shutdown_timeout: 20s}
clients: [{name: bot, key: k-drain}]
store: {path: "` + filepath.Join(t.TempDir(), "p.db") + `"}
providers: [{name: fake, base_url: "` + up.URL + `", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`
	cfg, err := config.Parse([]byte(src), "t.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ready := make(chan map[string]string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, ready) }()
	addrs := <-ready
	base := "http://" + addrs["main"]

	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, err, resp)
		}
		resp.Body.Close()
	}

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
	req.Header.Set("Authorization", "Bearer k-drain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.Contains(line, "one") {
		t.Fatalf("first event %q", line)
	}

	stop() // what SIGTERM does
	// New connections are refused once shutdown began, on every listener
	// while the stream still drains; poll until then.
	for _, l := range []string{"main", "admin"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := http.Get("http://" + addrs[l] + "/healthz")
			if err != nil {
				break
			}
			c.Body.Close()
			if time.Now().After(deadline) {
				t.Fatalf("%s listener still accepting new connections while the bots' stream drains", l)
			}
			time.Sleep(10 * time.Millisecond) // polling an external state change, not synchronising
		}
	}
	letGo()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("in-flight stream cut during drain: %v", err)
	}
	if !strings.Contains(string(rest), "two") || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("drained stream ended with %q; want the rest and [DONE]", rest)
	}
	if err := <-done; err != nil {
		t.Errorf("serve returned %v", err)
	}
}

func TestRunCommands(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "server:\n  listen: \"127.0.0.1:1\"\n  lisen: x\n")
	badTypes := filepath.Join(dir, "bad-types.yaml")
	writeFile(t, badTypes, "server:\n  max_body_bytes: abc\n  sse_keepalive: 30\n")
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"version", []string{"version"}, 0, "paygate"},
		{"check-config ok", []string{"check-config", "-config", "../../config.yaml"}, 0, "ok"},
		{"check-config names file:line", []string{"check-config", "-config", bad}, 1, bad + ":3: server.lisen: unknown key"},
		{"check-config names the key of every bad value", []string{"check-config", "-config", badTypes}, 1,
			badTypes + ":2: server.max_body_bytes: cannot unmarshal !!str `abc` into int64\n" +
				badTypes + ":3: server.sse_keepalive: \"30\" is not a duration"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"check-config refuses a file given without -config", []string{"check-config", bad}, 2,
			`unexpected argument "` + bad + `": give the config file with -config FILE`},
		{"serve refuses a file given without -config", []string{"serve", bad}, 2, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			code := run(tc.args, &out, &out)
			if code != tc.code || !strings.Contains(out.String(), tc.contains) {
				t.Errorf("exit %d output %q; want %d containing %q", code, out.String(), tc.code, tc.contains)
			}
		})
	}
}

// TestPprofNeedsTheAdminToken: server.pprof serves profiles on the admin
// listener behind the admin token, like every other admin route: a CPU
// profile costs CPU and a goroutine dump shows the requests in flight.
func TestPprofNeedsTheAdminToken(t *testing.T) {
	src := `
server: {pprof: true}
admin: {token: admin-token-0123456789abcdef}
store: {path: "` + filepath.Join(t.TempDir(), "p.db") + `"}
`
	cfg, err := config.Parse([]byte(src), "p.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, io.Discard, "http://127.0.0.1:1/wechatpay/notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	srv := httptest.NewServer(a.adminHandler())
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"admin-token-0123456789abcdef", http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/debug/pprof/", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("token %q: status %d; want %d", tc.token, resp.StatusCode, tc.want)
		}
	}
}
