package failover

import (
	"net/http"
	"testing"
)

// endlessStream is an upstream body that repeats one SSE event for ever.
type endlessStream struct {
	ev  []byte
	off int
}

func (s *endlessStream) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], s.ev[s.off:])
		n += c
		s.off = (s.off + c) % len(s.ev)
	}
	return n, nil
}

func (s *endlessStream) Close() error { return nil }

// memTransport answers every request with an endless healthy stream,
// without a network, so the benchmark measures failover's own work.
type memTransport struct{ ev []byte }

func (m memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {"text/event-stream"}},
		Body:       &endlessStream{ev: m.ev},
		Request:    req,
	}, nil
}

// typicalChunk is an OpenAI-shaped content delta of realistic size.
const typicalChunk = `{"id":"chatcmpl-AbCdEf0123456789","object":"chat.completion.chunk","created":1736000000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_0123456789","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]}`

func openEndless(tb testing.TB) *Response {
	tb.Helper()
	cfg := testConfig(map[string]string{"a": "http://mem"}, []string{"a"})
	r, err := New(cfg, Options{Transport: memTransport{ev: []byte("data: " + typicalChunk + "\n\n")}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	resp, err := r.Open(tb.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(resp.Close)
	return resp
}

// BenchmarkNext measures the per-event cost of Response.Next on a healthy
// stream: SSE parsing, the JSON validity check, the error and finish
// pre-checks and the idle deadline.
func BenchmarkNext(b *testing.B) {
	resp := openEndless(b)
	b.SetBytes(int64(len(typicalChunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := resp.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNextAllocationFree holds the hot path to zero allocations per event.
func TestNextAllocationFree(t *testing.T) {
	resp := openEndless(t)
	for range 10 { // warm up: held events, buffers
		if _, err := resp.Next(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := resp.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Next allocates %v times per event; want 0", allocs)
	}
}

// BenchmarkRound measures a whole healthy round over loopback HTTP: Open
// (patch, request, first-token wait) plus reading a five-event stream.
func BenchmarkRound(b *testing.B) {
	f := newFakeProvider(b, nil, healthy("a"))
	cfg := testConfig(map[string]string{"a": f.url}, []string{"a"})
	r, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	req := &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true, ContentType: "application/json"}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := r.Open(b.Context(), req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Next(); err != nil {
				break
			}
		}
		resp.Close()
	}
}

// BenchmarkAmbiguousMember is the duplicate-member check every non-stream
// answer, on an OpenAI chat completion of the bench's size: one walk by
// position over the answer (jsonscan.Ambiguous).
func BenchmarkAmbiguousMember(b *testing.B) {
	data := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"message":{"role":"assistant","content":"Sure, here is a short answer to your question about the plan and its price.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":120,"completion_tokens":24,"total_tokens":144,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if why := ambiguousMember(data); why != "" {
			b.Fatalf("a plain answer read as ambiguous: %s", why)
		}
	}
}
