package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/payments"
)

// goneAfterFirstFlush is a client connection that drops after the first
// flush: writes still go to the server's buffer, flushes fail (as
// net/http's do on a closed connection).
type goneAfterFirstFlush struct {
	h       http.Header
	flushes int
	body    bytes.Buffer
}

func (w *goneAfterFirstFlush) Header() http.Header         { return w.h }
func (w *goneAfterFirstFlush) WriteHeader(int)             {}
func (w *goneAfterFirstFlush) Write(b []byte) (int, error) { return w.body.Write(b) }
func (w *goneAfterFirstFlush) FlushError() error {
	w.flushes++
	if w.flushes > 1 {
		return errors.New("write: broken pipe")
	}
	return nil
}

// countingTools counts the payment calls it is asked to run.
type countingTools struct{ executed atomic.Int32 }

func (*countingTools) IsPayment(name string) bool { return name == "create_order" }
func (c *countingTools) Execute(context.Context, payments.Caller, string, string) payments.Outcome {
	c.executed.Add(1)
	return payments.Outcome{Result: []byte(`{"order_no":"X1"}`), MoneyMoving: true, Executed: true}
}
func (*countingTools) Refused(string, string) payments.Outcome {
	return payments.Outcome{Result: []byte(`{"error":"ask the user"}`), Clarify: true}
}

// TestCompletedRoundAccountedWhenClientLeaves: a round the provider
// completed (and billed: its usage was read) is accounted even when the
// client left before paygate's last flush, for a signed-in user's turn as on
// the plain path; a payment call that round held is not run for a client
// that left.
func TestCompletedRoundAccountedWhenClientLeaves(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
	const usage = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}` + "\n\n" +
		"data: [DONE]\n\n"
	text := head + `{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}` + "\n\n" +
		head + `{"index":0,"delta":{"content":" there"},"finish_reason":null}]}` + "\n\n"
	for _, tc := range []struct {
		name, user, stream string
	}{
		{"plain", "", text + head + `{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" + usage},
		{"signed in", "o-user-1", text + head + `{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" + usage},
		{"signed in, payment call held", "o-user-1", text +
			head + `{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}` + "\n\n" +
			head + `{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n" + usage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, tc.stream) // one burst
			})
			cfg := testConfig(t, fp.URL, nil)
			tools := &countingTools{}
			s, ledger, reg := ledgerProxy(t, cfg, nil, tools)
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
				strings.NewReader(`{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			if tc.user != "" {
				req.Header.Set("X-WeChat-OpenID", tc.user)
			}
			w := &goneAfterFirstFlush{h: http.Header{}}
			s.Handler().ServeHTTP(w, req)
			ledger.Close()
			if w.flushes < 2 {
				t.Fatalf("%d flushes; the test needs the last one to fail", w.flushes)
			}
			if got := tokensCounted(t, reg, "prompt"); got != 1000 {
				t.Errorf("prompt tokens accounted %v; want 1000 (the provider completed and billed the round)", got)
			}
			if got := tokensCounted(t, reg, "completion"); got != 200 {
				t.Errorf("completion tokens accounted %v; want 200", got)
			}
			if n := tools.executed.Load(); n != 0 {
				t.Errorf("%d payment calls run for a client that left; want 0", n)
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("%d upstream rounds; want 1 (the turn ends with its client)", n)
			}
		})
	}
}

// goneAtSecondFlush is goneAfterFirstFlush that says when its first flush
// is done, so a provider can hold the rest of its stream until the client
// has the first event (first is closed then).
type goneAtSecondFlush struct {
	goneAfterFirstFlush
	first chan struct{}
}

func (w *goneAtSecondFlush) FlushError() error {
	err := w.goneAfterFirstFlush.FlushError()
	if w.flushes == 1 {
		close(w.first)
	}
	return err
}

// TestForwardedStreamAccountedWhenClientLeaves: a forwarded stream (the
// Responses API, a legacy completion) whose usage event paygate read is
// accounted even when the client left before paygate's last flush: the
// provider finished and billed it, as a chat round whose client left is
// accounted (TestCompletedRoundAccountedWhenClientLeaves). Only a stream
// that ended whole was accounted, so a bot that closed its connection at
// the last event left the spend short.
func TestForwardedStreamAccountedWhenClientLeaves(t *testing.T) {
	tests := []struct {
		name, path, body string
		first, rest      string
		prompt, compl    float64
		cost             string // at 2.5 and 10 per million
	}{
		{"Responses API", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
			"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"usage\":null}}\n\n",
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n" +
				"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":1000,\"output_tokens\":500,\"total_tokens\":1500}}}\n\n",
			1000, 500, "0.007500"},
		{"legacy completion", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`,
			"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[{\"text\":\"hi\",\"index\":0}],\"usage\":null}\n\n",
			"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":7,\"total_tokens\":37}}\n\n" +
				"data: [DONE]\n\n",
			30, 7, "0.000145"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, ledger, reg := leftAtSecondFlush(t, tc.path, tc.body, tc.first, tc.rest, false)
			if !strings.Contains(w.body.String(), "usage\":{") {
				t.Fatalf("paygate did not read the usage event before the client left: %q", w.body.String())
			}
			for kind, want := range map[string]float64{"prompt": tc.prompt, "completion": tc.compl} {
				if got := tokensCounted(t, reg, kind); got != want {
					t.Errorf("%s tokens accounted %v; want %v (the provider finished and billed the stream)", kind, got, want)
				}
			}
			if got := ledger.Stats().LLMCost; got != tc.cost {
				t.Errorf("the stats' LLM spend is %s; want %s, the stream's cost", got, tc.cost)
			}
		})
	}
}

// TestForwardedStreamRecordedWhenClientLeavesBeforeUsage: a forwarded
// stream whose client left after its first event, before any usage came,
// was taken and billed by its provider: it is recorded as one its provider
// cut so is (TestForwardedStreamCutWithoutUsageRecorded), its provider and
// model with no token, as a chat stream whose bot left mid-answer is. It
// was recorded nowhere.
func TestForwardedStreamRecordedWhenClientLeavesBeforeUsage(t *testing.T) {
	_, ledger, _ := leftAtSecondFlush(t, "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
		"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"usage\":null}}\n\n",
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n", true)
	want := accounting.ModelStats{Provider: "fake", Model: "vendor/upstream-model", LLMCost: "0.000000"}
	if got := ledger.Stats().ByModel; len(got) != 1 || got[0] != want {
		t.Errorf("accounted %+v; want %+v: the call, no token counted", got, want)
	}
}

// leftAtSecondFlush posts body to path of a priced proxy whose provider
// streams first, then, once the client has it, rest (then, if silent,
// nothing until paygate gives up on it), to a client that leaves at its
// second flush, and returns the client's writer, the ledger (closed) and
// the registry.
func leftAtSecondFlush(t *testing.T, path, body, first, rest string, silent bool) (*goneAtSecondFlush, *accounting.Ledger, *prometheus.Registry) {
	t.Helper()
	w := &goneAtSecondFlush{goneAfterFirstFlush: goneAfterFirstFlush{h: http.Header{}}, first: make(chan struct{})}
	fp := newFakeProvider(t, func(pw http.ResponseWriter, r *http.Request) {
		pw.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(pw, first)
		pw.(http.Flusher).Flush()
		select {
		case <-w.first:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(pw, rest)
		if silent {
			pw.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	})
	s, ledger, reg := ledgerProxy(t, pricedConfig(t, fp.URL), nil, nil)
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set("Content-Type", "application/json")
	s.Handler().ServeHTTP(w, req)
	ledger.Close()
	if w.flushes < 2 {
		t.Fatalf("%d flushes; the test needs the second one to fail", w.flushes)
	}
	return w, ledger, reg
}
