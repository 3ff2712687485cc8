package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store"
)

// pricedConfig is testConfig with the upstream model priced at 2.50 input
// and 10.00 output per million tokens.
func pricedConfig(t *testing.T, base string) *config.Config {
	t.Helper()
	return testConfig(t, base, func(c *config.Config) {
		c.Providers[0].Prices = map[string]config.Price{"vendor/upstream-model": {
			Input: config.Decimal{Micros: 2_500_000}, Output: config.Decimal{Micros: 10_000_000}}}
	})
}

// TestAnswerBeforeAccounting: a priced non-stream turn's answer reaches the
// client while the turn's cost is still being written to the store (with
// the embedded store that write is an fsync), not after it.
func TestAnswerBeforeAccounting(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(http.StatusOK, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}`))
	cfg := pricedConfig(t, fp.URL)
	sessions := &blockedSessions{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, ledger, _ := ledgerProxy(t, cfg, sessions, noTools{})
	srv := h1test.NewServer(s.Handler())
	defer srv.Close()
	defer ledger.Close()
	defer close(sessions.release) // first: srv.Close and ledger.Close wait for the write

	answered := chatInBackground(srv.URL, `{"model":"gpt-test","user":"o-user-1","messages":[{"role":"user","content":"hi"}]}`)
	// The cost write cannot finish before the test ends (release), so an
	// answer that waited for it would never come.
	select {
	case got := <-answered:
		if !strings.Contains(got, `"content":"hello"`) {
			t.Errorf("answer %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the answer waited for the accounting write")
	}
	select {
	case <-sessions.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the turn's cost was never written")
	}
}

// TestUsageOutOfRangeKeepsTheAnswer: a provider's usage with a negative
// count, or one so large its cost overflowed int64, made the ledger panic
// (Prometheus refuses a counter that would decrease) once the answer was
// written: the server closed the connection and the bot lost an answer
// the provider had produced and billed, on a forwarded path and on chat
// completions alike. The bot now gets the whole answer, and the spend
// stays non-negative.
func TestUsageOutOfRangeKeepsTheAnswer(t *testing.T) {
	chat := func(usage string) http.HandlerFunc {
		return jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":`+usage+`}`)
	}
	embeddings := func(usage string) http.HandlerFunc {
		return jsonHandler(200, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"vendor/upstream-model","usage":`+usage+`}`)
	}
	responsesStream := func(usage string) http.HandlerFunc {
		return sseHandler("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":" + usage + "}}\n\n")
	}
	tests := []struct {
		name, path, body string
		provider         http.HandlerFunc
		want             string // in the bot's answer
	}{
		{"chat, a negative count", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`,
			chat(`{"prompt_tokens":-5,"completion_tokens":2,"total_tokens":-3}`), `"content":"hello"`},
		{"chat, a count whose cost overflows", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`,
			chat(`{"prompt_tokens":4000000000000,"completion_tokens":2,"total_tokens":4000000000002}`), `"content":"hello"`},
		{"embeddings, a negative count", "/v1/embeddings", `{"model":"gpt-test","input":"hi"}`,
			embeddings(`{"prompt_tokens":-5,"total_tokens":-5}`), `"embedding"`},
		{"embeddings, a count whose cost overflows", "/v1/embeddings", `{"model":"gpt-test","input":"hi"}`,
			embeddings(`{"prompt_tokens":4000000000000,"total_tokens":4000000000000}`), `"embedding"`},
		{"a Responses stream, a negative count", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
			responsesStream(`{"input_tokens":-5,"output_tokens":2}`), `response.completed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.provider)
			s, ledger, reg, logs := ledgerProxyLog(t, pricedConfig(t, fp.URL), nil, nil)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			req, _ := http.NewRequest(http.MethodPost, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("the bot got no answer: %v", err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
				t.Fatalf("the bot got %d %q, %v; want the provider's answer whole", resp.StatusCode, b, err)
			}
			handled.Wait()
			if c := ledger.Stats().LLMCost; strings.HasPrefix(c, "-") {
				t.Errorf("LLM spend %s is negative", c)
			}
			if n := tokensCounted(t, reg, "prompt"); n != 0 {
				t.Errorf("prompt tokens counted %v; want 0 for a count out of range", n)
			}
			if n := tokensCounted(t, reg, "completion"); n != 2 && tc.path != "/v1/embeddings" {
				t.Errorf("completion tokens counted %v; want the 2 in range", n)
			}
			// The warning about the provider's count is a line of the
			// request: it carries the id the bot was answered with, so
			// an operator finds the answer the provider miscounted.
			id, warned := resp.Header.Get("X-Request-Id"), false
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if strings.Contains(line, `"msg":"accounting: `) {
					warned = true
					if id == "" || !strings.Contains(line, `"request_id":"`+id+`"`) {
						t.Errorf("accounting warning without the request id %q: %s", id, line)
					}
				}
			}
			if !warned {
				t.Errorf("no accounting warning about the count: %s", logs.String())
			}
		})
	}
}

// TestStreamAnswerEndsWhileTheLedgerQueueIsFull: a streamed answer ends
// only when the handler returns, after Ledger.Turn. With the store hung
// (every conversation-cost write waits out its timeout) and the ledger's
// queue full of earlier turns of other users, the answer still ends: the
// turn's cost is dropped rather than waited on.
func TestStreamAnswerEndsWhileTheLedgerQueueIsFull(t *testing.T) {
	for _, tc := range []struct {
		name    string
		earlier int // turns queued before, behind the hung store
	}{
		{"queue free", 0},
		{"queue full", 1 + 1024}, // one in the writer, 1024 queued
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, sseHandler(
				`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}`+"\n\n",
				`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
				`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}`+"\n\n",
				"data: [DONE]\n\n"))
			cfg := pricedConfig(t, fp.URL)
			sessions := &blockedSessions{entered: make(chan struct{}, 1), release: make(chan struct{})}
			s, ledger, reg := ledgerProxy(t, cfg, sessions, noTools{})
			srv := h1test.NewServer(s.Handler())
			defer srv.Close()
			defer ledger.Close()
			defer close(sessions.release) // first: srv.Close and ledger.Close wait for the writes
			for i := range tc.earlier {
				ledger.Turn(context.Background(), "bot", "o-other", "o-other-"+strconv.Itoa(i), accounting.Pico(1))
				if i == 0 {
					<-sessions.entered // the writer holds the first; the rest queue
				}
			}
			answered := chatInBackground(srv.URL, `{"model":"gpt-test","user":"o-user-1","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			select {
			case got := <-answered:
				if !strings.Contains(got, `"content":"hello"`) || !strings.Contains(got, "data: [DONE]") {
					t.Errorf("answer %s", got)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the streamed answer did not end: the handler waits in Ledger.Turn for the store")
			}
			wantDropped := 0.0
			if tc.earlier > 0 {
				wantDropped = 1 // the answered turn's cost
			}
			if got := counterValue(t, reg, "paygate_accounting_dropped_total"); got != wantDropped {
				t.Errorf("paygate_accounting_dropped_total = %v; want %v", got, wantDropped)
			}
		})
	}
}

// blockedSessions is a SessionStore whose writes wait until released, like
// a slow disk.
type blockedSessions struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockedSessions) AddTally(ctx context.Context, _ string, delta int64, _ time.Duration) (int64, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return delta, nil
}

func (b *blockedSessions) AddTallies(ctx context.Context, _ []store.TallyAdd, _ time.Duration) error {
	_, err := b.AddTally(ctx, "", 0, 0)
	return err
}

func (b *blockedSessions) TakeTally(context.Context, string) (int64, error) { return 0, nil }
func (b *blockedSessions) IncrCounter(context.Context, string, time.Duration) (int64, error) {
	return 1, nil
}

// TestPlainStreamUsageOnTheFinishChunk: a provider that sends usage on its
// finish chunk, with no usage-only chunk (Mistral, Gemini's compatible
// endpoint), still has the stream's tokens counted on the plain path.
func TestPlainStreamUsageOnTheFinishChunk(t *testing.T) {
	fp := newFakeProvider(t, sseHandler(
		`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`+"\n\n",
		`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}`+"\n\n",
		"data: [DONE]\n\n"))
	cfg := testConfig(t, fp.URL, nil)
	s, ledger, reg := ledgerProxy(t, cfg, nil, nil)
	t.Cleanup(ledger.Close)
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	resp := post(t, srv.URL, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if b := readAll(t, resp.Body); !strings.Contains(b, "data: [DONE]") {
		t.Fatalf("stream: %s", b)
	}
	for kind, want := range map[string]float64{"prompt": 1000, "completion": 200} {
		if got := tokensCounted(t, reg, kind); got != want {
			t.Errorf("%s tokens: %v; want %v", kind, got, want)
		}
	}
}

// tokensCounted sums paygate_llm_tokens_total of one kind in reg.
func tokensCounted(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "paygate_llm_tokens_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// counterValue is the sum of the counter name's series in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// ledgerProxy is a proxy for cfg whose turns are accounted by a ledger on
// sessions (nil: none), with its registry. tools nil offers no payment tools.
func ledgerProxy(t *testing.T, cfg *config.Config, sessions accounting.SessionStore, tools PaymentTools) (*Server, *accounting.Ledger, *prometheus.Registry) {
	t.Helper()
	s, ledger, reg, _ := ledgerProxyLog(t, cfg, sessions, tools)
	return s, ledger, reg
}

// ledgerProxyLog is ledgerProxy, with the log it writes.
func ledgerProxyLog(t *testing.T, cfg *config.Config, sessions accounting.SessionStore, tools PaymentTools) (*Server, *accounting.Ledger, *prometheus.Registry, *logtest.Buffer) {
	t.Helper()
	return ledgerProxyVia(t, cfg, sessions, tools, nil)
}

// ledgerProxyVia is ledgerProxyLog whose upstream requests go through
// transport (nil: the default).
func ledgerProxyVia(t *testing.T, cfg *config.Config, sessions accounting.SessionStore, tools PaymentTools, transport http.RoundTripper) (*Server, *accounting.Ledger, *prometheus.Registry, *logtest.Buffer) {
	t.Helper()
	logs := &logtest.Buffer{}
	log := logging.New(logs, slog.LevelDebug, cfg.Secrets())
	reg := prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	ledger, err := accounting.New(cfg, sessions, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg,
		HashKey: []byte(cfg.Privacy.HashKey), Tools: tools, Ledger: ledger})
	if err != nil {
		t.Fatal(err)
	}
	return s, ledger, reg, logs
}

// TestPassthroughUsageAccounted: a forwarded JSON answer with a usage
// object (an embeddings call, a Responses API answer) is accounted like a
// chat round: its tokens and its cost under the provider and the target's
// upstream model, the cost in the replica's LLM spend. An error answer's
// usage is not the provider's bill and is left out.
func TestPassthroughUsageAccounted(t *testing.T) {
	answers := map[string]struct {
		status int
		body   string
	}{
		"/v1/embeddings":  {200, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"vendor/embed","usage":{"prompt_tokens":1000,"total_tokens":1000}}`},
		"/v1/responses":   {200, `{"id":"resp_1","object":"response","model":"vendor/upstream-model","output":[],"usage":{"input_tokens":300,"output_tokens":50,"total_tokens":350}}`},
		"/v1/moderations": {400, `{"error":{"message":"bad input","type":"invalid_request_error"},"usage":{"prompt_tokens":7}}`},
	}
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	})
	cfg := testConfig(t, fp.URL, func(c *config.Config) {
		c.Providers[0].Prices = map[string]config.Price{
			"vendor/embed":          {Input: config.Decimal{Micros: 20_000}},                                                // 0.02 per million
			"vendor/upstream-model": {Input: config.Decimal{Micros: 2_500_000}, Output: config.Decimal{Micros: 10_000_000}}, // 2.5 and 10
		}
	})
	s, ledger, reg := ledgerProxy(t, cfg, nil, nil)
	t.Cleanup(ledger.Close)
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	for _, c := range []struct{ path, body string }{
		{"/v1/embeddings", `{"model":"embed-test","input":"hello"}`},
		{"/v1/responses", `{"model":"gpt-test","input":"hello"}`},
		{"/v1/moderations", `{"model":"gpt-test","input":"hello"}`},
	} {
		resp := post(t, srv.URL, c.path, c.body, map[string]string{"Content-Type": "application/json"})
		if b := readAll(t, resp.Body); resp.StatusCode != answers[c.path].status {
			t.Fatalf("%s: %d %s", c.path, resp.StatusCode, b)
		}
	}
	for kind, want := range map[string]float64{"prompt": 1000 + 300, "completion": 50} {
		if got := tokensCounted(t, reg, kind); got != want {
			t.Errorf("%s tokens: %v; want %v", kind, got, want)
		}
	}
	st := ledger.Stats()
	byModel := map[string]accounting.ModelStats{}
	for _, m := range st.ByModel {
		byModel[m.Provider+"/"+m.Model] = m
	}
	// 1000 × 0.02 / 1e6 = 0.00002; 300 × 2.5 / 1e6 + 50 × 10 / 1e6 = 0.00125
	if m := byModel["fake/vendor/embed"]; m.PromptTokens != 1000 || m.LLMCost != "0.000020" {
		t.Errorf("embeddings accounted as %+v; want 1000 prompt tokens costing 0.000020", m)
	}
	if m := byModel["fake/vendor/upstream-model"]; m.PromptTokens != 300 || m.CompletionTokens != 50 || m.LLMCost != "0.001250" {
		t.Errorf("responses answer accounted as %+v; want 300 and 50 tokens costing 0.001250", m)
	}
	if st.LLMCost != "0.001270" || st.Turns != 0 {
		t.Errorf("replica's LLM spend %s over %d turns; want 0.001270 over none (forwarded calls are no turns)", st.LLMCost, st.Turns)
	}
}

// chatInBackground posts body to base's chat route with the test client key
// and delivers the whole answer, or "error: …", on the channel it returns:
// for a test that must not wait on an answer that may never come.
func chatInBackground(base, body string) <-chan string {
	answered := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testClientKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			answered <- "error: " + err.Error()
			return
		}
		answered <- string(b)
	}()
	return answered
}

// waitedServer serves h and counts its handlers in flight: accounting
// follows an answer, so a test waits for the handlers before it reads the
// counts.
func waitedServer(t *testing.T, h http.Handler) (*h1test.Server, *sync.WaitGroup) {
	t.Helper()
	var handled sync.WaitGroup
	srv := h1test.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		defer handled.Done()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &handled
}

// TestStoredObjectNotBilledAgain: a forwarded answer's usage was accounted
// whatever the call, and a stored object carries the usage of the call
// that made it: each GET /v1/responses/{id} of one 1000-token generation
// counted another 1000 prompt tokens and their cost. Only a POST whose
// body names a model is a generation paygate accounts; a retrieval, a
// deletion, a cancellation (POST …/cancel, no body) or an update of a
// stored object's metadata (POST /v1/chat/completions/{id}) is not, though
// each answers the object with its usage.
func TestStoredObjectNotBilledAgain(t *testing.T) {
	const obj = `{"id":"resp_1","object":"response","status":"completed","model":"vendor/upstream-model","output":[],"error":null,"usage":{"input_tokens":1000,"output_tokens":500,"total_tokens":1500}}`
	fp := newFakeProvider(t, jsonHandler(200, obj))
	s, ledger, reg := ledgerProxy(t, pricedConfig(t, fp.URL), nil, nil)
	t.Cleanup(ledger.Close)
	srv, handled := waitedServer(t, s.Handler())
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/responses", `{"model":"gpt-test","input":"hi"}`},
		{http.MethodGet, "/v1/responses/resp_1", ""},
		{http.MethodGet, "/v1/responses/resp_1", ""},
		{http.MethodGet, "/v1/responses/resp_1", ""},
		{http.MethodPost, "/v1/responses/resp_1/cancel", ""},
		{http.MethodPost, "/v1/chat/completions/chatcmpl-1", `{"metadata":{"topic":"billing"}}`},
		{http.MethodDelete, "/v1/responses/resp_1", ""},
	} {
		var hdr map[string]string
		if c.body != "" {
			hdr = map[string]string{"Content-Type": "application/json"}
		}
		resp := clientReq(t, c.method, srv.URL+c.path, strings.NewReader(c.body), hdr)
		if b := readAll(t, resp.Body); resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, b)
		}
	}
	handled.Wait()
	for kind, want := range map[string]float64{"prompt": 1000, "completion": 500} {
		if got := tokensCounted(t, reg, kind); got != want {
			t.Errorf("%s tokens: %v after one generation and its retrievals; want %v", kind, got, want)
		}
	}
	// 1000 × 2.5 / 1e6 + 500 × 10 / 1e6 = 0.0075
	if st := ledger.Stats(); st.LLMCost != "0.007500" {
		t.Errorf("replica's LLM spend %s; want 0.007500, the generation's alone", st.LLMCost)
	}
}

// TestForwardedStreamUsageCounted: a generation streamed on a forwarded
// path (a Responses API stream, a legacy completion with
// stream_options.include_usage, a streaming transcription) is piped to the
// bot untouched, and its usage, which comes in its last event, is counted
// once the stream has ended: a bot that streamed its Responses calls spent
// money the LLM spend never showed. Earlier events' "usage":null count for
// nothing, and a stream the provider cut before its usage counts nothing.
func TestForwardedStreamUsageCounted(t *testing.T) {
	long := strings.Repeat(`x`, 40<<10) // a long answer ahead of the usage
	tests := []struct {
		name, path, body string
		events           []string
		prompt, compl    float64
	}{
		{"Responses API", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`, []string{
			"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"usage\":null}}\n\n",
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"" + long + " \\\"usage\\\": {\\\"input_tokens\\\": 9}\"}\n\n",
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":1000,\"output_tokens\":500,\"total_tokens\":1500},\"user\":null}}\n\n",
		}, 1000, 500},
		{"Responses API, the bot's metadata echoed after the usage", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true,"metadata":{"usage":"x"}}`, []string{
			"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"usage\":null,\"metadata\":{\"usage\":\"x\"}}}\n\n",
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":1000,\"output_tokens\":500,\"total_tokens\":1500},\"user\":null,\"metadata\":{\"usage\":\"x\"}}}\n\n",
		}, 1000, 500},
		{"Responses API, response.completed longer than the tail", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`, []string{
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"" + long + "\"}]}],\"usage\":{\"input_tokens\":1000,\"output_tokens\":500,\"total_tokens\":1500},\"metadata\":{}}}\n\n",
		}, 1000, 500},
		{"legacy completion", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, []string{
			"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[{\"text\":\"hi\",\"index\":0}],\"usage\":null}\n\n",
			"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":7,\"total_tokens\":37}}\n\n",
			"data: [DONE]\n\n",
		}, 30, 7},
		{"Responses API, response.failed", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`, []string{
			"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"error\":null,\"usage\":null}}\n\n",
			"event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"failed\"," +
				"\"error\":{\"code\":\"server_error\",\"message\":\"The model failed to generate a response.\"},\"output\":[],\"usage\":{\"input_tokens\":1000,\"output_tokens\":500,\"total_tokens\":1500},\"user\":null,\"metadata\":{}}}\n\n",
		}, 1000, 500},
		{"legacy completion, vLLM's continuous usage stats on every chunk", "/v1/completions",
			`{"model":"gpt-test","prompt":"hi","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}`, []string{
				"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"hi\",\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":30,\"total_tokens\":31,\"completion_tokens\":1}}\n\n",
				"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\" there\",\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":30,\"total_tokens\":32,\"completion_tokens\":2}}\n\n",
				"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"total_tokens\":32,\"completion_tokens\":2}}\n\n",
				"data: [DONE]\n\n",
			}, 30, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for _, ev := range tc.events {
					_, _ = io.WriteString(w, ev)
					w.(http.Flusher).Flush()
				}
			})
			s, ledger, reg := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, nil)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := clientReq(t, http.MethodPost, srv.URL+tc.path, strings.NewReader(tc.body), map[string]string{"Content-Type": "application/json"})
			if b := readAll(t, resp.Body); resp.StatusCode != 200 || b != strings.Join(tc.events, "") {
				t.Fatalf("%d; the bot got %d bytes, want the %d the provider sent, untouched", resp.StatusCode, len(b), len(strings.Join(tc.events, "")))
			}
			handled.Wait()
			for kind, want := range map[string]float64{"prompt": tc.prompt, "completion": tc.compl} {
				if got := tokensCounted(t, reg, kind); got != want {
					t.Errorf("%s tokens: %v; want %v, the stream's last usage", kind, got, want)
				}
			}
		})
	}
}

// TestForwardedStreamCutAfterItsLastEvent: a provider, or a relay in
// front of it, that drops the connection after a stream's last event
// (response.completed, a legacy completion's [DONE]) without the body's
// last chunk has sent the whole answer. paygate cut the bot's connection
// as for a stream cut mid-answer, so the bot's SDK threw after reading all
// of it (and the bot asked again, billed twice), the usage in that last
// event was not counted, and the cut counted against the provider's
// breaker. Such a stream now ends whole, its usage counted, a complete
// stream to the provider's metrics; one cut before its last event is
// still incomplete and uncounted.
func TestForwardedStreamCutAfterItsLastEvent(t *testing.T) {
	created := "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"usage\":null}}\n\n"
	completed := "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"usage\":{\"input_tokens\":1000,\"output_tokens\":500,\"total_tokens\":1500}}}\n\n"
	legacyUsage := "data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":7,\"total_tokens\":37}}\n\n"
	// running is a legacy completion's chunk of text carrying vLLM's
	// running usage: 30 prompt tokens, n completion tokens so far.
	running := func(text string, n int) string {
		return `data: {"id":"c","object":"text_completion","choices":[{"index":0,"text":"` + text + `","logprobs":null,"finish_reason":null}],` +
			`"usage":{"prompt_tokens":30,"total_tokens":` + strconv.Itoa(30+n) + `,"completion_tokens":` + strconv.Itoa(n) + "}}\n\n"
	}
	crlf := func(ev string) string { return strings.ReplaceAll(ev, "\n", "\r\n") }
	cr := func(ev string) string { return strings.ReplaceAll(ev, "\n", "\r") }
	tests := []struct {
		name, path, body string
		events           []string
		whole            bool
		prompt, compl    float64
	}{
		{"Responses API, cut after response.completed", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
			[]string{created, completed}, true, 1000, 500},
		{"Responses API, its last event without event lines", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
			[]string{created, strings.TrimPrefix(completed, "event: response.completed\n")}, true, 1000, 500},
		{"legacy completion, cut after [DONE]", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true}`,
			[]string{legacyUsage, "data: [DONE]\n\n"}, true, 30, 7},
		{"Responses API, cut before its last event", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
			[]string{created, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n"}, false, 0, 0},
		{"Responses API, cut inside its last event", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
			[]string{created, completed[:len(completed)-1]}, false, 0, 0},
		// vLLM's stream_options.continuous_usage_stats puts the running
		// usage on every chunk: the provider billed what it sent before
		// the cut, the usage of the last event that came whole (its
		// blank line read: a client dispatches no event before it).
		{"legacy completion with continuous usage, cut mid-answer", "/v1/completions",
			`{"model":"gpt-test","prompt":"hi","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}`,
			[]string{running(" Hello", 1), running(" there", 2), strings.TrimSuffix(running(" friend", 3), "\n")}, false, 30, 2},
		// SSE ends lines at CRLF or a bare CR as well.
		{"continuous usage, CRLF line ends, cut mid-answer", "/v1/completions",
			`{"model":"gpt-test","prompt":"hi","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}`,
			[]string{crlf(running(" Hello", 1)), crlf(running(" there", 2)), strings.TrimSuffix(crlf(running(" friend", 3)), "\r\n")}, false, 30, 2},
		{"continuous usage, CR line ends, cut mid-answer", "/v1/completions",
			`{"model":"gpt-test","prompt":"hi","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}`,
			[]string{cr(running(" Hello", 1)), cr(running(" there", 2)), strings.TrimSuffix(cr(running(" friend", 3)), "\r")}, false, 30, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var chunks strings.Builder
			for _, ev := range tc.events {
				chunks.WriteString(strconv.FormatInt(int64(len(ev)), 16) + "\r\n" + ev + "\r\n")
			}
			// And no last chunk: the connection closes.
			fp := newFakeProvider(t, rawAnswer(t, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n", chunks.String()))
			s, ledger, reg := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, nil)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := clientReq(t, http.MethodPost, srv.URL+tc.path, strings.NewReader(tc.body), map[string]string{"Content-Type": "application/json"})
			b, err := io.ReadAll(resp.Body)
			if want := strings.Join(tc.events, ""); resp.StatusCode != 200 || string(b) != want {
				t.Fatalf("%d; the bot got %q, want %q", resp.StatusCode, b, want)
			}
			if tc.whole && err != nil || !tc.whole && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("the bot's read ended with %v; want whole %v", err, tc.whole)
			}
			handled.Wait()
			for kind, want := range map[string]float64{"prompt": tc.prompt, "completion": tc.compl} {
				if got := tokensCounted(t, reg, kind); got != want {
					t.Errorf("%s tokens: %v; want %v", kind, got, want)
				}
			}
			// The provider's breaker and metrics count it as the bot got
			// it: complete, or cut.
			if ends := streamEnds(t, reg); tc.whole && (ends["complete"] != 1 || len(ends) != 1) || !tc.whole && ends["complete"] != 0 {
				t.Errorf("stream ends %v; want complete %v", ends, tc.whole)
			}
		})
	}
}

// TestForwardedCompressedStreamCutAfterItsLastEvent: a stream a provider
// (or a relay) compresses without a flush per event comes whole in the
// decoder's last read, and that read is also where the cut shows: gzip
// hands over the stream's last bytes and the missing last chunk's
// io.ErrUnexpectedEOF together. paygate took the error before the relay
// had read those bytes, so the stream that had come whole to its
// response.completed was cut for the bot, its usage uncounted, and held
// against the provider's breaker, as before EndsWhole.
func TestForwardedCompressedStreamCutAfterItsLastEvent(t *testing.T) {
	created := "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"usage\":null}}\n\n"
	completed := "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"usage\":{\"input_tokens\":1000,\"output_tokens\":500,\"total_tokens\":1500}}}\n\n"
	for _, tc := range []struct {
		name   string
		events string
		whole  bool
		prompt float64
	}{
		{"cut after response.completed", created + completed, true, 1000},
		{"cut inside response.completed", created + completed[:len(completed)-1], false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				conn, bw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
				var gz bytes.Buffer
				chunk := func() {
					_, _ = bw.WriteString(strconv.FormatInt(int64(gz.Len()), 16) + "\r\n" + gz.String() + "\r\n")
					gz.Reset()
				}
				zw := gzip.NewWriter(&gz)
				_, _ = zw.Write([]byte(created))
				_ = zw.Flush() // the first event, which paygate awaits
				chunk()
				_, _ = zw.Write([]byte(strings.TrimPrefix(tc.events, created)))
				_ = zw.Close() // the rest, its gzip trailer included, in one block
				chunk()
				_ = bw.Flush() // and no last chunk: the connection closes
			})
			s, ledger, reg := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, nil)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := clientReq(t, http.MethodPost, srv.URL+"/v1/responses", strings.NewReader(`{"model":"gpt-test","input":"hi","stream":true}`),
				map[string]string{"Content-Type": "application/json"})
			b, err := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != tc.events {
				t.Fatalf("%d; the bot got %q, want %q", resp.StatusCode, b, tc.events)
			}
			if tc.whole && err != nil || !tc.whole && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("the bot's read ended with %v; want whole %v", err, tc.whole)
			}
			handled.Wait()
			if got := tokensCounted(t, reg, "prompt"); got != tc.prompt {
				t.Errorf("prompt tokens: %v; want %v", got, tc.prompt)
			}
			if ends := streamEnds(t, reg); tc.whole && (ends["complete"] != 1 || len(ends) != 1) || !tc.whole && (ends["complete"] != 0 || len(ends) != 1) {
				t.Errorf("stream ends %v; want complete %v", ends, tc.whole)
			}
		})
	}
}

// TestForwardedStreamLastEventCutNotReadForUsage: a Responses stream
// whose provider closes its connection inside response.completed, the
// body ending there (no length, no chunks: the close is its end), relays
// the event's first part to the bot. Its usage comes after the response's
// tools: read back from where the stream stopped, the usage was a tool
// schema's property named "usage", a usage of 0 tokens counted for the
// call. Only an event that ended counts (response.created's null here:
// nothing; not the cut event's own usage either, read whole nowhere), and
// only the usage of the event's object or its "response". The call is
// recorded, with no token, as any forwarded stream without a usage is.
func TestForwardedStreamLastEventCutNotReadForUsage(t *testing.T) {
	created := "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"usage\":null}}\n\n"
	cut := "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[]," +
		"\"usage\":{\"input_tokens\":1000,\"output_tokens\":500,\"total_tokens\":1500},\"tools\":[{\"type\":\"function\",\"name\":\"report\",\"parameters\":{\"type\":\"object\",\"properties\":{\"usage\":{\"type\":\"integer\"}}"
	fp := newFakeProvider(t, rawAnswer(t, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n", created+cut))
	s, ledger, reg := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, nil)
	t.Cleanup(ledger.Close)
	srv, handled := waitedServer(t, s.Handler())
	resp := clientReq(t, http.MethodPost, srv.URL+"/v1/responses", strings.NewReader(`{"model":"gpt-test","input":"hi","stream":true}`),
		map[string]string{"Content-Type": "application/json"})
	if b := readAll(t, resp.Body); resp.StatusCode != 200 || b != created+cut {
		t.Fatalf("%d; the bot got %q, want %q", resp.StatusCode, b, created+cut)
	}
	handled.Wait()
	if got := tokensCounted(t, reg, "prompt") + tokensCounted(t, reg, "completion"); got != 0 {
		t.Errorf("%v tokens counted; want none", got)
	}
	want := accounting.ModelStats{Provider: "fake", Model: "vendor/upstream-model", LLMCost: "0.000000"}
	if got := ledger.Stats().ByModel; len(got) != 1 || got[0] != want {
		t.Errorf("accounted %+v; want %+v: the call, no token counted (the stream's usage never came whole)", got, want)
	}
}

// streamEnds is paygate_upstream_stream_ends_total by outcome.
func streamEnds(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ends := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "paygate_upstream_stream_ends_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && m.GetCounter().GetValue() > 0 {
					ends[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return ends
}

// TestUsageTail: the tail finds the stream's last usage object however the
// stream was read (a byte at a time, in reads larger than the tail), and
// nothing where the stream carried none or only text that mentions it. The
// usage is the member of the event's object or of its "response", not a
// deeper one: the last "usage" written used to be taken, and a Responses
// event echoes the bot's metadata, which may have a key "usage", after it.
func TestUsageTail(t *testing.T) {
	last := `data: {"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":7}}` + "\n\n" + "data: [DONE]\n\n"
	text := `data: {"delta":"` + strings.Repeat("y", usageTailSize) + ` \"usage\":{\"prompt_tokens\":1}"}` + "\n\n"
	tests := []struct {
		name, stream string
		reads        []int // read sizes, repeated; 0: all at once
		want         string
	}{
		{"all at once", `data: {"usage":null}` + "\n\n" + last, []int{0}, `{"prompt_tokens":30,"completion_tokens":7}`},
		{"a byte at a time", `data: {"usage":null}` + "\n\n" + last, []int{1}, `{"prompt_tokens":30,"completion_tokens":7}`},
		{"after more than the tail holds", text + last, []int{4096, 1, 77}, `{"prompt_tokens":30,"completion_tokens":7}`},
		{"reads larger than the tail", text + last, []int{3 * usageTailSize}, `{"prompt_tokens":30,"completion_tokens":7}`},
		{"metadata after the usage", `data: {"type":"response.completed","response":{"usage":{"input_tokens":9,"output_tokens":2},"metadata":{"usage":"x","n":"{\"usage\":1}"}}}` + "\n\n",
			[]int{0}, `{"input_tokens":9,"output_tokens":2}`},
		{"an object named usage deeper down", `data: {"type":"response.completed","response":{"usage":{"input_tokens":9},"metadata":{"usage":{"input_tokens":1}}}}` + "\n\n",
			[]int{0}, `{"input_tokens":9}`},
		{"the last event longer than the tail", `data: {"type":"response.completed","response":{"output":[{"text":"` + strings.Repeat("y", 2*usageTailSize) +
			`"}],"usage":{"input_tokens":9,"output_tokens":2},"metadata":{"usage":"x"}}}` + "\n\n", []int{4096}, `{"input_tokens":9,"output_tokens":2}`},
		{"an event without usage after the last with it", last + `data: {"choices":[],"prompt_filter_results":[{"usage":1}]}` + "\n\n", []int{0},
			`{"prompt_tokens":30,"completion_tokens":7}`},
		{"escaped quotes and backslashes after it", `data: {"usage":{"prompt_tokens":4},"delta":"\"usage\":{\"prompt_tokens\":1} \\"}` + "\n\n", []int{0}, `{"prompt_tokens":4}`},
		{"a key that ends in an escaped quote and usage", `data: {"usage":{"prompt_tokens":4},"x\"usage":{"prompt_tokens":1}}` + "\n\n", []int{0}, `{"prompt_tokens":4}`},
		{"data on two lines, CRLF", "data: {\"choices\":[],\r\ndata: \"usage\":{\"prompt_tokens\":3}}\r\n\r\n", []int{0}, `{"prompt_tokens":3}`},
		{"only text that mentions it", text, []int{1000}, ""},
		{"only null", `data: {"usage":null}` + "\n\n", []int{0}, "null"},
		{"a last event not ended, read from where it stops", `data: {"usage":{"prompt_tokens":4}}` + "\n\n" +
			`data: {"type":"response.completed","response":{"tools":[{"parameters":{"properties":{"usage":{"type":"integer"}}`, []int{0}, `{"prompt_tokens":4}`},
		{"a last event without its blank line", `data: {"usage":{"prompt_tokens":4}}` + "\n\n" + `data: {"usage":{"prompt_tokens":5}}` + "\n", []int{0}, `{"prompt_tokens":4}`},
		{"another member's usage", `data: {"type":"response.output_item.done","item":{"usage":{"input_tokens":1}}}` + "\n\n", []int{0}, ""},
		{"response's usage before another member's", `data: {"response":{"usage":{"input_tokens":9}},"item":{"usage":{"input_tokens":1}}}` + "\n\n",
			[]int{0}, `{"input_tokens":9}`},
		{"another member before response", `data: {"type":"response.completed","item":{"id":"i"},"response":{"usage":{"input_tokens":9}}}` + "\n\n",
			[]int{0}, `{"input_tokens":9}`},
		{"another member's usage, a string naming response before it", `data: {"x":"\"response\":","item":{"usage":{"input_tokens":1}}}` + "\n\n",
			[]int{0}, ""},
		// SSE ends a line at CRLF, LF or a bare CR: an event at a blank
		// line made of any two of them.
		{"an event ended at CR CR", `data: {"usage":{"prompt_tokens":4}}` + "\r\r", []int{1}, `{"prompt_tokens":4}`},
		{"an event ended at CRLF CRLF", `data: {"usage":{"prompt_tokens":4}}` + "\r\n\r\n", []int{1}, `{"prompt_tokens":4}`},
		{"an event ended at LF CR", `data: {"usage":{"prompt_tokens":4}}` + "\n\r", []int{0}, `{"prompt_tokens":4}`},
		{"a last event ended at its line's CR only", `data: {"usage":{"prompt_tokens":4}}` + "\r\r" + `data: {"usage":{"prompt_tokens":5}}` + "\r", []int{0}, `{"prompt_tokens":4}`},
		{"a last event ended at its line's CRLF only", `data: {"usage":{"prompt_tokens":4}}` + "\r\n\r\n" + `data: {"usage":{"prompt_tokens":5}}` + "\r\n", []int{1}, `{"prompt_tokens":4}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tail := &usageTail{b: make([]byte, 0, usageTailSize)}
			s := []byte(tc.stream)
			for i := 0; len(s) > 0; i++ {
				n := tc.reads[i%len(tc.reads)]
				if n == 0 || n > len(s) {
					n = len(s)
				}
				tail.add(s[:n])
				s = s[n:]
				if len(tail.b) > usageTailSize {
					t.Fatalf("the tail holds %d bytes; want at most %d", len(tail.b), usageTailSize)
				}
			}
			if got := tail.usage().Raw; got != tc.want {
				t.Errorf("usage %q; want %q", got, tc.want)
			}
		})
	}
}

// TestMalformedAnswerUsageAccounted: a 2xx chat completion refused as
// malformed (no choices; a member named twice) that reports its usage was
// billed by the provider, though failover asked again: its tokens and
// cost are accounted beside the answer's, on a plain chat turn and a
// payment turn alike, and when no answer came at all. Only the answer's
// were: the LLM spend read short of what the provider charged.
func TestMalformedAnswerUsageAccounted(t *testing.T) {
	const usage = `"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}`
	good := `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":1000,"completion_tokens":50,"total_tokens":1050}}`
	for _, tc := range []struct {
		name, bad          string
		tools              PaymentTools
		goodAfter          bool
		prompt, completion float64
	}{
		{"no choices, plain", `{"id":"c0","object":"chat.completion",` + usage + `}`, nil, true, 2000, 250},
		{"no choices, payment turn", `{"id":"c0","object":"chat.completion",` + usage + `}`, noTools{}, true, 2000, 250},
		{"member named twice", `{"id":"c0","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"a","content":"b"},"finish_reason":"stop"}],` + usage + `}`, nil, true, 2000, 250},
		{"no answer at all", `{"id":"c0","object":"chat.completion",` + usage + `}`, nil, false, 2000, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				if n.Add(1) == 1 || !tc.goodAfter {
					_, _ = io.WriteString(w, tc.bad)
					return
				}
				_, _ = io.WriteString(w, good)
			})
			s, ledger, reg := ledgerProxy(t, pricedConfig(t, fp.URL), nil, tc.tools)
			t.Cleanup(ledger.Close)
			// The answer is written before the turn is priced: its
			// tokens are read once the handler has returned.
			srv, handled := waitedServer(t, s.Handler())
			resp := post(t, srv.URL, "/v1/chat/completions", `{"model":"gpt-test","user":"o-user-1","messages":[{"role":"user","content":"hi"}]}`,
				map[string]string{"Content-Type": "application/json", "X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			handled.Wait()
			if tc.goodAfter != (resp.StatusCode == http.StatusOK) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			for kind, want := range map[string]float64{"prompt": tc.prompt, "completion": tc.completion} {
				if got := tokensCounted(t, reg, kind); got != want {
					t.Errorf("%s tokens: %v; want %v", kind, got, want)
				}
			}
		})
	}
}
