package interceptors

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/paygate/paygate/sse"
)

// Text chunks as OpenAI sends them today, with the usage field paygate's
// include_usage adds to every chunk and an "obfuscation" that differs in
// every chunk.
const (
	benchTextChunk  = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[{"index":0,"delta":{"content":" the monthly plan"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"k3J9"}`
	benchTextChunk2 = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[{"index":0,"delta":{"content":" costs"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Qz7LmW2pX"}`
)

// An argument delta of a payment call, and one of a client call that must be
// renumbered (upstream index 1, client index 0).
const (
	benchPaymentDelta = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ium-monthly\", \"qu"}}]},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x"}`
	benchClientDelta  = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"ty\": \"Shanghai"}}]},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x"}`
	benchPaymentStart = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_P4yM3ntZq1","type":"function","function":{"name":"create_order","arguments":""}}]},"logprobs":null,"finish_reason":null}]}`
	benchClientStart  = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_W8kLmQ2xYv","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]}`
)

// A payment call in the legacy function_call shape (functionary's), its
// name and an argument delta; and argument deltas sent as a JSON object,
// not a string, in either shape.
const (
	benchLegacyStart      = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"function_call":{"name":"create_order","arguments":""}},"logprobs":null,"finish_reason":null}]}`
	benchLegacyDelta      = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"function_call":{"arguments":"ium-monthly\", \"qu"}},"logprobs":null,"finish_reason":null}]}`
	benchLegacyObjectArgs = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"function_call":{"arguments":{"sku":"premium-monthly","quantity":2}}},"logprobs":null,"finish_reason":null}]}`
	benchObjectArgsDelta  = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":{"sku":"premium-monthly","quantity":2}}}]},"logprobs":null,"finish_reason":null}]}`
)

// A reasoning delta as OpenRouter streams one (the text and its block
// beside it), and a delta of web search's citations: a later round moves
// the block's index after the earlier rounds' and the citations' offsets
// after their text (ShiftIndexes, ShiftAnnotations).
const (
	benchDetailsDelta     = `{"id":"gen-1752019200-Qx7","provider":"Google","model":"google/gemini-3-pro-preview","object":"chat.completion.chunk","created":1752019200,"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"the plan","reasoning_details":[{"type":"reasoning.text","text":"the plan","format":"google-gemini-v1","index":0}]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`
	benchAnnotationsDelta = `{"id":"gen-1752019200-Qx7","provider":"OpenAI","model":"openai/gpt-4o-search-preview","object":"chat.completion.chunk","created":1752019200,"choices":[{"index":0,"delta":{"annotations":[{"type":"url_citation","url_citation":{"end_index":17,"start_index":5,"title":"Plans","url":"https://example.com/plans"}}]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`
	// An image model's picture: a later round's is numbered after the
	// earlier rounds' (Capture.renumber).
	benchImagesDelta = `{"id":"gen-1752019200-Qx7","provider":"Google","model":"google/gemini-2.5-flash-image","object":"chat.completion.chunk","created":1752019200,"choices":[{"index":0,"delta":{"role":"assistant","content":"","images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="},"index":0}]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`
)

// OpenRouter's text chunk and a client call's argument delta, each with
// the role it repeats in every delta: round 0 removes it once one went out.
const (
	benchRoleText   = `{"id":"gen-1752019200-Qx7","provider":"Anthropic","model":"anthropic/claude-sonnet-4","object":"chat.completion.chunk","created":1752019200,"choices":[{"index":0,"delta":{"role":"assistant","content":" the monthly plan","reasoning":null,"reasoning_details":[]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`
	benchRoleClient = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":1,"function":{"arguments":"ty\": \"Shanghai"}}]},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x"}`
)

// benchCreated is the turn's "created" a later round's chunks get (their
// own is 1752019200).
const benchCreated = 1752019300

// benchRound is the number of events after which a benchmark ends the round
// and starts the next, so EndRound's cost is in the per-event figure.
const benchRound = 200

// repeatReader serves the same SSE event forever.
type repeatReader struct {
	ev  []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.ev[r.off:])
		n += c
		r.off = (r.off + c) % len(r.ev)
	}
	return n, nil
}

func sseEvent(data string) []byte { return []byte("data: " + data + "\n\n") }

// BenchmarkPassThrough is the baseline: read an SSE event, write it to the
// client, nothing else (what the proxy does for a turn without payment tools).
func BenchmarkPassThrough(b *testing.B) {
	r := sse.NewReader(&repeatReader{ev: append(sseEvent(benchTextChunk), sseEvent(benchTextChunk2)...)})
	defer r.Release()
	w := sse.NewWriter(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		ev, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Data(ev.Data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCaptureText is the same with the capture in between, text chunks
// of round 0 (as returned unchanged), rounds of benchRound events.
func BenchmarkCaptureText(b *testing.B) { benchCaptureStream(b, 0) }

// BenchmarkCaptureTextLaterRound: text chunks after round 0, whose id is
// rewritten to the turn's.
func BenchmarkCaptureTextLaterRound(b *testing.B) { benchCaptureStream(b, 1) }

// BenchmarkCaptureToolRound: a tool round, interleaved payment and client
// argument deltas (the client's renumbered), per event.
func BenchmarkCaptureToolRound(b *testing.B) {
	ev := append(sseEvent(benchPaymentDelta), sseEvent(benchClientDelta)...)
	r := sse.NewReader(&repeatReader{ev: ev})
	defer r.Release()
	w := sse.NewWriter(io.Discard)
	c := NewCapture(isPaymentName)
	start := func() {
		c.StartRound(0, "", 0)
		for _, s := range []string{benchPaymentStart, benchClientStart} {
			if _, err := c.Process([]byte(s)); err != nil {
				b.Fatal(err)
			}
		}
	}
	start()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		ev, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		out, err := c.Process(ev.Data)
		if err != nil {
			b.Fatal(err)
		}
		if out != nil {
			if err := w.Data(out); err != nil {
				b.Fatal(err)
			}
		}
		if n++; n == benchRound {
			c.EndRound()
			start()
			n = 0
		}
	}
}

func benchCaptureStream(b *testing.B, round int) {
	r := sse.NewReader(&repeatReader{ev: append(sseEvent(benchTextChunk), sseEvent(benchTextChunk2)...)})
	defer r.Release()
	w := sse.NewWriter(io.Discard)
	c := NewCapture(isPaymentName)
	c.StartRound(round, "chatcmpl-paygate-turn", benchCreated)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		ev, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		out, err := c.Process(ev.Data)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Data(out); err != nil {
			b.Fatal(err)
		}
		if n++; n == benchRound {
			c.EndRound()
			c.StartRound(round, "chatcmpl-paygate-turn", benchCreated)
			n = 0
		}
	}
}

// BenchmarkProcessText is Process alone on text chunks: 0 allocs/op.
func BenchmarkProcessText(b *testing.B) {
	benchProcess(b, benchTextChunk, benchTextChunk2)
}

// BenchmarkProcessTextRepeatedRole is Process alone on round 0's text
// chunks that repeat the role (OpenRouter, Gemini, GLM), removed from each.
func BenchmarkProcessTextRepeatedRole(b *testing.B) {
	benchProcess(b, benchRoleText, "", benchRoleText)
}

// BenchmarkProcessPaymentDelta is Process alone on a payment argument delta
// (held back, nothing returned).
func BenchmarkProcessPaymentDelta(b *testing.B) {
	benchProcess(b, benchPaymentDelta, "", benchPaymentStart)
}

// BenchmarkProcessClientDelta is Process alone on a client argument delta
// that is renumbered on its way out.
func BenchmarkProcessClientDelta(b *testing.B) {
	benchProcess(b, benchClientDelta, "", benchPaymentStart, benchClientStart)
}

// benchProcess runs Process on chunk, alternating with chunk2 when given.
func benchProcess(b *testing.B, chunk, chunk2 string, prelude ...string) {
	c := NewCapture(isPaymentName)
	data := [2][]byte{[]byte(chunk), []byte(chunk)}
	if chunk2 != "" {
		data[1] = []byte(chunk2)
	}
	warm := func() {
		c.StartRound(0, "", 0)
		for _, p := range append(prelude, benchTextChunk) {
			if _, err := c.Process([]byte(p)); err != nil {
				b.Fatal(err)
			}
		}
	}
	warm()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Process(data[n&1]); err != nil {
			b.Fatal(err)
		}
		if n++; n == 4096 { // bound the accumulated text; StartRound allocates nothing
			warm()
			n = 0
		}
	}
}

// TestProcessAllocs pins the zero-allocation claims of the hot path.
func TestProcessAllocs(t *testing.T) {
	tests := []struct {
		name    string
		round   int
		chunk   string
		prelude []string
		// earlier is a round before tc.round's: its blocks and text are
		// what the later round's are moved after.
		earlier []string
	}{
		{"text chunk, round 0", 0, benchTextChunk2, nil, nil},
		{"text chunk, later round", 1, benchTextChunk2, nil, nil},
		{"payment argument delta", 0, benchPaymentDelta, []string{benchPaymentStart}, nil},
		{"client argument delta renumbered", 0, benchClientDelta, []string{benchPaymentStart, benchClientStart}, nil},
		{"reasoning_details delta, later round", 1, benchDetailsDelta, nil, []string{benchDetailsDelta, benchTextChunk}},
		{"annotations delta, later round", 1, benchAnnotationsDelta, nil, []string{benchDetailsDelta, benchTextChunk}},
		{"images delta, later round", 1, benchImagesDelta, nil, []string{benchImagesDelta, benchTextChunk}},
		{"text chunk repeating the role, round 0", 0, benchRoleText, []string{benchRoleText}, nil},
		{"client argument delta repeating the role, round 0", 0, benchRoleClient, []string{benchRoleText, benchPaymentStart, benchClientStart}, nil},
		{"legacy payment argument delta", 0, benchLegacyDelta, []string{benchLegacyStart}, nil},
		{"legacy payment arguments as an object", 0, benchLegacyObjectArgs, []string{benchLegacyStart}, nil},
		{"payment arguments as an object", 0, benchObjectArgsDelta, []string{benchPaymentStart}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			for _, p := range tc.earlier {
				if _, err := c.Process([]byte(p)); err != nil {
					t.Fatal(err)
				}
			}
			c.StartRound(tc.round, "chatcmpl-paygate-turn", benchCreated)
			for _, p := range append(tc.prelude, benchTextChunk) {
				if _, err := c.Process([]byte(p)); err != nil {
					t.Fatal(err)
				}
			}
			data := []byte(tc.chunk)
			// Warm the buffers, then measure.
			for range 64 {
				c.Process(data)
			}
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := c.Process(data); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("Process allocates %.1f times per chunk; want 0", allocs)
			}
		})
	}
}

// The load run's request body (cmd/paygate-bench) and the fake upstream's
// non-stream answer, for the per-request JSON work.
var (
	benchRequest = []byte(`{"model":"bench","messages":[` +
		`{"role":"system","content":"You are the shop assistant of a WeChat mini-program. Answer briefly."},` +
		`{"role":"user","content":"What plans do you offer, and how much is the premium one?"}],` +
		`"temperature":0.7,"max_tokens":256,"user":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}`)
	benchAnswer = []byte(`{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"We offer a Premium tier at 49.99 CNY per month: priority answers and longer conversations. Would you like it?","refusal":null,"role":"assistant"}}],"created":1767225600,"id":"chatcmpl-bench9f3c2a","model":"bench","object":"chat.completion","system_fingerprint":"fp_bench01","usage":{"completion_tokens":22,"prompt_tokens":42,"total_tokens":64}}`)
)

// BenchmarkRequestPipeline is the request side of a known user's turn
// before failover: ReadChat, RewriteChat (the user hashed) and the payment
// tools appended.
func BenchmarkRequestPipeline(b *testing.B) {
	tools := PaymentTools(testSpec)
	priv := NewPrivacy("hash", []byte("k"))
	b.ReportAllocs()
	for b.Loop() {
		c, err := ReadChat(benchRequest)
		if err != nil {
			b.Fatal(err)
		}
		out, err := RewriteChat(benchRequest, c, Upstream{Client: "bot", EndUser: c.User, Privacy: priv, ForceUsage: true})
		if err != nil {
			b.Fatal(err)
		}
		if c.HasTools {
			b.Fatal("the bench body has no tools")
		}
		if _, err := AppendTools(out, tools); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRequestIdentifiers is the load run's body as current SDKs send it:
// the end user named in safety_identifier, prompt_cache_key and metadata
// besides the deprecated user (each rewritten: identity.go).
var benchRequestIdentifiers = []byte(`{"model":"bench","messages":[` +
	`{"role":"system","content":"You are the shop assistant of a WeChat mini-program. Answer briefly."},` +
	`{"role":"user","content":"What plans do you offer, and how much is the premium one?"}],` +
	`"temperature":0.7,"max_tokens":256,"user":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",` +
	`"safety_identifier":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o","prompt_cache_key":"shop-assistant-v3",` +
	`"metadata":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o","channel":"mini-program"}}`)

// BenchmarkRequestPipelineIdentifiers is BenchmarkRequestPipeline for
// benchRequestIdentifiers: what the identifiers beside user cost.
func BenchmarkRequestPipelineIdentifiers(b *testing.B) {
	tools := PaymentTools(testSpec)
	priv := NewPrivacy("hash", []byte("k"))
	b.ReportAllocs()
	for b.Loop() {
		c, err := ReadChat(benchRequestIdentifiers)
		if err != nil {
			b.Fatal(err)
		}
		out, err := RewriteChat(benchRequestIdentifiers, c, Upstream{Client: "bot", EndUser: c.User, Privacy: priv, ForceUsage: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := AppendTools(out, tools); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadChat is ReadChat alone on the load run's body, without and
// with drop_fields to watch for repeats.
func BenchmarkReadChat(b *testing.B) {
	for _, bc := range []struct {
		name  string
		body  []byte
		watch []string
	}{
		{"plain", benchRequest, nil},
		{"drop_fields", benchRequest, []string{"parallel_tool_calls", "logit_bias"}},
		{"tools", benchRequestTools, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if c, err := ReadChat(bc.body, bc.watch...); err != nil || c.Model != "bench" {
					b.Fatal(c, err)
				}
			}
		})
	}
}

// benchRequestTools is benchRequest with eight tools of the bot's own
// before its messages: the schemas a bot with tools sends on every request.
var benchRequestTools = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"model":"bench","tools":[`)
	for i := range 8 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"function","function":{"name":"get_weather_%d","description":"Get the current weather for a city, in the units the user prefers.",`+
			`"parameters":{"type":"object","properties":{"city":{"type":"string","description":"The city"},"units":{"type":"string","enum":["metric","imperial"]}},"required":["city"]}}}`, i)
	}
	b.WriteString(`],`)
	b.Write(benchRequest[len(`{"model":"bench",`):])
	return b.Bytes()
}()

// BenchmarkReadAnswer reads a non-stream chat.completion as the turn does.
func BenchmarkReadAnswer(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchAnswer)))
	for b.Loop() {
		if a := ReadAnswer(benchAnswer); a.Usage.TotalTokens != 64 {
			b.Fatal("usage not read")
		}
	}
}
