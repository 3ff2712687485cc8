package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestShutdownDrainsStreams: SIGTERM (here: ctx cancel, which is what the
// signal handler does) stops new connections but lets an in-flight stream
// finish.
func TestShutdownDrainsStreams(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	started := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one \"},\"finish_reason\":null}]}\n\n")
		w.(http.Flusher).Flush()
		close(started)
		<-release
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"two\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	defer letGo() // first: a failing check must not leave the upstream (and up.Close) waiting
	src := `
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", shutdown_timeout: 20s}
clients: [{name: bot, key: k-drain}]
store: {path: "` + filepath.Join(t.TempDir(), "p.db") + `"}
providers: [{name: fake, base_url: "` + up.URL + `", api_key: x}]
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
	addrs := <-ready
	base := "http://" + addrs["main"]

	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, err, resp)
		}
		resp.Body.Close()
	}

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
	req.Header.Set("Authorization", "Bearer k-drain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.Contains(line, "one") {
		t.Fatalf("first event %q", line)
	}

	stop() // what SIGTERM does
	// New connections are refused once shutdown began, on every listener
	// while the stream still drains; poll until then.
	for _, l := range []string{"main", "admin"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := http.Get("http://" + addrs[l] + "/healthz")
			if err != nil {
				break
			}
			c.Body.Close()
			if time.Now().After(deadline) {
				t.Fatalf("%s listener still accepting new connections while the bots' stream drains", l)
			}
			time.Sleep(10 * time.Millisecond) // polling an external state change, not synchronising
		}
	}
	letGo()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("in-flight stream cut during drain: %v", err)
	}
	if !strings.Contains(string(rest), "two") || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("drained stream ended with %q; want the rest and [DONE]", rest)
	}
	if err := <-done; err != nil {
		t.Errorf("serve returned %v", err)
	}
}

func TestRunCommands(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "server:\n  listen: \"127.0.0.1:1\"\n  lisen: x\n")
	badTypes := filepath.Join(dir, "bad-types.yaml")
	writeFile(t, badTypes, "server:\n  max_body_bytes: abc\n  sse_keepalive: 30\n")
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"version", []string{"version"}, 0, "paygate"},
		// --version, as most commands take it, was serve's unknown flag (exit 2).
		{"--version", []string{"--version"}, 0, "paygate"},
		{"-version", []string{"-version"}, 0, "paygate"},
		// The help flags list the commands, as `paygate help` does; they
		// were taken for serve's flags (its -config alone, exit 2).
		{"-h lists the commands", []string{"-h"}, 0, "paygate check-config [-config FILE]"},
		{"-help lists the commands", []string{"-help"}, 0, "paygate check-config [-config FILE]"},
		{"--help lists the commands", []string{"--help"}, 0, "paygate check-config [-config FILE]"},
		// After a command, every help flag asks for that command's help:
		// audit took -help and --h for an unknown command, and the commands
		// with flags printed them but exited 2, as for a bad flag.
		{"audit -help lists the audit commands", []string{"audit", "-help"}, 0, "paygate audit export"},
		{"audit --h lists the audit commands", []string{"audit", "--h"}, 0, "paygate audit export"},
		{"serve -h lists its flags", []string{"serve", "-h"}, 0, "-config"},
		{"check-config --help lists its flags", []string{"check-config", "--help"}, 0, "-config"},
		{"healthcheck -h lists its flags", []string{"healthcheck", "-h"}, 0, "-url"},
		{"audit verify -h lists its flags", []string{"audit", "verify", "-h"}, 0, "-head"},
		{"audit export -help lists its flags", []string{"audit", "export", "-help"}, 0, "-from"},
		{"demo -h explains it", []string{"demo", "-h"}, 0, "paygate demo"},
		{"a bad flag still exits 2", []string{"check-config", "-nope"}, 2, "flag provided but not defined"},
		{"check-config ok", []string{"check-config", "-config", "../../config.yaml"}, 0, "ok"},
		{"check-config names file:line", []string{"check-config", "-config", bad}, 1, bad + ":3: server.lisen: unknown key"},
		{"check-config names the key of every bad value", []string{"check-config", "-config", badTypes}, 1,
			badTypes + ":2: server.max_body_bytes: cannot unmarshal !!str `abc` into int64\n" +
				badTypes + ":3: server.sse_keepalive: \"30\" has no unit"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"check-config refuses a file given without -config", []string{"check-config", bad}, 2,
			`unexpected argument "` + bad + `": give the config file with -config FILE`},
		{"serve refuses a file given without -config", []string{"serve", bad}, 2, "unexpected argument"},
		// SPEC 2.1: serve is the default with no sub-command, flags and all.
		{"no sub-command is serve", []string{"-config", bad}, 1, bad + ":3: server.lisen: unknown key"},
		{"no sub-command refuses a stray argument as serve does", []string{"-config", bad, "x"}, 2, "paygate serve: unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			code := run(tc.args, &out, &out)
			if code != tc.code || !strings.Contains(out.String(), tc.contains) {
				t.Errorf("exit %d output %q; want %d containing %q", code, out.String(), tc.code, tc.contains)
			}
		})
	}
}

// TestPprofNeedsTheAdminToken: server.pprof serves profiles on the admin
// listener behind the admin token, like every other admin route: a CPU
// profile costs CPU and a goroutine dump shows the requests in flight.
func TestPprofNeedsTheAdminToken(t *testing.T) {
	src := `
server: {pprof: true}
admin: {token: admin-token-0123456789abcdef}
store: {path: "` + filepath.Join(t.TempDir(), "p.db") + `"}
`
	cfg, err := config.Parse([]byte(src), "p.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, io.Discard, "http://127.0.0.1:1/wechatpay/notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	srv := httptest.NewServer(a.adminHandler())
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"admin-token-0123456789abcdef", http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/debug/pprof/", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("token %q: status %d; want %d", tc.token, resp.StatusCode, tc.want)
		}
	}
}

// drainCut serves cfg's paygate (shutdown_timeout 300ms) against a
// provider that sends its first event, then nothing until its request is
// cancelled; arrived has a value once a request reached the provider. stop
// is the SIGTERM; done yields serve's result.
func drainCut(t *testing.T) (base string, arrived <-chan struct{}, stop func(), done <-chan error) {
	t.Helper()
	return drainCutWith(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"u\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"one \"},\"finish_reason\":null}]}\n\n")
		w.(http.Flusher).Flush()
	})
}

// drainCutWith is drainCut with a provider that reads the request, does
// begin (nothing, or a first event), then nothing until its request is
// cancelled.
func drainCutWith(t *testing.T, begin func(w http.ResponseWriter)) (base string, arrived <-chan struct{}, stop func(), done <-chan error) {
	t.Helper()
	hang := make(chan struct{})
	got := make(chan struct{}, 8)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		got <- struct{}{}
		begin(w)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(hang) }) // first: up.Close waits for the handlers
	src := `
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", shutdown_timeout: 300ms}
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "p.db") + `"}
providers: [{name: fake, base_url: "` + up.URL + `", api_key: x, timeouts: {idle: 60s, total: 120s}}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`
	cfg, err := config.Parse([]byte(src), "t.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]string, 1)
	served, finished := make(chan error, 1), make(chan struct{})
	go func() { served <- serve(ctx, cfg, io.Discard, ready); close(finished) }()
	t.Cleanup(func() { cancel(); <-finished })
	return "http://" + (<-ready)["main"], got, cancel, served
}

// TestDrainDeadlineCutsStreamWithErrorEvent: a stream still running when
// server.shutdown_timeout passes is cut. SPEC 5: after bytes reached the
// client, a failure ends the stream with an OpenAI-style error event, never
// a silent truncation. The bot must get `data: {"error":…}` and a properly
// terminated response (no [DONE]), as for any other cut, on the plain relay
// and on a payment turn alike; go-openai's Recv then returns the error, not
// an unexpected EOF. So does a forwarded event stream (a streamed Responses
// API call) cut between two events: it ended without its body's last
// chunk, which the SDKs raise as a lost connection, not as the shutdown.
func TestDrainDeadlineCutsStreamWithErrorEvent(t *testing.T) {
	for _, user := range []string{"", "o-user-drain"} { // plain relay, payment turn
		name := "plain"
		if user != "" {
			name = "turn"
		}
		t.Run(name, func(t *testing.T) {
			base, _, stop, done := drainCut(t)
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
			req.Header.Set("Authorization", "Bearer "+e2eClientKey)
			if user != "" {
				req.Header.Set("X-WeChat-OpenID", user)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			if line, _ := br.ReadString('\n'); !strings.Contains(line, "one") {
				t.Fatalf("first event %q", line)
			}
			stop() // SIGTERM; the stream never ends on its own, so the deadline cuts it
			rest, readErr := io.ReadAll(br)
			if err := <-done; err != nil {
				t.Errorf("serve returned %v", err)
			}
			if readErr != nil || !strings.Contains(string(rest), `data: {"error":`) {
				t.Fatalf("after the drain deadline the bot read %q, err %v; want an error event naming the shutdown and a clean end", rest, readErr)
			}
			if !strings.Contains(string(rest), `"code":"server_shutdown"`) || strings.Contains(string(rest), "[DONE]") {
				t.Errorf("the cut stream ended with %q; want the server_shutdown error event and no [DONE]", rest)
			}
		})
	}
	t.Run("go-openai", func(t *testing.T) {
		base, _, stop, _ := drainCut(t)
		st, err := plainClient(base).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
			Model: "m", Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "hi"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if c, err := st.Recv(); err != nil || c.Choices[0].Delta.Content != "one " {
			t.Fatalf("first chunk %+v, %v", c, err)
		}
		stop()
		_, err = st.Recv()
		var ae *openai.APIError
		if !errors.As(err, &ae) || ae.Code != "server_shutdown" {
			t.Errorf("Recv after the drain deadline: %v (%T); want the APIError server_shutdown", err, err)
		}
	})
	created := "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n"
	delta := "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"one \"}\n\n"
	for _, tt := range []struct{ name, body, events, want string }{
		{"forwarded", `{"model":"m","stream":true,"input":"hi"}`, created + delta, "send the request again"},
		// A background Response goes on at the provider: not sent again.
		{"forwarded once", `{"model":"m","stream":true,"background":true,"input":"hi"}`, created + delta, "check before sending it again"},
		// An event begun is not ended by paygate: no error event inside it,
		// which the client would read as a part of it; the body is cut.
		{"forwarded in an event", `{"model":"m","stream":true,"input":"hi"}`, created + "event: response.output_text.delta\n", ""},
		// After its last event the answer is whole: nothing is added to it
		// (an SDK raises an error event even after response.completed), and
		// it ends properly.
		{"forwarded after its last event", `{"model":"m","stream":true,"input":"hi"}`,
			created + "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1}\n\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base, _, stop, done := drainCutWith(t, func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, tt.events)
				w.(http.Flusher).Flush()
			})
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/responses", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+e2eClientKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := make([]byte, len(tt.events)) // every byte the provider sent, relayed
			if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != tt.events {
				t.Fatalf("the stream's first bytes: %q, %v; want %q", got, err, tt.events)
			}
			stop()
			rest, readErr := io.ReadAll(resp.Body)
			if err := <-done; err != nil {
				t.Errorf("serve returned %v", err)
			}
			switch {
			case tt.want != "":
				e := gjson.Get(strings.TrimPrefix(string(rest), "data: "), "error")
				if readErr != nil || !strings.HasPrefix(string(rest), `data: {"error":`) || !strings.HasSuffix(string(rest), "\n\n") ||
					e.Get("code").Str != "server_shutdown" || !strings.HasSuffix(e.Get("message").Str, tt.want) {
					t.Errorf("after the drain deadline the forwarded stream went on with %q, err %v; want the server_shutdown error event saying %q, and a clean end",
						rest, readErr, tt.want)
				}
			case strings.HasSuffix(tt.events, "\n\n"):
				if len(rest) > 0 || readErr != nil {
					t.Errorf("after the drain deadline the ended forwarded stream went on with %q, err %v; want nothing more, and a clean end", rest, readErr)
				}
			default:
				if len(rest) > 0 || readErr == nil {
					t.Errorf("after the drain deadline the forwarded stream cut in an event went on with %q, err %v; want nothing more, and no proper end", rest, readErr)
				}
			}
		})
	}
}

// TestDrainDeadlineDoesNotInviteAResendOfABatch: a forwarded call sent at
// most once (POST /v1/batches) that the provider had whole, and had not
// answered, when the drain's time ran out is not answered "send it again"
// with a 503, which the OpenAI SDKs retry on their own (on a new
// connection: another replica) and the bot's code takes at its word: the
// provider may have made the batch, so the answer says x-should-retry:
// false and tells the bot to check, as when a provider fails such a call.
func TestDrainDeadlineDoesNotInviteAResendOfABatch(t *testing.T) {
	base, arrived, stop, done := drainCutWith(t, func(http.ResponseWriter) {})
	answered := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/batches",
			strings.NewReader(`{"input_file_id":"file-abc","endpoint":"/v1/chat/completions","completion_window":"24h"}`))
		req.Header.Set("Authorization", "Bearer "+e2eClientKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		answered <- resp
	}()
	<-arrived // the provider has the whole call, and will not answer it
	stop()
	resp := <-answered
	if resp == nil {
		return
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode < 500 || gjson.GetBytes(b, "error.code").String() != "server_shutdown" {
		t.Errorf("batch call at the drain deadline: %d %s (%v); want a 5xx server_shutdown error", resp.StatusCode, b, err)
	}
	if got := resp.Header.Get("X-Should-Retry"); got != "false" || strings.Contains(string(b), "send it again") {
		t.Errorf("batch call at the drain deadline answered x-should-retry %q, %s; want false and no invitation to send it again", got, b)
	}
	if err := <-done; err != nil {
		t.Errorf("serve returned %v", err)
	}
}

// TestDrainDeadlineAnswersNonStream503: a non-stream request whose answer
// had not begun when the drain's time ran out gets a 503 OpenAI error with
// Retry-After, which SDKs retry (on a new connection: another replica),
// not a connection closed without an answer.
func TestDrainDeadlineAnswersNonStream503(t *testing.T) {
	base, arrived, stop, done := drainCut(t)
	answered := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+e2eClientKey)
		req.Header.Set("X-WeChat-OpenID", "o-user-drain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		answered <- resp
	}()
	<-arrived // the provider has it, and will not finish it
	stop()
	resp := <-answered
	if resp == nil {
		return
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		gjson.GetBytes(b, "error.code").String() != "server_shutdown" {
		t.Errorf("non-stream request at the drain deadline: %d Retry-After %q %s (%v); want a 503 server_shutdown error with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), b, err)
	}
	if err := <-done; err != nil {
		t.Errorf("serve returned %v", err)
	}
}
