package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestServedHeapProfileSamples: paygate serve with server.pprof serves a
// heap profile that samples allocations, because serve turns the sampling
// off (runtime.MemProfileRate 0) where nothing serves the profile, and a
// serve that did so with pprof on too served a heap profile of nothing
// ("@ heap/0"). Run as the binary: the rate is set in cmdServe.
func TestServedHeapProfileSamples(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, `
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", pprof: true}
clients: [{name: bot, key: k-heap-0123}]
admin: {token: `+testAdminToken+`}
store: {path: "`+filepath.Join(dir, "p.db")+`"}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	cmd := exec.Command(os.Args[0], "serve", "-config", cfg)
	cmd.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1", "GODEBUG=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	l := waitLine(t, scanLines(stderr), "its admin listener", func(l string) bool {
		return gjson.Get(l, "msg").Str == "listening" && gjson.Get(l, "listener").Str == "admin"
	})
	req, _ := http.NewRequest(http.MethodGet, "http://"+gjson.Get(l, "addr").Str+"/debug/pprof/heap?debug=1", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	head, _, _ := strings.Cut(string(b), "\n")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(head, "heap profile: ") || strings.HasSuffix(head, "@ heap/0") {
		t.Fatalf("heap profile: status %d, %q; want one that samples (not heap/0)", resp.StatusCode, head)
	}
}
