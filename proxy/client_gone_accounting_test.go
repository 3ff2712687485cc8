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
