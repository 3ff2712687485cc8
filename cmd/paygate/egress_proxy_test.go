package main

import (
	"net"
	"os/exec"
	"strings"
	"testing"
)

// proxyEnv has cmd run with this test's proxy settings alone, kv
// ("HTTP_PROXY=…"), the environment's own left out.
func proxyEnv(kv ...string) func(*exec.Cmd) {
	return func(cmd *exec.Cmd) {
		var env []string
		for _, e := range cmd.Env {
			switch k, _, _ := strings.Cut(e, "="); strings.ToUpper(k) {
			case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR":
				continue
			}
			env = append(env, e)
		}
		cmd.Env = append(env, kv...)
	}
}

// portOf is an httptest server's port.
func portOf(t *testing.T, rawURL string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(rawURL, "http://"), "https://"))
	if err != nil {
		t.Fatal(err)
	}
	return port
}
