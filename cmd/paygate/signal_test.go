package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/wxsim"
)

// TestMain lets a test run this package's main as a child process (the
// real signal handling of cmdServe): with PAYGATE_TEST_RUN_MAIN=1 the test
// binary is paygate.
func TestMain(m *testing.M) {
	// One simulator key set for every app a test starts: the simulator's
	// keys only have to differ from a real merchant's, and making them is
	// the slowest part of starting an app.
	simulatorKeys = sync.OnceValues(wxsim.GenerateKeys)
	if os.Getenv("PAYGATE_TEST_DEMO_HOLD") == "1" {
		// The demo's model holds every round until it is given up: a
		// demo that cannot end before the test signals it.
		demoRoundHook = func(r *http.Request) { <-r.Context().Done() }
	}
	if os.Getenv("PAYGATE_TEST_DEMO_SOCKET_EPIPE") == "1" {
		// The demo's model breaks a socket of its own in its first round:
		// the kernel's SIGPIPE for a write whose reader is gone, on a
		// descriptor that is not the demo's output.
		var once sync.Once
		demoRoundHook = func(*http.Request) { once.Do(writeToBrokenSocket) }
	}
	if g := os.Getenv("PAYGATE_TEST_CREATING_GRACE"); g != "" {
		// An order left `creating` is resolved past this grace, not the
		// 30 s default: a test of a prepay whose outcome was lost need not
		// wait that out (crashNode.creatingGrace).
		d, err := time.ParseDuration(g)
		if err != nil {
			fmt.Fprintf(os.Stderr, "PAYGATE_TEST_CREATING_GRACE: %v\n", err)
			os.Exit(2)
		}
		creatingGrace = d
	}
	if os.Getenv("PAYGATE_TEST_RUN_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	closeSharedChromium()
	os.Exit(code)
}

// TestSecondSignalStopsAtOnce: the first SIGTERM drains in-flight streams
// for up to shutdown_timeout (60s here, with a stream that never ends); a
// second one ends the process at once, as an operator pressing Ctrl-C
// again or a supervisor repeating SIGTERM expects: ended by that signal,
// or, as PID 1 of its PID namespace (the image's ENTRYPOINT in a
// container), which the kernel lets no signal end, with exit status 143
// (128+SIGTERM), what a process ended by it reports in a shell or a
// container's state. As PID 1 it exited with status 2, paygate's own for a
// wrong command line, after the Go runtime's try to die of the signal.
// So does a second Ctrl-C (SIGINT), with exit status 130 as PID 1.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		pid1 bool
		sig  syscall.Signal
	}{{"child", false, syscall.SIGTERM}, {"pid 1", true, syscall.SIGTERM},
		{"child SIGINT", false, syscall.SIGINT}, {"pid 1 SIGINT", true, syscall.SIGINT}} {
		if tt.pid1 && asPID1 == nil {
			continue // no PID namespaces on this OS
		}
		t.Run(tt.name, func(t *testing.T) {
			upURL, _ := heldStream(t) // the stream held to the test's end
			var setup []func(*exec.Cmd)
			if tt.pid1 {
				setup = append(setup, asPID1)
			}
			cmd, lines, base := startPaygate(t, signalConfig(t, upURL, ", shutdown_timeout: 60s"), setup...)
			openStream(t, base)

			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			waitLine(t, lines, "the drain", func(l string) bool { return strings.Contains(gjson.Get(l, "msg").Str, "shutting down") })
			go func() {
				for range lines { // keep the pipe drained until exit
				}
			}()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("exit: %v; want ended by the second %v", err, tt.sig)
				}
				ws, ok := ee.Sys().(syscall.WaitStatus)
				if tt.pid1 && (!ok || ws.Signaled() || ws.ExitStatus() != 128+int(tt.sig)) {
					t.Errorf("PID 1's exit %v; want exit status %d, ended by the second %v", err, 128+int(tt.sig), tt.sig)
				}
				if !tt.pid1 && (!ok || !ws.Signaled() || ws.Signal() != tt.sig) {
					t.Errorf("exit %v; want ended by the second %v", err, tt.sig)
				}
			case <-time.After(20 * time.Second): // the drain alone would take 60s
				t.Fatalf("still draining 20s after a second %v", tt.sig)
			}
		})
	}
}

// startPaygate runs this package's main as a child process, `serve -config
// cfg`, the command given to each of setup before it starts, and returns it
// with its log lines and the main listener's base URL.
func startPaygate(t *testing.T, cfg string, setup ...func(*exec.Cmd)) (*exec.Cmd, <-chan string, string) {
	t.Helper()
	cmd, lines, base, _ := startPaygateLog(t, cfg, setup...)
	return cmd, lines, base
}

// startPaygateLog is startPaygate, and also returns its log's reader, to
// close as a log reader that goes away does (lines then ends).
func startPaygateLog(t *testing.T, cfg string, setup ...func(*exec.Cmd)) (*exec.Cmd, <-chan string, string, io.Closer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "-config", cfg)
	cmd.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1")
	for _, f := range setup {
		f(cmd)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := scanLines(stderr)
	l := waitLine(t, lines, "its listener", func(l string) bool {
		return gjson.Get(l, "msg").Str == "listening" && gjson.Get(l, "listener").Str == "main"
	})
	return cmd, lines, "http://" + gjson.Get(l, "addr").Str, stderr
}

// scanLines sends r's lines, closing the channel at its end.
func scanLines(r io.Reader) <-chan string {
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// waitLine returns the first of lines that match, failing when the
// process exits first.
func waitLine(t *testing.T, lines <-chan string, what string, match func(string) bool) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("paygate exited before logging %s", what)
			}
			if match(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("paygate did not log %s", what)
		}
	}
}

// heldStream is an upstream whose stream sends its first event ("one ")
// and holds the rest ("two", then [DONE]) until letGo; letGo may be called
// more than once, and is at the test's end.
func heldStream(t *testing.T) (url string, letGo func()) {
	t.Helper()
	release := make(chan struct{})
	var once sync.Once
	letGo = func() { once.Do(func() { close(release) }) }
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one \"},\"finish_reason\":null}]}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"two\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	t.Cleanup(letGo) // before up.Close: its handler returns
	return up.URL, letGo
}

// signalConfig writes the signal tests' config (server holds any keys
// beyond the listeners) with upURL as the one provider.
func signalConfig(t *testing.T, upURL, server string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, `
server: {listen: "127.0.0.1:0", admin_listen: "off"`+server+`}
clients: [{name: bot, key: k-signal-0123}]
store: {path: "`+filepath.Join(dir, "p.db")+`"}
providers: [{name: fake, base_url: "`+upURL+`", api_key: x}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	return cfg
}

// openStream asks paygate at base for a streamed answer and returns its
// body once the first event ("one ") has come.
func openStream(t *testing.T, base string) *bufio.Reader {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
	req.Header.Set("Authorization", "Bearer k-signal-0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	body := bufio.NewReader(resp.Body)
	if line, _ := body.ReadString('\n'); !strings.Contains(line, "one") {
		t.Fatalf("first event %q", line)
	}
	return body
}

// TestHangupIsIgnored: SIGHUP, which a reload (systemctl reload, docker
// kill -s HUP, a config reloader) or a closed terminal sends, stops
// nothing: paygate does not reload its config, logs so, and goes on
// serving, the stream in flight to its end and new connections after it.
// Left to its default it killed paygate at once, the stream cut without an
// end.
func TestHangupIsIgnored(t *testing.T) {
	upURL, letGo := heldStream(t)
	cmd, lines, base := startPaygate(t, signalConfig(t, upURL, ""))
	body := openStream(t, base)

	for range 2 { // each one logged, neither stops it
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLine(t, lines, "that SIGHUP does not reload the config", func(l string) bool {
			return gjson.Get(l, "level").Str == "WARN" && strings.Contains(gjson.Get(l, "msg").Str, "does not reload its config")
		})
	}
	letGo()
	rest, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("reading the stream after SIGHUP: %v", err)
	}
	if !strings.Contains(string(rest), "two") || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("the stream after SIGHUP: %q; want the rest of the answer and its [DONE]", rest)
	}
	fresh := &http.Client{Transport: &http.Transport{}} // a new connection: the listener still takes them
	h, err := fresh.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("/readyz after SIGHUP: %v", err)
	}
	h.Body.Close()
	if h.StatusCode != http.StatusOK {
		t.Errorf("/readyz after SIGHUP: %d; want 200, not draining", h.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		if strings.Contains(gjson.Get(l, "msg").Str, "shutting down") {
			break
		}
	}
	go func() {
		for range lines { // keep the pipe drained until exit
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v; want 0", err)
	}
}

// TestStartFailureIsLoggedAsJSON: a serve that loads its config and then
// cannot start (its port taken by another process) says why in the log's
// own format, a JSON line at level ERROR, as the log pipeline that alerts
// on paygate's errors reads them; a plain-text line was all a crash loop
// left there.
func TestStartFailureIsLoggedAsJSON(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, `
server: {listen: "`+taken.Addr().String()+`", admin_listen: "off"}
clients: [{name: bot, key: k-signal-0123}]
store: {path: "`+filepath.Join(dir, "p.db")+`"}
providers: [{name: fake, base_url: "http://127.0.0.1:9", api_key: sk-start-failure-secret}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`)
	cmd := exec.Command(os.Args[0], "serve", "-config", cfg)
	cmd.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve on a taken port: %v; want exit 1", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if !gjson.Valid(last) || gjson.Get(last, "level").Str != "ERROR" {
		t.Fatalf("the reason serve stopped: %q; want a JSON log line at level ERROR", last)
	}
	if e := gjson.Get(last, "err").Str; !strings.Contains(e, taken.Addr().String()) {
		t.Errorf("the reason serve stopped: err %q; want the address it could not listen on", e)
	}
}

// writeToBrokenSocket writes to a Unix socket whose peer is closed: the
// write fails with EPIPE and the kernel raises SIGPIPE, as it does for a
// loopback connection reset mid-write.
func writeToBrokenSocket() {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		panic(err)
	}
	syscall.Close(fds[1])
	if _, err := syscall.Write(fds[0], []byte("x")); !errors.Is(err, syscall.EPIPE) {
		panic(fmt.Sprintf("write to a socket whose peer is closed: %v; want EPIPE", err))
	}
	syscall.Close(fds[0])
}
