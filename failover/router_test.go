package failover

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/tidwall/gjson"
)

// TestUpstreamRequest checks what a provider receives: the body patched for
// its target and nothing else changed, and only the allowed headers.
func TestUpstreamRequest(t *testing.T) {
	e := newEnv(t, map[string]func(*fconn, int){"a": always(statusFn(500, ""))}, []string{"a", "b"}, func(c *config.Config) {
		c.Providers[1].DropFields = []string{"parallel_tool_calls", "x.y"}
		c.Providers[1].Headers = map[string]string{"HTTP-Referer": "https://shop.example", "X-Title": "paygate"}
	})
	body := []byte(`{"model":"gpt", "stream":true,"messages":[{"role":"user","content":"hi \u00e9"}],"parallel_tool_calls":false,"x.y":1,"unknown_field":{"keep":[1, 2]}}`)
	orig := string(body)
	resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions?trace=1", Body: body, Stream: true,
		ContentType: "application/json", Accept: "text/event-stream"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Close()
	if string(body) != orig {
		t.Errorf("Open modified req.Body: %s", body)
	}
	ha, hb := e.fakes["a"].hits(), e.fakes["b"].hits()
	if len(ha) != 2 || len(hb) != 1 {
		t.Fatalf("hits a=%d b=%d; want 2 and 1", len(ha), len(hb))
	}
	tests := []struct {
		name       string
		got        seen
		wantBody   string
		wantHeader map[string]string
	}{
		{
			name:     "primary: model set, nothing else changed",
			got:      ha[0],
			wantBody: `{"model":"up-a", "stream":true,"messages":[{"role":"user","content":"hi \u00e9"}],"parallel_tool_calls":false,"x.y":1,"unknown_field":{"keep":[1, 2]}}`,
			wantHeader: map[string]string{"Authorization": "Bearer key-a", "Content-Type": "application/json",
				"Accept": "text/event-stream", "User-Agent": "paygate", "Content-Length": "*"},
		},
		{
			name:     "fallback: its model, its drop_fields gone, its headers",
			got:      hb[0],
			wantBody: `{"model":"up-b", "stream":true,"messages":[{"role":"user","content":"hi \u00e9"}],"unknown_field":{"keep":[1, 2]}}`,
			wantHeader: map[string]string{"Authorization": "Bearer key-b", "Content-Type": "application/json",
				"Accept": "text/event-stream", "User-Agent": "paygate", "Content-Length": "*",
				"Http-Referer": "https://shop.example", "X-Title": "paygate"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got.body != tc.wantBody {
				t.Errorf("body\n got %s\nwant %s", tc.got.body, tc.wantBody)
			}
			if tc.got.path != "/v1/chat/completions?trace=1" {
				t.Errorf("path %q; want /v1/chat/completions?trace=1", tc.got.path)
			}
			for k := range tc.got.header {
				if _, ok := tc.wantHeader[http.CanonicalHeaderKey(k)]; !ok {
					t.Errorf("unexpected header %s: %q", k, tc.got.header.Get(k))
				}
			}
			for k, v := range tc.wantHeader {
				if g := tc.got.header.Get(k); (v == "*" && g == "") || (v != "*" && g != v) {
					t.Errorf("header %s = %q; want %q", k, g, v)
				}
			}
		})
	}
}

// TestSameUpstreamModel: embeddings fail over only between targets serving
// the first target's upstream model.
func TestSameUpstreamModel(t *testing.T) {
	e := newEnv(t, map[string]func(*fconn, int){"a": always(statusFn(502, ""))}, []string{"a", "b", "c"}, func(c *config.Config) {
		c.Models[0].Targets[2].Model = "up-a"
	})
	req := &Request{Model: "gpt", Path: "/embeddings", Body: []byte(`{"model":"gpt","input":"x"}`), SameUpstreamModel: true, ContentType: "application/json"}
	got := e.openReq(t.Context(), req)
	if got.openErr != nil || got.provider != "c" {
		t.Fatalf("got %q, %v; want c (same upstream model as a)", got.provider, got.openErr)
	}
	if n := len(e.fakes["b"].hits()); n != 0 {
		t.Errorf("b (another upstream model) saw %d requests; want 0", n)
	}
	if h := e.fakes["c"].hits(); len(h) != 1 || !strings.Contains(h[0].body, `"model":"up-a"`) {
		t.Errorf("c saw %v; want one request for up-a", h)
	}
}

// TestConnectionRefused: a provider that is not listening costs one retry
// and then the next target answers.
func TestConnectionRefused(t *testing.T) {
	// Port 1 (tcpmux) has no listener here. A port freed by closing a
	// listener does not stay free: another test binary running alongside
	// took one, and a answered.
	const dead = "http://127.0.0.1:1"
	e := newEnv(t, nil, []string{"a", "b"}, func(c *config.Config) { c.Providers[0].BaseURL = dead })
	got := e.open(t.Context(), true)
	if got.openErr != nil || got.provider != "b" || !got.complete() {
		t.Fatalf("got %q %v %v; want a complete answer from b", got.provider, got.openErr, got.end)
	}
	if got.attempts != 3 {
		t.Errorf("Attempts %d; want 3 (a twice, then b)", got.attempts)
	}
}

// TestMaxAttempts bounds a round's attempts whatever the target count:
// with fewer attempts than targets, the round ends when they are spent
// (and no retry takes a later target's attempt).
func TestMaxAttempts(t *testing.T) {
	fail := always(statusFn(500, ""))
	e := newEnv(t, map[string]func(*fconn, int){"a": fail, "b": fail, "c": fail}, []string{"a", "b", "c"}, func(c *config.Config) {
		c.Failover.MaxAttempts = 2
	})
	got := e.open(t.Context(), true)
	var ue *UpstreamError
	if !errors.As(got.openErr, &ue) || ue.Attempts != 2 || ue.Status != 502 {
		t.Fatalf("got %v; want a 502 after 2 attempts", got.openErr)
	}
	hits := []int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits()), len(e.fakes["c"].hits())}
	if !slices.Equal(hits, []int{1, 1, 0}) {
		t.Errorf("hits %v; want [1 1 0]", hits)
	}
}

// TestClientCancel: the caller leaving, whether it cancels or its own
// deadline passes while a slow provider is still thinking, ends the round
// at once and does not count against the provider: clients that give up
// are not the provider's failures, and must not open its breaker.
func TestClientCancel(t *testing.T) {
	tests := []struct {
		name string
		ctx  func(parent context.Context, started <-chan struct{}) (context.Context, context.CancelFunc)
		want error
	}{
		{"canceled once the request is sent", func(parent context.Context, started <-chan struct{}) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(parent)
			go func() {
				<-started
				cancel()
			}()
			return ctx, cancel
		}, context.Canceled},
		{"deadline passed while the provider thinks", func(parent context.Context, _ <-chan struct{}) (context.Context, context.CancelFunc) {
			return context.WithTimeout(parent, 50*time.Millisecond)
		}, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan struct{}, 10)
			e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, _ int) {
				started <- struct{}{}
				c.hang()
			}}, []string{"a", "b"}, func(c *config.Config) {
				c.Failover.Breaker.Failures = 1
				c.Providers[0].Timeouts.FirstByte = config.Duration(10 * time.Second)
			})
			for range 3 {
				ctx, cancel := tc.ctx(t.Context(), started)
				got := e.open(ctx, true)
				cancel()
				if !errors.Is(got.openErr, tc.want) {
					t.Fatalf("Open error %v; want %v", got.openErr, tc.want)
				}
				var ue *UpstreamError
				if !errors.As(got.openErr, &ue) || ue.Status != 499 {
					t.Errorf("got %v; want an UpstreamError with status 499", got.openErr)
				}
				if got.took > 2*time.Second {
					t.Errorf("cancel took %v", got.took)
				}
			}
			if st := statusOf(e.r, "a"); st.Breaker != "closed" {
				t.Errorf("a's breaker %s after client cancels; want closed", st.Breaker)
			}
			if n := len(e.fakes["b"].hits()); n != 0 {
				t.Errorf("b saw %d; want 0 (no failover on cancel)", n)
			}
		})
	}
}

// TestModels covers the model list and the unknown-model error.
func TestModels(t *testing.T) {
	e := newEnv(t, nil, []string{"a"}, func(c *config.Config) {
		c.Models = append(c.Models, config.Model{Name: "cheap", Targets: []config.Target{{Provider: "b", Model: "m"}}})
	})
	if got := e.r.Models(); !slices.Equal(got, []string{"gpt", "cheap"}) {
		t.Errorf("Models %v; want [gpt cheap]", got)
	}
	if !e.r.HasModel("cheap") || e.r.HasModel("nope") {
		t.Errorf("HasModel wrong")
	}
	_, err := e.r.Open(t.Context(), &Request{Model: "nope", Path: "/chat/completions"})
	if !errors.Is(err, ErrUnknownModel) {
		t.Errorf("Open unknown model: %v; want ErrUnknownModel", err)
	}
}

// TestNewRejectsBadConfig: New checks what the Router relies on.
func TestNewRejectsBadConfig(t *testing.T) {
	base := func() *config.Config {
		return testConfig(map[string]string{"a": "http://127.0.0.1:1"}, []string{"a"})
	}
	tests := []struct {
		name   string
		mutate func(*config.Config)
	}{
		{"unknown provider in a target", func(c *config.Config) { c.Models[0].Targets[0].Provider = "zz" }},
		{"model without targets", func(c *config.Config) { c.Models[0].Targets = nil }},
		{"unknown strategy", func(c *config.Config) { c.Models[0].Strategy = "random" }},
		{"duplicate model", func(c *config.Config) { c.Models = append(c.Models, c.Models[0]) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.mutate(cfg)
			if _, err := New(cfg, Options{}); err == nil {
				t.Errorf("New accepted it")
			}
		})
	}
}

// timeoutErr is what a dialer returns when connect times out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// hostTransport sends requests for one host through fail and the rest
// through the default transport.
type hostTransport struct {
	host string
	fail error
	hits atomic.Int32
}

func (h *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == h.host {
		h.hits.Add(1)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: h.fail}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestConnectTimeoutNotRetried: a dial that timed out is a silent provider:
// the next target at once, no second wait on the same one.
func TestConnectTimeoutNotRetried(t *testing.T) {
	fb := newFakeProvider(t, nil, healthy("b"))
	cfg := testConfig(map[string]string{"a": "http://unreachable.invalid", "b": fb.url}, []string{"a", "b"})
	tr := &hostTransport{host: "unreachable.invalid", fail: timeoutErr{}}
	r, err := New(cfg, Options{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false)})
	if err != nil {
		t.Fatal(err)
	}
	resp.Close()
	if resp.Provider != "b" || tr.hits.Load() != 1 {
		t.Errorf("served by %s after %d attempts on a; want b after 1", resp.Provider, tr.hits.Load())
	}
	if resp.Tried[0].Cause != CauseConnectTimeout {
		t.Errorf("first attempt cause %q; want %q", resp.Tried[0].Cause, CauseConnectTimeout)
	}
}

func TestPatch(t *testing.T) {
	p := &provider{drop: []string{escapePath("store"), escapePath("a.b")}}
	tg := &target{p: p, model: "up/m-1"}
	tests := []struct {
		name, in, want string
	}{
		{"model replaced in place", `{"model":"x","n":1}`, `{"model":"up/m-1","n":1}`},
		{"model of another type replaced", `{"n":1,"model":null}`, `{"n":1,"model":"up/m-1"}`},
		{"only the top-level model", `{"messages":[{"model":"keep"}],"model":"x"}`, `{"messages":[{"model":"keep"}],"model":"up/m-1"}`},
		{"escaped value replaced whole", `{"model":"a\"b\u00e9"}`, `{"model":"up/m-1"}`},
		{"no model: none added", `{"input":"x"}`, `{"input":"x"}`},
		{"no model, drop fields removed", `{"input":"x","store":true}`, `{"input":"x"}`},
		{"drop fields, dotted names literal", `{"model":"x","store":true,"a.b":2,"a":{"b":3}}`, `{"model":"up/m-1","a":{"b":3}}`},
		{"unicode escapes and spacing kept", "{ \"model\" : \"x\",\n \"s\":\"\\u00e9\" }", "{ \"model\" : \"up/m-1\",\n \"s\":\"\\u00e9\" }"},
		{"white space before the object", " \r\n\t{\"model\":\"x\"}", " \r\n\t{\"model\":\"up/m-1\"}"},
		{"white space only: sent as is", " \n", " \n"},
		{"not JSON: sent as is", "--boundary\r\nContent-Disposition: form-data", "--boundary\r\nContent-Disposition: form-data"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			got, err := tg.patch(in, true)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %s; want %s", got, tc.want)
			}
			if string(in) != tc.in {
				t.Errorf("input modified: %s", in)
			}
		})
	}
	// A request that names no model (routed to the first model's targets)
	// keeps its "model" member, whatever it holds; drop fields still go.
	for in, want := range map[string]string{
		`{"model":"","input":"x"}`:           `{"model":"","input":"x"}`,
		`{"input":"x","model":null}`:         `{"input":"x","model":null}`,
		`{"model":5,"store":true,"input":1}`: `{"model":5,"input":1}`,
	} {
		if got, err := tg.patch([]byte(in), false); err != nil || string(got) != want {
			t.Errorf("patch(%s) naming no model = %s, %v; want %s", in, got, err, want)
		}
	}
	// Without drop fields, a body that already names the upstream model, or
	// names none, is sent as it is, not copied; any other is copied.
	plain := &target{p: &provider{}, model: "up/m-1"}
	for _, in := range []string{`{"model":"up/m-1","n":1}`, `{ "model" : "up/m-1" }`, `{"model":"up/m-2"}`, `{"model":"up\/m-1"}`, `{"input":"x"}`} {
		b := []byte(in)
		got, err := plain.patch(b, true)
		if err != nil {
			t.Fatal(err)
		}
		same := gjson.Get(in, "model").Raw == `"up/m-1"` || !gjson.Get(in, "model").Exists()
		if shared := &got[0] == &b[0]; shared != same {
			t.Errorf("patch(%s): body shared %v; want %v", in, shared, same)
		}
		if same && string(got) != in || !same && gjson.Get(string(got), "model").Raw != `"up/m-1"` {
			t.Errorf("patch(%s) = %s", in, got)
		}
	}
}

// TestKeepAlive: healthy rounds, stream and non-stream, reuse one
// connection (the stream's tail is drained on Close).
func TestKeepAlive(t *testing.T) {
	e := newEnv(t, nil, []string{"a"}, nil)
	for i := range 10 {
		if got := e.open(t.Context(), i%2 == 0); got.openErr != nil || got.provider != "a" {
			t.Fatalf("round %d: %v", i, got.openErr)
		}
	}
	f := e.fakes["a"]
	f.mu.Lock()
	n := f.accepted
	f.mu.Unlock()
	if n != 1 {
		t.Errorf("10 sequential rounds opened %d connections; want 1", n)
	}
}
