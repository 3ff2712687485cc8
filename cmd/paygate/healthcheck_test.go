package main

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestHealthcheckFollowsTheConfig: the image's HEALTHCHECK used to ask
// 127.0.0.1:8080 whatever the port serve listened on, so a PAYGATE_LISTEN
// or a mounted config that moved it made a healthy container unhealthy.
// With -config, healthcheck asks the server.listen of the config serve
// reads, with the same environment (a wildcard host on loopback).
func TestHealthcheckFollowsTheConfig(t *testing.T) {
	dir := t.TempDir()
	src := `
server: {listen: "127.0.0.1:0", admin_listen: "off"}
clients: [{name: bot, key: k-health-0123456789}]
store: {path: "` + filepath.Join(dir, "p.db") + `"}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: x}]
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
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	_, port, _ := net.SplitHostPort((<-ready)["main"])

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()

	// The shipped config's way: the listen address from the environment.
	file := filepath.Join(dir, "config.yaml")
	writeFile(t, file, strings.Replace(src, `listen: "127.0.0.1:0"`, `listen: "${PAYGATE_LISTEN:-127.0.0.1:8080}"`, 1))
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "server:\n  lisen: x\n")

	tests := []struct {
		name     string
		listen   string // PAYGATE_LISTEN
		args     []string
		code     int
		contains string
	}{
		{"every interface", "0.0.0.0:" + port, []string{"-config", file}, 0, ""},
		{"every interface, no host", ":" + port, []string{"-config", file}, 0, ""},
		{"every IPv6 interface", "[::]:" + port, []string{"-config", file}, 0, ""},
		{"loopback", "127.0.0.1:" + port, []string{"-config", file}, 0, ""},
		{"nothing listens there", "127.0.0.1:" + closedPort, []string{"-config", file}, 1, "unhealthy: "},
		{"a free port picked at start", "127.0.0.1:0", []string{"-config", file}, 1,
			`unhealthy: server.listen "127.0.0.1:0" picks a free port at start: give -url`},
		{"a config that does not load", "", []string{"-config", bad}, 1, "unhealthy: " + bad + ":2: server.lisen: unknown key"},
		{"a URL", "", []string{"-url", "http://127.0.0.1:" + port + "/healthz"}, 0, ""},
		// The help's "-url URL (default 127.0.0.1:8080)" reads as the
		// listener's address: a HEALTHCHECK overridden with it asked the
		// server's root, a 404, and kept a healthy container unhealthy.
		{"the listener's URL", "", []string{"-url", "http://127.0.0.1:" + port}, 0, ""},
		{"the listener's URL, a slash", "", []string{"-url", "http://127.0.0.1:" + port + "/"}, 0, ""},
		{"the listener's address", "", []string{"-url", "127.0.0.1:" + port}, 0, ""},
		{"the listener's address, no host", "", []string{"-url", ":" + port}, 0, ""},
		{"another path is asked as given", "", []string{"-url", "http://127.0.0.1:" + port + "/nothing"}, 1, "unhealthy: status 404"},
		{"both", "", []string{"-config", file, "-url", "http://127.0.0.1:" + port + "/healthz"}, 2, "give -config or -url, not both"},
		{"an argument", "", []string{file}, 2, "unexpected argument"},
		// Given empty (a HEALTHCHECK's -config "$PAYGATE_CONFIG" with the
		// variable unset), they were taken as not given and the default
		// 127.0.0.1:8080 was asked: another listener there passed for
		// this one.
		{"an empty -config", "", []string{"-config", ""}, 2, "paygate healthcheck: -config is empty"},
		{"an empty -url", "", []string{"-url", ""}, 2, "paygate healthcheck: -url is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PAYGATE_LISTEN", tc.listen)
			var out strings.Builder
			code := run(append([]string{"healthcheck"}, tc.args...), &out, &out)
			if code != tc.code || !strings.Contains(out.String(), tc.contains) {
				t.Errorf("exit %d output %q; want %d containing %q", code, out.String(), tc.code, tc.contains)
			}
		})
	}
}
