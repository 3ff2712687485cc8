package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/squidtest"
)

// chatAnswer is a provider answering every chat with content.
func chatAnswer(content string, asked *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-eg","object":"chat.completion","created":1700000000,"model":"u",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"`+content+`"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}`)
	}
}

// proxiedChat sends the bot's chat for model to paygate at base.
func proxiedChat(t *testing.T, base, key, model string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// startProxied starts paygate, the bot's client k-egress-proxy-0123 and
// its store in a folder of its own, with the providers and models of
// providersAndModels (YAML) and the proxy variables kv, trusting the
// certificates of trust through SSL_CERT_FILE when there are any: what
// every egress test starts, each with its own providers and proxy.
func startProxied(t *testing.T, providersAndModels string, trust []*x509.Certificate, kv ...string) (*exec.Cmd, <-chan string, string) {
	t.Helper()
	dir := t.TempDir()
	if len(trust) > 0 {
		var pems []byte
		for _, c := range trust {
			pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		ca := filepath.Join(dir, "ca.pem")
		writeFile(t, ca, string(pems))
		kv = append([]string{"SSL_CERT_FILE=" + ca}, kv...)
	}
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, `
server: {listen: "127.0.0.1:0", admin_listen: "off"}
clients: [{name: bot, key: k-egress-proxy-0123}]
store: {path: "`+filepath.Join(dir, "p.db")+`"}
`+providersAndModels)
	return startPaygate(t, cfg, proxyEnv(kv...))
}

// deadGivenUpAtConnect sends the bot's chat for model m, whose first
// target, dead, has a 1s timeouts.connect and an address the proxy cannot
// connect to, and checks that the second target answered, within 10s,
// and that dead's attempt was logged as upstream_connect_timeout; it ends
// paygate to read the log.
func deadGivenUpAtConnect(t *testing.T, cmd *exec.Cmd, lines <-chan string, base string) {
	t.Helper()
	start := time.Now()
	status, body := proxiedChat(t, base, "k-egress-proxy-0123", "m")
	took := time.Since(start)
	t.Logf("answered in %v", took.Round(time.Millisecond))
	if status != http.StatusOK || gjson.GetBytes(body, "choices.0.message.content").Str != "from the second target" {
		t.Errorf("the bot got %d %.300s; want the second target's answer", status, body)
	}
	if took > 10*time.Second {
		t.Errorf("the answer took %v; want the dead provider given up after its 1s timeouts.connect", took.Round(time.Millisecond))
	}
	var cause string
	for _, l := range stopAndDrain(t, cmd, lines) {
		if gjson.Get(l, "msg").Str == "upstream attempt failed" && gjson.Get(l, "provider").Str == "dead" {
			cause = gjson.Get(l, "cause").Str + ": " + gjson.Get(l, "err").Str
		}
	}
	if !strings.HasPrefix(cause, "upstream_connect_timeout") {
		t.Errorf("the dead provider's attempt failed with %q; want upstream_connect_timeout", cause)
	}
}

// stopAndDrain ends paygate with SIGTERM and returns every log line left.
func stopAndDrain(t *testing.T, cmd *exec.Cmd, lines <-chan string) []string {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var out []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				return out
			}
			out = append(out, l)
		case <-timeout:
			t.Fatal("paygate did not end within 30s of SIGTERM")
		}
	}
}

// TestProxyAuthRequiredIsPaygates: a provider reached over plain http
// through the company's proxy (HTTP_PROXY, a relay on a public address as
// many are in China), whose credentials the proxy refuses, answers 407
// from the proxy itself. That is paygate's egress setting, never the
// bot's request: the next target answers, and the bot never gets the 407
// (its own HTTP client would take it for its proxy's) nor squid's page;
// the operator's log says the proxy wants credentials, without the
// password.
func TestProxyAuthRequiredIsPaygates(t *testing.T) {
	var relayAsked, localAsked atomic.Int32
	relay := httptest.NewServer(chatAnswer("from the relay", &relayAsked))
	defer relay.Close()
	local := httptest.NewServer(chatAnswer("from the second target", &localAsked))
	defer local.Close()
	squid := squidtest.Start(t, []string{"relay.example.com"}, "")

	const wrong = "Wr0ng-proxy-pass"
	cmd, lines, base := startProxied(t, `
providers:
  - {name: relay, base_url: "http://relay.example.com:`+portOf(t, relay.URL)+`/v1", api_key: sk-relay-key}
  - {name: local, base_url: "`+local.URL+`/v1", api_key: sk-local-key}
models: [{name: m, targets: [{provider: relay, model: u}, {provider: local, model: u}]}]
`, nil,
		"HTTP_PROXY=http://"+squidtest.User+":"+wrong+"@"+squid)

	status, body := proxiedChat(t, base, "k-egress-proxy-0123", "m")
	if status != http.StatusOK || gjson.GetBytes(body, "choices.0.message.content").Str != "from the second target" {
		t.Errorf("the bot got %d %.300s; want the second target's answer", status, body)
	}
	if relayAsked.Load() != 0 || localAsked.Load() != 1 {
		t.Errorf("relay asked %d times, the second target %d; want 0 (the proxy refused) and 1", relayAsked.Load(), localAsked.Load())
	}
	var said bool
	for _, l := range stopAndDrain(t, cmd, lines) {
		if strings.Contains(l, wrong) {
			t.Errorf("a log line holds the proxy's password: %s", l)
		}
		if gjson.Get(l, "provider").Str == "relay" && gjson.Get(l, "status").Int() == 407 &&
			strings.Contains(gjson.Get(l, "msg").Str, "proxy") && strings.Contains(gjson.Get(l, "msg").Str, "HTTP_PROXY") {
			said = true
		}
	}
	if !said {
		t.Error("no log line says the proxy to provider relay asked for credentials (HTTP 407), naming HTTP_PROXY")
	}
}

// TestProxyRefusalNamesTheProxy: the company's proxy lets paygate reach
// only the hosts it allows (squid denying CONNECT to one provider's), and
// paygate trusts the providers' certificates through SSL_CERT_FILE. The
// refused provider's attempt is logged as the proxy's refusal, naming the
// proxy's address and its status, where it said a bare "Forbidden", read
// as the provider refusing paygate; the next target answers through the
// proxy, its certificate verified, and no line holds the proxy's password.
func TestProxyRefusalNamesTheProxy(t *testing.T) {
	var asked atomic.Int32
	up := httptest.NewTLSServer(chatAnswer("through the proxy over TLS", &asked))
	defer up.Close()
	squid := squidtest.Start(t, []string{"llm.example.com", "blocked.example.com"},
		squidtest.Deny("blocked.example.com"))
	port := portOf(t, up.URL)
	cmd, lines, base := startProxied(t, `
providers:
  - {name: blocked, base_url: "https://blocked.example.com:`+port+`/v1", api_key: sk-blocked-key}
  - {name: llm, base_url: "https://llm.example.com:`+port+`/v1", api_key: sk-llm-key}
models: [{name: m, targets: [{provider: blocked, model: u}, {provider: llm, model: u}]}]
`, []*x509.Certificate{up.Certificate()},
		"HTTPS_PROXY=http://"+squidtest.User+":"+squidtest.Pass+"@"+squid)

	status, body := proxiedChat(t, base, "k-egress-proxy-0123", "m")
	if status != http.StatusOK || gjson.GetBytes(body, "choices.0.message.content").Str != "through the proxy over TLS" {
		t.Errorf("the bot got %d %.300s; want the second target's answer", status, body)
	}
	if asked.Load() != 1 {
		t.Errorf("the provider was asked %d times; want 1 (llm, through the proxy)", asked.Load())
	}
	var refusal string
	for _, l := range stopAndDrain(t, cmd, lines) {
		if strings.Contains(l, squidtest.Pass) {
			t.Errorf("a log line holds the proxy's password: %s", l)
		}
		if gjson.Get(l, "msg").Str == "upstream attempt failed" && gjson.Get(l, "provider").Str == "blocked" {
			refusal = gjson.Get(l, "err").Str
		}
	}
	if !strings.Contains(refusal, squid) || !strings.Contains(refusal, "403") || !strings.Contains(refusal, "blocked.example.com:"+port) {
		t.Errorf("the refused attempt's err is %q; want it to name the proxy %s, its 403 and the provider's host", refusal, squid)
	}
}

// TestUnusableProxyVariableStopsServe: a proxy URL whose password has a
// character a URL reserves, not percent-encoded, is one Go's transports
// drop without a word (a % not followed by two hex digits: paygate
// connected to every provider, WeChat Pay and the webhooks directly, past
// the proxy the operator named) or read as a proxy on a host named "http:"
// (a #). serve refuses to start, naming the variable and not its value.
func TestUnusableProxyVariableStopsServe(t *testing.T) {
	for _, tc := range []struct{ name, kv, secret string }{
		{"percent", "HTTPS_PROXY=http://paygate:Pa%ss-w0rd@127.0.0.1:3128", "ss-w0rd"},
		{"hash", "HTTP_PROXY=http://paygate:Pa#ss-w0rd@127.0.0.1:3128", "ss-w0rd"},
		{"lower-case", "https_proxy=http://paygate:Pa%zz-w0rd@127.0.0.1:3128", "zz-w0rd"},
		// A password that starts with digits, then a # / or ?, parses:
		// the user and those digits read as the proxy's host and port,
		// the rest as a fragment, path or query Go drops. paygate sent its
		// providers', WeChat Pay's and the webhooks' traffic to a host
		// named after the proxy user, without the proxy's credentials.
		{"digits before a hash", "HTTPS_PROXY=http://paygate:2024#ss-w0rd@127.0.0.1:3128", "ss-w0rd"},
		{"digits before a slash", "HTTP_PROXY=http://paygate:2024/ss-w0rd@127.0.0.1:3128", "ss-w0rd"},
		{"no scheme, digits before a question mark", "HTTPS_PROXY=paygate:2024?ss-w0rd@127.0.0.1:3128", "ss-w0rd"},
		// A scheme Go's transports do not speak is taken for an HTTP
		// proxy's: a SOCKS4 proxy was sent HTTP CONNECTs.
		{"a scheme Go cannot speak", "HTTPS_PROXY=socks4://paygate:ss-w0rd@127.0.0.1:1080", "ss-w0rd"},
		// A NO_PROXY entry Go never matches (a URL, a path, a wildcard
		// inside the name, an IP range written with one) sent the traffic
		// the operator meant to keep direct (webhooks to a receiver in the
		// cluster, WeChat Pay past the proxy) to the proxy, without a word.
		// NO_PROXY is read only with a proxy set (withProxy).
		{"NO_PROXY entry with a scheme", "NO_PROXY=localhost,https://merchant.internal", ""},
		{"NO_PROXY entry with a wildcard inside", "no_proxy=10.*", ""},
		{"NO_PROXY entry with a path", "NO_PROXY=merchant.internal/hooks", ""},
		// A Windows-style bypass list (; between hosts, <local>) or one
		// with spaces between hosts is one entry to Go, a host no request
		// is to.
		{"NO_PROXY hosts split by semicolons", "NO_PROXY=localhost;merchant.internal", ""},
		{"NO_PROXY hosts split by spaces", "NO_PROXY=localhost merchant.internal", ""},
		{"NO_PROXY Windows <local>", "NO_PROXY=merchant.internal,<local>", ""},
		{"NO_PROXY port without a host", "NO_PROXY=:8443", ""},
		{"NO_PROXY wildcard of no domain", "NO_PROXY=*.", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "c.yaml")
			writeFile(t, cfg, `
server: {listen: "127.0.0.1:0", admin_listen: "off"}
clients: [{name: bot, key: k-egress-proxy-0123}]
store: {path: "`+filepath.Join(dir, "p.db")+`"}
providers: [{name: p, base_url: "https://llm.example.com/v1", api_key: sk-p-key}]
models: [{name: m, targets: [{provider: p, model: u}]}]
`)
			cmd := exec.Command(os.Args[0], "serve", "-config", cfg)
			cmd.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1")
			proxyEnv(withProxy(tc.kv)...)(cmd)
			pipe, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			var lines []string
			ch, timeout := scanLines(pipe), time.After(30*time.Second)
			ran := ""
		read:
			for {
				select {
				case l, ok := <-ch:
					if !ok {
						break read
					}
					lines = append(lines, l)
					if gjson.Get(l, "msg").Str == "listening" {
						ran = "started"
						break read
					}
				case <-timeout:
					ran = "ran on for 30s"
					break read
				}
			}
			log := strings.Join(lines, "\n")
			if ran != "" {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("serve with %s %s; want it to refuse to start. Its log:\n%s", tc.kv, ran, log)
			}
			var ee *exec.ExitError
			if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 1 || len(lines) == 0 {
				t.Fatalf("serve with %s: %v; want exit 1 with a line saying why. Its log:\n%s", tc.kv, err, log)
			}
			name, _, _ := strings.Cut(tc.kv, "=")
			if last := lines[len(lines)-1]; gjson.Get(last, "level").Str != "ERROR" || !strings.Contains(gjson.Get(last, "err").Str, name) {
				t.Errorf("serve's last line is %s; want an ERROR naming %s", last, name)
			}
			if tc.secret != "" && strings.Contains(log, tc.secret) {
				t.Errorf("serve's log holds the proxy's password:\n%s", log)
			}
			// check-config, run where serve will run (a deploy's pre-flight),
			// says so too, rather than passing a start serve refuses.
			check := exec.Command(os.Args[0], "check-config", "-config", cfg)
			check.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1")
			proxyEnv(withProxy(tc.kv)...)(check)
			out, err := check.CombinedOutput()
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), name) {
				t.Errorf("check-config with %s: %v, %q; want exit 1 naming %s", tc.kv, err, out, name)
			}
			if tc.secret != "" && strings.Contains(string(out), tc.secret) {
				t.Errorf("check-config's output holds the proxy's password: %q", out)
			}
		})
	}
}

// withProxy is kv, a NAME=value setting, and for a NO_PROXY (no_proxy)
// the HTTPS_PROXY it is read with: Go reads NO_PROXY only to skip a proxy.
func withProxy(kv string) []string {
	if name, _, _ := strings.Cut(kv, "="); strings.ToUpper(name) == "NO_PROXY" {
		return []string{kv, "HTTPS_PROXY=http://127.0.0.1:3128"}
	}
	return []string{kv}
}

// TestUsableProxyVariablePassesCheckConfig: the forms Go's transports use
// as written pass check-config (and so serve's start): the refusal of a
// path, query, fragment or scheme Go drops, and of a NO_PROXY entry Go
// never matches, must not turn away a variable written as operators
// write them.
func TestUsableProxyVariablePassesCheckConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, `
server: {listen: "127.0.0.1:0", admin_listen: "off"}
store: {path: "`+filepath.Join(dir, "p.db")+`"}
`)
	for _, kv := range []string{
		"HTTPS_PROXY=http://paygate:Pa%25ss%23w0rd@127.0.0.1:3128",
		"HTTPS_PROXY=http://127.0.0.1:3128/",
		"HTTPS_PROXY=HTTP://proxy.corp:3128",
		"HTTPS_PROXY=https://proxy.corp",
		"HTTPS_PROXY=socks5://paygate:pw@127.0.0.1:1080",
		"HTTPS_PROXY=socks5h://127.0.0.1:1080",
		"HTTPS_PROXY=proxy.corp:3128",
		"HTTPS_PROXY=paygate:pw@proxy.corp:3128",
		"NO_PROXY=localhost, 127.0.0.1,::1,fd00::1,10.0.0.0/8,fd00::/8,.corp.example,*.svc.cluster.local,merchant.internal:8443,[::1]:8080,10.1.2.3:80,localhost:,",
		"NO_PROXY=*",
		// After a *, Go skips every host's proxy and reads no further entry.
		"NO_PROXY=localhost,*,https://merchant.internal",
	} {
		t.Run(kv, func(t *testing.T) {
			checkConfigPasses(t, cfg, withProxy(kv)...)
		})
	}
	// Without a proxy Go never reads NO_PROXY: an entry it would not match
	// (a Windows-style wildcard from a desktop's bypass list) changes
	// nothing, and must not stop paygate from starting.
	t.Run("no proxy", func(t *testing.T) {
		checkConfigPasses(t, cfg, "no_proxy=192.168.*;<local>")
	})
	// Go's net/http reads the upper-case variable, the lower-case one only
	// when it is empty: a stale lower-case one it never reads changes
	// nothing (golang.org/x/net's httpproxy reads lower-case first).
	t.Run("upper-case set", func(t *testing.T) {
		checkConfigPasses(t, cfg, "HTTPS_PROXY=http://127.0.0.1:3128", "https_proxy=http://paygate:Pa%ss@127.0.0.1:3128",
			"NO_PROXY=localhost", "no_proxy=https://merchant.internal")
	})
}

// checkConfigPasses runs check-config on cfg with the proxy variables
// cleared, then set as in kvs (NAME=value), and fails t unless it passes.
func checkConfigPasses(t *testing.T, cfg string, kvs ...string) {
	t.Helper()
	for _, p := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(p, "")
	}
	for _, kv := range kvs {
		name, v, _ := strings.Cut(kv, "=")
		t.Setenv(name, v)
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"check-config", "-config", cfg}, &stdout, &stderr); code != 0 {
		t.Errorf("check-config with %s exited %d: %s; want 0", kvs, code, stderr.String())
	}
}

// TestProxiedStreamCancelReachesProvider: a bot that goes away in the middle
// of a stream from a provider reached through the company's proxy (squid,
// HTTPS_PROXY, its certificate trusted through SSL_CERT_FILE) has the
// provider's request ended too, promptly, as on a direct connection: the
// provider stops generating (and billing) the answer nobody reads.
func TestProxiedStreamCancelReachesProvider(t *testing.T) {
	ended := make(chan struct{})
	var once sync.Once
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			_, err := io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"u",`+
				`"choices":[{"index":0,"delta":{"content":"more "},"finish_reason":null}]}`+"\n\n")
			w.(http.Flusher).Flush()
			if err != nil {
				break
			}
			select {
			case <-r.Context().Done():
			case <-tick.C:
				continue
			}
			break
		}
		once.Do(func() { close(ended) })
	}))
	defer up.Close()
	squid := squidtest.Start(t, []string{"llm.example.com"}, "")
	_, _, base := startProxied(t, `
providers: [{name: llm, base_url: "https://llm.example.com:`+portOf(t, up.URL)+`/v1", api_key: sk-llm-key}]
models: [{name: m, targets: [{provider: llm, model: u}]}]
`, []*x509.Certificate{up.Certificate()},
		"HTTPS_PROXY=http://"+squidtest.User+":"+squidtest.Pass+"@"+squid)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer k-egress-proxy-0123")
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for n := 0; n < 3 && sc.Scan(); {
		if strings.Contains(sc.Text(), "more ") {
			n++
		}
	}
	if resp.StatusCode != http.StatusOK || sc.Err() != nil {
		t.Fatalf("the stream through the proxy: %d %v; want events", resp.StatusCode, sc.Err())
	}
	select {
	case <-ended:
		t.Fatal("the provider's stream ended before the bot went away")
	default:
	}
	gone := time.Now()
	cancel()
	select {
	case <-ended:
		t.Logf("the provider's request ended %v after the bot went away", time.Since(gone).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the provider's request still runs 10s after the bot went away")
	}
}

// TestProxyAuthRequiredForTunnel: the company's proxy refuses the tunnel
// to an https provider with a 407 (HTTPS_PROXY's password is wrong):
// paygate's setting, as the same 407 over plain http is
// (TestProxyAuthRequiredIsPaygates). The provider is out as misconfigured
// after one attempt, not tried again at once for the same 407 and held
// against its circuit breaker, and the log says to check HTTPS_PROXY.
func TestProxyAuthRequiredForTunnel(t *testing.T) {
	var asked, localAsked atomic.Int32
	up := httptest.NewTLSServer(chatAnswer("from the provider", &asked))
	defer up.Close()
	local := httptest.NewServer(chatAnswer("from the second target", &localAsked))
	defer local.Close()
	squid := squidtest.Start(t, []string{"llm.example.com"}, "")
	const wrong = "Wr0ng-tunnel-pass"
	cmd, lines, base := startProxied(t, `
providers:
  - {name: llm, base_url: "https://llm.example.com:`+portOf(t, up.URL)+`/v1", api_key: sk-llm-key}
  - {name: local, base_url: "`+local.URL+`/v1", api_key: sk-local-key}
models: [{name: m, targets: [{provider: llm, model: u}, {provider: local, model: u}]}]
`, []*x509.Certificate{up.Certificate()},
		"HTTPS_PROXY=http://"+squidtest.User+":"+wrong+"@"+squid)

	status, body := proxiedChat(t, base, "k-egress-proxy-0123", "m")
	if status != http.StatusOK || gjson.GetBytes(body, "choices.0.message.content").Str != "from the second target" {
		t.Errorf("the bot got %d %.300s; want the second target's answer", status, body)
	}
	var attempts []string
	var said bool
	for _, l := range stopAndDrain(t, cmd, lines) {
		if strings.Contains(l, wrong) {
			t.Errorf("a log line holds the proxy's password: %s", l)
		}
		if gjson.Get(l, "provider").Str != "llm" {
			continue
		}
		if gjson.Get(l, "msg").Str == "upstream attempt failed" {
			attempts = append(attempts, gjson.Get(l, "cause").Str)
		}
		if strings.Contains(gjson.Get(l, "msg").Str, "HTTPS_PROXY") {
			said = true
		}
	}
	if len(attempts) != 1 || attempts[0] != "upstream_misconfigured" {
		t.Errorf("provider llm's attempts failed with %v; want one, upstream_misconfigured", attempts)
	}
	if !said {
		t.Error("no log line says the proxy to provider llm asked for credentials, naming HTTPS_PROXY")
	}
}

// TestProxiedSlowAnswersOutliveConnectTimeout: timeouts.connect bounds the
// proxy's answer to CONNECT alone (TestProxiedConnectTimeout). A stream
// through the tunnel that goes on for longer than it (a model writing for
// minutes) runs to its end, and an answer from a provider over plain http
// reached through HTTP_PROXY, whose first write is the request itself and
// whose answer is the model's, may take longer than it too: neither is
// cut at the connect timeout.
func TestProxiedSlowAnswersOutliveConnectTimeout(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for range 10 {
			_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"u",`+
				`"choices":[{"index":0,"delta":{"content":"more "},"finish_reason":null}]}`+"\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(250 * time.Millisecond) // the model writing: 2.5s in all
		}
		_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"u",`+
			`"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	var asked atomic.Int32
	answer := chatAnswer("from the relay, slowly", &asked)
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second) // the model thinking before its answer
		answer(w, r)
	}))
	defer relay.Close()
	squid := squidtest.Start(t, []string{"llm.example.com", "relay.example.com"}, "")
	proxy := "http://" + squidtest.User + ":" + squidtest.Pass + "@" + squid
	_, _, base := startProxied(t, `
providers:
  - {name: llm, base_url: "https://llm.example.com:`+portOf(t, up.URL)+`/v1", api_key: sk-llm-key, timeouts: {connect: 1s}}
  - {name: relay, base_url: "http://relay.example.com:`+portOf(t, relay.URL)+`/v1", api_key: sk-relay-key, timeouts: {connect: 1s}}
models:
  - {name: s, targets: [{provider: llm, model: u}]}
  - {name: r, targets: [{provider: relay, model: u}]}
`, []*x509.Certificate{up.Certificate()},
		"HTTPS_PROXY="+proxy, "HTTP_PROXY="+proxy)

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"s","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer k-egress-proxy-0123")
	resp, err := (&http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := strings.Count(string(body), "more "); resp.StatusCode != http.StatusOK || err != nil || n != 10 ||
		!strings.Contains(string(body), "data: [DONE]") {
		t.Errorf("the 2.5s stream through the tunnel: %d, %d of 10 chunks, %v; want all of it and [DONE]:\n%.600s",
			resp.StatusCode, n, err, body)
	}

	status, answered := proxiedChat(t, base, "k-egress-proxy-0123", "r")
	if status != http.StatusOK || gjson.GetBytes(answered, "choices.0.message.content").Str != "from the relay, slowly" {
		t.Errorf("the relay over plain http, answering after 2s: %d %.300s; want its answer", status, answered)
	}
}

// TestProxiedConnectTimeoutHTTPSProxy: timeouts.connect bounds the proxy's
// answer to CONNECT through a proxy spoken to over TLS (HTTPS_PROXY=
// https://…) as through one spoken to in the clear: a proxy that takes
// the CONNECT and does not answer (it cannot reach the provider) fails the
// attempt after the provider's connect timeout, and the next target
// answers, where the round waited for the attempt's share of
// failover.max_round_time.
func TestProxiedConnectTimeoutHTTPSProxy(t *testing.T) {
	stop := make(chan struct{})
	var connects atomic.Int32
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			connects.Add(1)
		}
		if r.Method == http.MethodConnect && strings.HasPrefix(r.Host, "llm.example.com:") {
			tunnel(t, w, r)
			return
		}
		select { // never answers: the provider's address drops connects
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	proxy.StartTLS()
	defer proxy.Close()
	defer close(stop)
	var asked, llmAsked atomic.Int32
	local := httptest.NewServer(chatAnswer("from the second target", &asked))
	defer local.Close()
	slow := chatAnswer("through the https proxy", &llmAsked)
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1500 * time.Millisecond) // longer than timeouts.connect
		slow(w, r)
	}))
	defer up.Close()
	cmd, lines, base := startProxied(t, `
providers:
  - {name: dead, base_url: "https://dead.example.com/v1", api_key: sk-dead-key, timeouts: {connect: 1s}}
  - {name: local, base_url: "`+local.URL+`/v1", api_key: sk-local-key}
  - {name: llm, base_url: "https://llm.example.com:`+portOf(t, up.URL)+`/v1", api_key: sk-llm-key, timeouts: {connect: 1s}}
models:
  - {name: m, targets: [{provider: dead, model: u}, {provider: local, model: u}]}
  - {name: ok, targets: [{provider: llm, model: u}]}
`, []*x509.Certificate{proxy.Certificate(), up.Certificate()},
		"HTTPS_PROXY="+proxy.URL)

	// A provider the proxy does reach: its answer, slower than the
	// connect timeout, comes through the tunnel inside the proxy's TLS.
	if status, body := proxiedChat(t, base, "k-egress-proxy-0123", "ok"); status != http.StatusOK ||
		gjson.GetBytes(body, "choices.0.message.content").Str != "through the https proxy" {
		t.Errorf("through the https proxy to a provider it reaches: %d %.300s; want its answer", status, body)
	}
	connects.Store(0)

	deadGivenUpAtConnect(t, cmd, lines, base)
	if connects.Load() == 0 {
		t.Error("the proxy got no CONNECT")
	}
}

// tunnel is an egress proxy's answer to CONNECT: every host is this
// machine, as squid's hosts file has it.
func tunnel(t *testing.T, w http.ResponseWriter, r *http.Request) {
	_, port, _ := strings.Cut(r.Host, ":")
	up, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer up.Close()
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	defer c.Close()
	_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{})
	go func() { _, _ = io.Copy(up, rw); _ = up.Close(); close(done) }()
	_, _ = io.Copy(c, up)
	<-done
}
