package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/testproc"
)

// nginx in front of paygate, as users deploy it: a short config whose
// locations pass to paygate's listeners with every proxy setting left at
// nginx's defaults (HTTP/1.0 to the upstream without keep-alive, responses
// buffered, proxy_read_timeout 60s, client_max_body_size 1m). It runs as
// cmd/paygate-bench runs its nginx: Debian's nginx-light, in the
// foreground on a config and prefix of its own. These tests need nginx and
// fail without it, never skip: scripts/test.sh installs nginx-light.

// startNginx runs nginx listening on addr with server, the inside of its
// server block after the listen line (the locations), and returns its
// URL. It is stopped, and its error log shown when the test failed, at the
// test's end.
func startNginx(t *testing.T, addr, server string) string {
	t.Helper()
	bin := testproc.Bin(t, "nginx", "the tests of paygate behind a front need it (apt-get install -y nginx-light; scripts/test.sh installs it)")
	// nginx's workers reach the temp paths there (a buffered answer
	// larger than the buffers spills there).
	dir := testproc.SharedDir(t, "paygate-front-", 0o755)
	conf := `worker_processes 1;
pid ` + dir + `/nginx.pid;
error_log ` + dir + `/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ` + dir + `/client_body;
    proxy_temp_path ` + dir + `/proxy;
    fastcgi_temp_path ` + dir + `/fastcgi;
    uwsgi_temp_path ` + dir + `/uwsgi;
    scgi_temp_path ` + dir + `/scgi;
    server {
        listen ` + addr + `;
` + server + `
    }
}
`
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	errLog := filepath.Join(dir, "error.log")
	cmd := exec.Command(bin, "-p", dir, "-c", path, "-e", errLog, "-g", "daemon off;")
	exited := testproc.StartLogged(t, cmd, dir, "nginx", "error.log")
	// Up once its pid file names it: nginx writes it after it bound its
	// port (and exits on "bind() failed" instead). A connection taken is
	// no proof: another process may hold the port freeAddr handed out.
	pidFile, want := filepath.Join(dir, "nginx.pid"), strconv.Itoa(cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && strings.TrimSpace(string(b)) == want {
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "stderr"))
			l, _ := os.ReadFile(errLog)
			t.Fatalf("nginx exited: %s%s\nconfig:\n%s", b, l, conf)
		default:
		}
		if time.Now().After(deadline) {
			l, _ := os.ReadFile(errLog)
			t.Fatalf("nginx has not bound %s after 10s: %s", addr, l)
		}
		time.Sleep(10 * time.Millisecond) // polling for the pid file, not a synchronisation
	}
	return "http://" + addr
}

// defaultLocations is what a user writes: paygate at the root, and again
// under a path prefix, every proxy setting at nginx's default.
func defaultLocations(upstream string, extra string) string {
	upstream = strings.TrimPrefix(upstream, "http://")
	return `        location / { proxy_pass http://` + upstream + `; ` + extra + ` }
        location /paygate/ { proxy_pass http://` + upstream + `/; ` + extra + ` }`
}

var errNginxHeld = errors.New("held")

// gateWait waits for gate, or gives up after d: a stream held back by the
// front until its end never opens the gate.
func gateWait(ctx context.Context, gate <-chan struct{}, d time.Duration) error {
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return errNginxHeld
	}
}
