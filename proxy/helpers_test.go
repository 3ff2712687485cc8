package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
)

const (
	testClientKey   = "sk-paygate-test-client-key"
	testProviderKey = "sk-provider-secret-key-123"
	testHashKey     = "test-hash-key-0123456789"

	// okCompletion is the least non-stream chat completion a provider
	// answers: one choice (a 200 without choices is no answer, and fails
	// over).
	okCompletion = `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`
)

// seenRequest is what a fake provider received.
type seenRequest struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// fakeProvider is an httptest upstream that records every request and
// answers with its handler.
type fakeProvider struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newFakeProvider(t *testing.T, h http.HandlerFunc) *fakeProvider {
	t.Helper()
	fp := &fakeProvider{}
	fp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fp.mu.Lock()
		fp.seen = append(fp.seen, seenRequest{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body})
		fp.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
	}))
	t.Cleanup(fp.Close)
	return fp
}

func (fp *fakeProvider) requests() []seenRequest {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return append([]seenRequest(nil), fp.seen...)
}

// testConfig is a config with one client, one provider at base and one model
// "gpt-test" → "vendor/upstream-model".
func testConfig(t testing.TB, base string, mutate func(*config.Config)) *config.Config {
	t.Helper()
	src := `
clients:
  - {name: shop-bot, key: ` + testClientKey + `}
providers:
  - name: fake
    base_url: ` + base + `/v1
    api_key: ` + testProviderKey + `
    headers: {X-Title: paygate-test}
models:
  - name: gpt-test
    targets: [{provider: fake, model: vendor/upstream-model}]
  - name: embed-test
    targets: [{provider: fake, model: vendor/embed}]
privacy:
  hash_key: ` + testHashKey + `
`
	cfg, err := config.Parse([]byte(src), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(cfg)
	}
	return cfg
}

// newTestProxy serves a paygate proxy for cfg and returns its URL.
func newTestProxy(t *testing.T, cfg *config.Config) (string, *logtest.Buffer) {
	t.Helper()
	logs := &logtest.Buffer{}
	_, url := servePaygate(t, cfg, Options{Logger: logging.New(logs, slog.LevelDebug, cfg.Secrets())}, nil)
	return url, logs
}

// post sends a client request to the proxy.
func post(t *testing.T, url, path, body string, hdr map[string]string) *http.Response {
	t.Helper()
	return send(t, http.MethodPost, url, path, body, hdr)
}

// send sends a client request of method to the proxy; the body is closed at
// the test's end.
func send(t *testing.T, method, url, path, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sseHandler answers with the given raw SSE text, flushed event by event.
func sseHandler(events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Upstream-Secret-Header", "leak")
		w.Header().Set("Set-Cookie", "upstream=1")
		for _, e := range events {
			_, _ = io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
	}
}

// rawAnswer answers with head (the status line and the header lines, each
// ending in CRLF), a blank line and body, written as they are, and then
// closes the connection: a framing net/http would not write, such as a
// chunked body without its last chunk, or a body whose end is the close.
func rawAnswer(t testing.TB, head, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = bw.WriteString(head + "\r\n" + body)
		_ = bw.Flush()
	}
}

func jsonHandler(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream-Secret-Header", "leak")
		w.Header().Set("Openai-Organization", "org-upstream")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// chatAs serves s a non-stream chat turn of the end user header
// (X-WeChat-OpenID), session (X-Paygate-Session) and bodyUser (the body's
// "user"), each left out when empty, and returns its answer.
func chatAs(s *Server, header, session, bodyUser string) *httptest.ResponseRecorder {
	user := ""
	if bodyUser != "" {
		user = `"user":"` + bodyUser + `",`
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(
		`{"model":"gpt-test",`+user+`"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	if header != "" {
		req.Header.Set(headerOpenID, header)
	}
	if session != "" {
		req.Header.Set("X-Paygate-Session", session)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	return w
}
