package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// TestUpstreamThroughEnvironmentProxy: a deployment that reaches its
// providers only through the company's proxy (HTTP_PROXY / HTTPS_PROXY, as
// a China-hosted sidecar reaching OpenRouter does) gets its chat
// completions through that proxy: the binary, started with HTTP_PROXY in its
// environment, sends the provider's request to the proxy, with the
// provider's key and never the bot's. paygate's own upstream transport
// hands such a request to Go's standard one, which honours the environment;
// net/http reads it once per process, so the binary runs in a process of
// its own. The provider's host is a name the proxy resolves
// (upstream.test): Go never proxies a loopback address.
func TestUpstreamThroughEnvironmentProxy(t *testing.T) {
	var upAuth, upPath string
	var upMu sync.Mutex
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upMu.Lock()
		upAuth, upPath = r.Header.Get("Authorization"), r.URL.Path
		upMu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-px","object":"chat.completion","created":1700000000,"model":"u",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"through the proxy"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}`)
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)

	// The company's proxy: an HTTP forward proxy that takes absolute-URI
	// requests and resolves upstream.test to the fake provider.
	type seen struct{ host, path, auth, proxyAuth string }
	var proxied []seen
	var pxMu sync.Mutex
	fwd := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme, pr.Out.URL.Host = "http", upURL.Host
		pr.Out.Host = pr.In.Host
	}}
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pxMu.Lock()
		proxied = append(proxied, seen{r.URL.Host, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Proxy-Authorization")})
		pxMu.Unlock()
		if !r.URL.IsAbs() || r.URL.Hostname() != "upstream.test" {
			http.Error(w, "not a proxy request for upstream.test: "+r.URL.String(), http.StatusBadGateway)
			return
		}
		fwd.ServeHTTP(w, r)
	}))
	defer px.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, `
server: {listen: "127.0.0.1:0", admin_listen: "off"}
clients: [{name: bot, key: k-proxy-env-0123}]
store: {path: "`+filepath.Join(dir, "p.db")+`"}
providers: [{name: fake, base_url: "http://upstream.test:`+upURL.Port()+`/v1", api_key: sk-upstream-via-proxy}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	cmd := exec.Command(os.Args[0], "serve", "-config", cfg)
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY":
			continue // this test's proxy only
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "PAYGATE_TEST_RUN_MAIN=1", "HTTP_PROXY="+px.URL)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if l := sc.Text(); gjson.Get(l, "msg").Str == "listening" && gjson.Get(l, "listener").Str == "main" {
				listening <- gjson.Get(l, "addr").Str
			}
		}
	}()
	var addr string
	select {
	case addr = <-listening:
	case <-time.After(30 * time.Second):
		t.Fatal("paygate did not log its listener")
	}

	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer k-proxy-env-0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || gjson.GetBytes(body, "choices.0.message.content").Str != "through the proxy" {
		t.Fatalf("answer %d %s; want the provider's answer through the proxy", resp.StatusCode, body)
	}

	pxMu.Lock()
	defer pxMu.Unlock()
	if len(proxied) != 1 {
		t.Fatalf("the proxy saw %d requests (%+v); want the provider's one", len(proxied), proxied)
	}
	if p := proxied[0]; p.host != "upstream.test:"+upURL.Port() || p.path != "/v1/chat/completions" || p.auth != "Bearer sk-upstream-via-proxy" {
		t.Errorf("the proxy saw %+v; want upstream.test:%s /v1/chat/completions with the provider's key", p, upURL.Port())
	}
	upMu.Lock()
	defer upMu.Unlock()
	if upAuth != "Bearer sk-upstream-via-proxy" || upPath != "/v1/chat/completions" {
		t.Errorf("the provider got %q at %q; want its own key at /v1/chat/completions", upAuth, upPath)
	}
}
