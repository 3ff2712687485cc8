package proxy

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestLongStreamIsNotHeldForRecovery: a plain stream keeps what its client
// was sent (for a recovery to continue from) only up to maxSentLog bytes:
// an upstream that streams on and on had every byte it sent held for the
// stream's whole life, hundreds of MiB a minute. Past the bound the answer
// still reaches the client whole; a cut after it is not recovered (no
// other provider is asked) and the stream ends with the cut's error event,
// whose message says why.
func TestLongStreamIsNotHeldForRecovery(t *testing.T) {
	defer func(n int) { maxSentLog = n }(maxSentLog)
	maxSentLog = 64 << 10
	const c = `data: {"id":"m1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":`
	piece := strings.Repeat("x", 1<<10)
	const pieces = 256 // four times the bound
	first := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		bw := bufio.NewWriter(w)
		fmt.Fprint(bw, c+`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n")
		for range pieces {
			fmt.Fprint(bw, c+`[{"index":0,"delta":{"content":"`+piece+`"},"finish_reason":null}]}`+"\n\n")
		}
		_ = bw.Flush()
		// The connection closes here, without a finish_reason: a cut.
	})
	other := newFakeProvider(t, sseHandler(
		c+`[{"index":0,"delta":{"content":"more"},"finish_reason":null}]}`+"\n\n",
		c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
		"data: [DONE]\n\n"))
	url, logs := newTestProxy(t, testConfig(t, first.URL, withSecondProvider(other.URL)))
	body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, nil).Body)
	if n := strings.Count(body, piece); n != pieces {
		t.Errorf("the client received %d of the %d pieces sent", n, pieces)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other provider was asked %d times to continue an answer paygate no longer holds", n)
	}
	var e gjson.Result
	for _, line := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && gjson.Get(d, "error").Exists() {
			e = gjson.Get(d, "error")
		}
	}
	if e.Get("code").String() != "upstream_connection_lost" || !strings.Contains(e.Get("message").String(), "too long") {
		t.Errorf("the stream ended with %s; want the cut's upstream_connection_lost, saying the answer is too long to continue\n%s", e.Raw, logs.String())
	}
	if strings.HasSuffix(strings.TrimSpace(body), "[DONE]") {
		t.Error("a cut stream ended with [DONE]")
	}
}

// TestLongPaymentTurnRoundIsCut: a payment turn keeps each round's text
// (the assistant message a payment call goes back with, the exchange's
// record), so an upstream that streams on and on had all of it held: a
// round whose text passes maxRoundText ends the stream with an
// upstream_response_too_large error event, as a non-stream answer over
// failover's bound is refused, never a [DONE], and the provider's
// connection is let go.
func TestLongPaymentTurnRoundIsCut(t *testing.T) {
	defer func(n int) { maxRoundText = n }(maxRoundText)
	maxRoundText = 64 << 10
	const c = `data: {"id":"m1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":`
	piece := strings.Repeat("x", 1<<10)
	for _, tc := range []struct{ name, start, delta string }{
		{"content", `{"role":"assistant","content":""}`, `{"content":"` + piece + `"}`},
		{"reasoning", `{"role":"assistant","content":""}`, `{"reasoning_content":"` + piece + `"}`},
		{"a client call's arguments",
			`{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"lookup","arguments":""}}]}`,
			`{"tool_calls":[{"index":0,"function":{"arguments":"` + piece + `"}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				bw := bufio.NewWriter(w)
				fmt.Fprint(bw, c+`[{"index":0,"delta":`+tc.start+`,"finish_reason":null}]}`+"\n\n")
				for range 256 { // four times the bound
					if _, err := fmt.Fprint(bw, c+`[{"index":0,"delta":`+tc.delta+`,"finish_reason":null}]}`+"\n\n"); err != nil {
						return // paygate let go of the connection
					}
				}
				fmt.Fprint(bw, c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n"+"data: [DONE]\n\n")
				_ = bw.Flush()
			})
			url, hdr := afterFinishURL(t, testConfig(t, first.URL, nil), true, queryTools{})
			body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr).Body)
			if n := strings.Count(body, piece); n > 64 {
				t.Errorf("the client received %d KiB of the round's text; want it cut at the bound (64 KiB)", n)
			}
			if code := lastErrorCode(body); code != "upstream_response_too_large" {
				t.Errorf("the stream ended with error code %q; want upstream_response_too_large", code)
			}
			if strings.Contains(body, "[DONE]") {
				t.Error("a cut stream ended with [DONE]")
			}
		})
	}
}

// TestManyCallsPaymentTurnRoundIsCut: a payment turn finds each tool-call
// delta's call among the round's calls so far, so a round of endless
// calls (each delta a new index, no arguments to count) cost time in the
// square of their number: 20,000 took most of a second, 200,000 over a
// minute of a core. A round with more than maxRoundCalls calls ends the
// stream with an upstream_response_too_large error event.
func TestManyCallsPaymentTurnRoundIsCut(t *testing.T) {
	const c = `data: {"id":"m1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":`
	first := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		bw := bufio.NewWriter(w)
		fmt.Fprint(bw, c+`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n")
		for i := range 2 * maxRoundCalls {
			if _, err := fmt.Fprintf(bw, c+`[{"index":0,"delta":{"tool_calls":[{"index":%d,"id":"call_%d","type":"function","function":{"name":"lookup","arguments":"{}"}}]},"finish_reason":null}]}`+"\n\n", i, i); err != nil {
				return // paygate let go of the connection
			}
		}
		fmt.Fprint(bw, c+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n"+"data: [DONE]\n\n")
		_ = bw.Flush()
	})
	url, hdr := afterFinishURL(t, testConfig(t, first.URL, nil), true, queryTools{})
	body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr).Body)
	if n := strings.Count(body, `"id":"call_`); n > maxRoundCalls {
		t.Errorf("the client received %d calls; want the round cut at %d", n, maxRoundCalls)
	}
	if code := lastErrorCode(body); code != "upstream_response_too_large" {
		t.Errorf("the stream ended with error code %q; want upstream_response_too_large", code)
	}
	if strings.Contains(body, "[DONE]") {
		t.Error("a cut stream ended with [DONE]")
	}
}

// TestManyCallsStreamIsNotRecovered: a recovery of a plain stream reads
// the tool calls its client was sent, finding each delta's call among
// those so far, so a stream of endless calls cut within its 32 MiB log
// (each delta a new index, a few hundred thousand calls) cost time in the
// square of their number before any other provider was asked, and that
// provider would then have been asked to match them all. A stream that
// sent its client more than maxRoundCalls calls is not recovered: it ends
// with the cut's error event, whose message says why.
func TestManyCallsStreamIsNotRecovered(t *testing.T) {
	const c = `data: {"id":"m1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":`
	first := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		bw := bufio.NewWriter(w)
		fmt.Fprint(bw, c+`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n")
		for i := range 2 * maxRoundCalls {
			fmt.Fprintf(bw, c+`[{"index":0,"delta":{"tool_calls":[{"index":%d,"id":"call_%d","type":"function","function":{"name":"lookup","arguments":"{}"}}]},"finish_reason":null}]}`+"\n\n", i, i)
		}
		_ = bw.Flush()
		// The connection closes here, without a finish_reason: a cut.
	})
	other := newFakeProvider(t, sseHandler(
		c+`[{"index":0,"delta":{"content":"more"},"finish_reason":null}]}`+"\n\n",
		c+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
		"data: [DONE]\n\n"))
	url, logs := newTestProxy(t, testConfig(t, first.URL, withSecondProvider(other.URL)))
	body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, nil).Body)
	if n := strings.Count(body, `"id":"call_`); n != 2*maxRoundCalls {
		t.Errorf("the client received %d of the %d calls sent", n, 2*maxRoundCalls)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other provider was asked %d times to continue an answer of %d calls", n, 2*maxRoundCalls)
	}
	var e gjson.Result
	for _, line := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && gjson.Get(d, "error").Exists() {
			e = gjson.Get(d, "error")
		}
	}
	if e.Get("code").String() != "upstream_connection_lost" || !strings.Contains(e.Get("message").String(), "too many tool calls") {
		t.Errorf("the stream ended with %s; want the cut's upstream_connection_lost, saying there are too many tool calls to continue\n%s", e.Raw, logs.String())
	}
}
