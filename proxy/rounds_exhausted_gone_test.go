package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/config"
)

// goneAtWord is a client connection that drops once word was written:
// the flush that would carry it fails (as net/http's does on a closed
// connection).
type goneAtWord struct {
	h    http.Header
	word string
	body bytes.Buffer
}

func (w *goneAtWord) Header() http.Header         { return w.h }
func (w *goneAtWord) WriteHeader(int)             {}
func (w *goneAtWord) Write(b []byte) (int, error) { return w.body.Write(b) }
func (w *goneAtWord) FlushError() error {
	if strings.Contains(w.body.String(), w.word) {
		return errors.New("write: broken pipe")
	}
	return nil
}

// TestRoundsExhaustedCountedWhenClientLeaves: a streamed turn that spends
// max_rounds counts on paygate_budget_exhausted_total{limit="max_rounds"}
// whether or not its clarification reached the bot, as a non-stream
// turn's does. It was counted only once the clarification was written, so
// the budget's exhaustion went uncounted for every bot that left at that
// moment, and the two paths disagreed.
func TestRoundsExhaustedCountedWhenClientLeaves(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
	stream := head + `{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}` + "\n\n" +
		head + `{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n" + "data: [DONE]\n\n"
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, stream)
	})
	const clarification = "Which plan exactly, please?"
	cfg := testConfig(t, fp.URL, func(c *config.Config) {
		c.Payments.Budget.MaxRounds = 1
		c.Payments.Budget.Clarification = clarification
	})
	s, ledger, _ := ledgerProxy(t, cfg, nil, &countingTools{})
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"buy it"}]}`))
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set("X-WeChat-OpenID", "o-user-1")
	w := &goneAtWord{h: http.Header{}, word: clarification}
	s.Handler().ServeHTTP(w, req)
	ledger.Close()
	if !strings.Contains(w.body.String(), clarification) {
		t.Fatalf("the clarification was not written: %s", w.body.String())
	}
	if got := testutil.ToFloat64(s.metrics.roundsExhausted); got != 1 {
		t.Errorf(`paygate_budget_exhausted_total{limit="max_rounds"} = %v; want 1 (the turn spent its rounds)`, got)
	}
}
