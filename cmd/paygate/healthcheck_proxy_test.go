package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestHealthcheckGoesDirect: healthcheck asks paygate's own listener, on
// this machine or in this container, never through the HTTP_PROXY that
// the environment may set for the providers (env_proxy_e2e_test): Go's
// default client sent it to the company's proxy whenever the address was
// not loopback (a compose service name, the container's own address),
// which cannot reach the container and answered 502, and a healthy
// paygate was marked unhealthy and restarted. net/http reads the proxy
// environment once per process, so healthcheck runs in a process of its
// own. The URL names this machine by a name or address Go does not take
// for loopback (directHost).
func TestHealthcheckGoesDirect(t *testing.T) {
	host := directHost(t)
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	var proxied atomic.Int32
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		http.Error(w, "the proxy cannot reach it", http.StatusBadGateway)
	}))
	defer px.Close()

	_, port, _ := net.SplitHostPort(ln.Addr().String())
	target := (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: "/healthz"}).String()
	cmd := exec.Command(os.Args[0], "healthcheck", "-url", target)
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY":
			continue // this test's proxy only
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "PAYGATE_TEST_RUN_MAIN=1", "HTTP_PROXY="+px.URL)
	out, err := cmd.CombinedOutput()
	if err != nil || proxied.Load() != 0 {
		t.Errorf("healthcheck -url %s: %v, output %q, %d requests through the proxy; want exit 0 and none",
			target, err, out, proxied.Load())
	}
}

// directHost names this machine so that Go's proxy rules do not exempt it
// as loopback: its host name where that resolves, else the address of one
// of its other interfaces. A machine with neither fails the test rather
// than skip it: the check would not exist.
func directHost(t *testing.T) string {
	t.Helper()
	if host, err := os.Hostname(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		cancel()
		if err == nil && len(addrs) > 0 {
			return host
		}
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal("no host name that resolves, and no interface addresses:", err)
	}
	for _, a := range ifaddrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatal("no host name that resolves and no address but loopback: nothing names this machine that Go would send through a proxy")
	return ""
}
