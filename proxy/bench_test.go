package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store/embedded"
)

// streamOf renders n content chunks, a finish chunk and [DONE].
func streamOf(n int) []byte { return streamWith(n, "") }

// streamWith is streamOf with tail after each chunk's choices: OpenAI's
// chunks carry `,"usage":null` when the request has include_usage, which
// paygate always asks for.
func streamWith(n int, tail string) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		b.WriteString(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":"tok` + strconv.Itoa(i%10) + ` "},"logprobs":null,"finish_reason":null}]` + tail + "}\n\n")
	}
	b.WriteString(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]` + tail + "}\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkStreamRelayPerEvent measures the per-event cost of relaying a
// stream through the proxy handler (upstream read, checks, client write,
// flush), with the fixed per-request cost spread over 200 events.
// Compare BenchmarkStreamDirectPerEvent for the same stream without paygate.
func BenchmarkStreamRelayPerEvent(b *testing.B) { benchRelay(b, false) }

// BenchmarkStreamRelayUsageNull is BenchmarkStreamRelayPerEvent with
// OpenAI's chunks as they come under include_usage, "usage":null in each.
func BenchmarkStreamRelayUsageNull(b *testing.B) {
	benchRelayOf(b, streamWith(benchEvents, `,"usage":null`), false)
}

// BenchmarkStreamCaptureUsageNull is BenchmarkStreamCapturePerEvent with
// OpenAI's chunks as they come under include_usage.
func BenchmarkStreamCaptureUsageNull(b *testing.B) {
	benchRelayOf(b, streamWith(benchEvents, `,"usage":null`), true)
}

// BenchmarkStreamCapturePerEvent is the same stream for a known user: the
// payment tools are offered and every chunk goes through the tool-call
// capture (the turn loop), although no payment call comes.
func BenchmarkStreamCapturePerEvent(b *testing.B) { benchRelay(b, true) }

// noTools offers payment tools but is never asked to run one.
type noTools struct{}

func (noTools) IsPayment(name string) bool { return name == "create_order" }
func (noTools) Execute(context.Context, payments.Caller, string, string) payments.Outcome {
	panic("no payment call in this benchmark")
}
func (noTools) Refused(string, string) payments.Outcome { panic("no payment call in this benchmark") }

// benchHandler serves a proxy whose one upstream answers every request with
// body; with capture, payment tools are offered and the user's state is
// read from an embedded store, as for a known user's turn.
func benchHandler(b *testing.B, body []byte, capture bool, with ...func(*Options)) http.Handler {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	b.Cleanup(up.Close)
	return benchHandlerFor(b, up.URL, capture, with...)
}

// benchHandlerFor is benchHandler for an upstream of the caller's; each of
// with changes the proxy's options.
func benchHandlerFor(b *testing.B, upstream string, capture bool, with ...func(*Options)) http.Handler {
	b.Helper()
	cfg := testConfig(b, upstream, nil)
	log := logging.New(io.Discard, slog.LevelInfo, nil)
	reg := prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Config: cfg, Upstream: router, Logger: log, Registry: reg, HashKey: []byte("k")}
	if capture {
		opts.Tools = noTools{}
		db, err := embedded.Open(filepath.Join(b.TempDir(), "s.db"), embedded.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		opts.State = db
	}
	for _, f := range with {
		f(&opts)
	}
	s, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return s.Handler()
}

func benchRelay(b *testing.B, capture bool) { benchRelayOf(b, streamOf(benchEvents), capture) }

func benchRelayOf(b *testing.B, stream []byte, capture bool) {
	events := benchEvents
	h := benchHandler(b, stream, capture)
	reqBody := `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(reqBody))
		req.Header.Set("Authorization", "Bearer "+testClientKey)
		if capture {
			req.Header.Set("X-WeChat-OpenID", "oBench")
		}
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(events+2)), "ns/event")
}

// BenchmarkForwardedStreamPerEvent is the per-event cost of a forwarded
// Responses API stream (200 text deltas and response.completed with its
// usage) piped through the passthrough handler with its usage accounted:
// the error mask and the usage tail read each event, and the tail's usage
// is found once at the stream's end.
func BenchmarkForwardedStreamPerEvent(b *testing.B) {
	var stream bytes.Buffer
	for i := range benchEvents {
		stream.WriteString(`event: response.output_text.delta` + "\n" + `data: {"type":"response.output_text.delta","sequence_number":` + strconv.Itoa(i+1) +
			`,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"tok` + strconv.Itoa(i%10) + ` ","logprobs":[]}` + "\n\n")
	}
	stream.WriteString(`event: response.completed` + "\n" + `data: {"type":"response.completed","sequence_number":201,"response":{"id":"resp_1","object":"response","status":"completed",` +
		`"output":[],"tools":[],"usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":0},"output_tokens":200,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":230},"metadata":{}}}` + "\n\n")
	var ledger *accounting.Ledger
	h := benchHandler(b, stream.Bytes(), false, func(o *Options) {
		var err error
		if ledger, err = accounting.New(o.Config, nil, o.Registry, o.Logger); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(ledger.Close)
		o.Ledger = ledger
	})
	reqBody := `{"model":"gpt-test","stream":true,"input":"hi"}`
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/responses", strings.NewReader(reqBody))
		req.Header.Set("Authorization", "Bearer "+testClientKey)
		req.Header.Set("Content-Type", "application/json")
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(benchEvents+1)), "ns/event")
	if m := ledger.Stats().ByModel; len(m) != 1 || m[0].CompletionTokens != 200*int64(b.N) {
		b.Fatalf("accounted %+v; want 200 completion tokens a stream", m)
	}
}

// BenchmarkStreamDirectPerEvent reads the same upstream stream directly, the
// baseline for BenchmarkStreamRelayPerEvent.
func BenchmarkStreamDirectPerEvent(b *testing.B) {
	events := benchEvents
	body := streamOf(events)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	defer up.Close()
	reqBody := `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.Post(up.URL+"/v1/chat/completions", "application/json", strings.NewReader(reqBody))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(events+2)), "ns/event")
}

// discardWriter is an http.ResponseWriter and Flusher that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// benchEvents is the stream length of the per-event benchmarks.
var benchEvents = 200

// firstWriteWriter records when the handler first writes an event.
type firstWriteWriter struct {
	discardWriter
	first chan struct{}
	done  bool
}

func (f *firstWriteWriter) Write(p []byte) (int, error) {
	if !f.done && bytes.HasPrefix(p, []byte("data: ")) {
		f.done = true
		close(f.first)
	}
	return len(p), nil
}

// BenchmarkTimeToFirstChunkPlain and ...Capture measure, in process, the time
// from a request reaching the handler to its first event being written, for
// a turn without payment calls: plain (no user) and with the payment tools
// offered and the capture watching (a known user, state read from the store).
func BenchmarkTimeToFirstChunkPlain(b *testing.B)   { benchTTFC(b, false) }
func BenchmarkTimeToFirstChunkCapture(b *testing.B) { benchTTFC(b, true) }

func benchTTFC(b *testing.B, capture bool) {
	h := benchHandler(b, streamOf(5), capture)
	reqBody := `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	var total time.Duration
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(reqBody))
		req.Header.Set("Authorization", "Bearer "+testClientKey)
		if capture {
			req.Header.Set("X-WeChat-OpenID", "oBench")
		}
		w := &firstWriteWriter{discardWriter: discardWriter{h: http.Header{}}, first: make(chan struct{})}
		start := time.Now()
		done := make(chan struct{})
		go func() { h.ServeHTTP(w, req); close(done) }()
		<-w.first
		total += time.Since(start)
		<-done
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns-to-first-chunk")
}

// BenchmarkNonStreamTurn is one non-stream request of a known user through
// the handler over a real upstream connection: the request the load
// benchmark (cmd/paygate-bench) sends, so its allocations and CPU can be
// profiled in process.
func BenchmarkNonStreamTurn(b *testing.B) {
	benchNonStream(b, []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"m","system_fingerprint":"fp_bench",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"We offer a basic plan at 9.90 CNY a month and a premium plan at 49.99 CNY a month, with priority support and more.","refusal":null},"logprobs":null,"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":42,"completion_tokens":27,"total_tokens":69}}`))
}

// benchNonStreamBody is the bot's request of BenchmarkNonStreamTurn.
const benchNonStreamBody = `{"model":"gpt-test","messages":[` +
	`{"role":"system","content":"You are the shop assistant of a WeChat mini-program. Answer briefly."},` +
	`{"role":"user","content":"What plans do you offer, and how much is the premium one?"}],` +
	`"temperature":0.7,"max_tokens":256,"user":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}`

// benchNonStream is BenchmarkNonStreamTurn with the upstream's answer.
func benchNonStream(b *testing.B, answer []byte) { benchNonStreamOf(b, benchNonStreamBody, answer) }

// benchNonStreamOf is benchNonStream with the bot's request body too.
func benchNonStreamOf(b *testing.B, reqBody string, answer []byte) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	b.Cleanup(up.Close)
	h := benchHandlerFor(b, up.URL, true)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(reqBody))
		req.Header.Set("Authorization", "Bearer "+testClientKey)
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkNonStreamTurnOpenIDInText is BenchmarkNonStreamTurn from a bot
// that also names the user by the OpenID in its system prompt and as each
// message's name: the OpenID is taken out of the text (interceptors'
// usertext.go), the cost a request that holds it pays.
func BenchmarkNonStreamTurnOpenIDInText(b *testing.B) {
	const o = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
	benchNonStreamOf(b, `{"model":"gpt-test","messages":[`+
		`{"role":"system","content":"You are the shop assistant of a WeChat mini-program, serving user `+o+`. Answer briefly."},`+
		`{"role":"user","name":"`+o+`","content":"What plans do you offer, and how much is the premium one?"}],`+
		`"temperature":0.7,"max_tokens":256,"user":"`+o+`"}`,
		[]byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"m","system_fingerprint":"fp_bench",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"We offer a basic plan at 9.90 CNY a month.","refusal":null},"logprobs":null,"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":42,"completion_tokens":27,"total_tokens":69}}`))
}
