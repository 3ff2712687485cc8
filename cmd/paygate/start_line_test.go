package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestStartSaysVersionPaymentsAndStore: serve's first log line says which
// build runs, whether money is real, and where the orders are kept, and
// /metrics names the same build as `paygate version`. A new user running the
// README's command saw the listeners' addresses and nothing else: not that
// the WeChat Pay simulator (which takes no real money) was in use, not the
// store file (a relative store.path, read from the working directory), and
// no version anywhere but `paygate version` of a binary that may not be the
// one running. The binary is built as the image builds it (the
// Dockerfile's go build: static, -trimpath), its version stamped with
// -ldflags. Built so, it compiles nothing deploy's TestMain (the same
// build, run beside this package's tests in CI) has not: only the link is
// left, where a build of its own compiled every package again (20 s).
func TestStartSaysVersionPaymentsAndStore(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "paygate")
	const stamped = "v1.2.3-start-line"
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+stamped, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("paygate version: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "paygate "+stamped {
		t.Fatalf("paygate version printed %q; want %q", got, "paygate "+stamped)
	}

	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work, "config.yaml"), `server: {listen: "127.0.0.1:0", admin_listen: "off"}
store: {path: data/paygate.db}
`)
	cmd := exec.Command(bin) // the README's run command: no sub-command, ./config.yaml
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	lines := scanLines(stderr)
	var first map[string]any
	var before []string
	addr := ""
	waitLine(t, lines, "its main listener", func(l string) bool {
		before = append(before, l)
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			return false
		}
		if first == nil {
			first = m
		}
		if m["msg"] == "listening" && m["listener"] == "main" {
			addr, _ = m["addr"].(string)
			return true
		}
		return false
	})
	go func() {
		for range lines { // keep the pipe drained until exit
		}
	}()
	wantStore := filepath.Join(work, "data", "paygate.db")
	if first["msg"] != "paygate starting" || first["version"] != stamped ||
		!strings.Contains(first["payments"].(string), "simulator") || !strings.Contains(first["payments"].(string), "no real money") ||
		first["store"] != wantStore || first["config"] != "config.yaml" {
		t.Errorf("serve's first log line: %v\nwant msg \"paygate starting\", version %q, payments naming the simulator and no real money, store %q, config config.yaml; lines before the listener:\n%s",
			first, stamped, wantStore, strings.Join(before, "\n"))
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `paygate_build_info{goversion="` + runtime.Version() + `",version="` + stamped + `"} 1`
	if !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s; its paygate_build lines: %q", want, grepLines(string(body), "paygate_build"))
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// TestStartLineNamesRedisAsServeDialsIt: the start line's store names the
// Redis deployment as serve dials it. With master_name the addresses are
// the sentinels, asked for the master, and several (or cluster: true) a
// cluster's seeds; it said "redis ADDRS" for all three, a sentinel's port
// read as the server holding the orders. The password is never in it.
func TestStartLineNamesRedisAsServeDialsIt(t *testing.T) {
	for _, tc := range []struct {
		name, redis, want string
	}{
		{"one server", `{addrs: ["10.0.0.5:6379"], password: s3cret-pass, key_prefix: "pg:"}`, `redis 10.0.0.5:6379 prefix "pg:"`},
		{"sentinels", `{addrs: ["10.0.0.5:26379", "10.0.0.6:26379"], master_name: mymaster, password: s3cret-pass}`, `redis master "mymaster" from sentinels 10.0.0.5:26379,10.0.0.6:26379 prefix "paygate:"`},
		{"cluster", `{addrs: ["10.0.0.5:6379", "10.0.0.6:6379"], password: s3cret-pass}`, `redis cluster 10.0.0.5:6379,10.0.0.6:6379 prefix "paygate:"`},
		{"cluster seed", `{addrs: ["10.0.0.5:6379"], cluster: true}`, `redis cluster 10.0.0.5:6379 prefix "paygate:"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("store: {driver: redis, redis: "+tc.redis+"}\n"), "x.yaml", func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			got := storeDescription(cfg)
			if got != tc.want {
				t.Errorf("store %q; want %q", got, tc.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("store %q names the password", got)
			}
		})
	}
}
