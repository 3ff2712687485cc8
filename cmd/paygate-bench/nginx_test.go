package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestRenderNginxConf(t *testing.T) {
	conf, err := renderNginxConf(nginxParams{Prefix: "/tmp/pb", Listen: "127.0.0.1:18080", Upstream: "127.0.0.1:19090", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want string
	}{
		{name: "workers match the CPUs", want: "worker_processes 2;"},
		{name: "no access log", want: "access_log off;"},
		{name: "listens where asked", want: "listen 127.0.0.1:18080;"},
		{name: "upstream address", want: "server 127.0.0.1:19090;"},
		{name: "upstream keep-alive pool", want: "keepalive 256;"},
		{name: "HTTP/1.1 to the upstream", want: "proxy_http_version 1.1;"},
		{name: "no Connection: close upstream", want: `proxy_set_header Connection "";`},
		{name: "responses not buffered", want: "proxy_buffering off;"},
		{name: "pid in the prefix", want: "pid /tmp/pb/nginx.pid;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(conf, tt.want) {
				t.Errorf("config lacks %q; got:\n%s", tt.want, conf)
			}
		})
	}
	if strings.Contains(conf, "daemon") {
		t.Errorf("config sets daemon; it is given with -g and nginx rejects a duplicate")
	}
}

// TestNginxAcceptsConf checks the generated config with `nginx -t`. It needs
// nginx, which the command itself requires; in CI its absence is a failure.
func TestNginxAcceptsConf(t *testing.T) {
	bin, err := findNginx("")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("nginx is required in CI (apt-get install -y nginx-light): %v", err)
		}
		t.Skipf("nginx not installed: %v", err)
	}
	dir := t.TempDir()
	listen, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	path, err := writeNginxConf(nginxParams{Prefix: dir, Listen: listen, Upstream: "127.0.0.1:9", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-t"}, nginxArgs(dir, path)...)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

func TestFindNginxNamedPathMissing(t *testing.T) {
	_, err := findNginx("/nonexistent/nginx")
	if !errors.Is(err, errNoNginx) {
		t.Errorf("got %v; want errNoNginx", err)
	}
}
