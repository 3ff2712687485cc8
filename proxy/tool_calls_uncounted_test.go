package proxy

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
)

// toolCallsServed is paygate_tool_calls_total{tool, outcome} as s's
// /metrics serves it (0 when the series is not there), and whether the
// metric's HELP there names the outcome (the on-call reads what it means
// there; a family without a series yet is not served).
func toolCallsServed(t *testing.T, s *Server, tool, outcome string) (v float64, named bool) {
	t.Helper()
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	prefix := `paygate_tool_calls_total{outcome="` + outcome + `",tool="` + tool + `"} `
	for line := range strings.SplitSeq(w.Body.String(), "\n") {
		if help, ok := strings.CutPrefix(line, "# HELP paygate_tool_calls_total "); ok {
			named = slices.Contains(strings.FieldsFunc(help, func(r rune) bool { return (r < 'a' || r > 'z') && r != '_' }), outcome)
		}
		if s, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("/metrics line %q: %v", line, err)
			}
			v = f
		}
	}
	return v, named
}

// heldTools runs the recording tools, each call once started waiting for
// release: a payment call still at WeChat Pay.
type heldTools struct {
	recordingTools
	started chan struct{} // one send per call started
	release chan struct{}
}

func (h *heldTools) Execute(ctx context.Context, c payments.Caller, name, args string) payments.Outcome {
	h.started <- struct{}{}
	<-h.release
	return h.recordingTools.Execute(ctx, c, name, args)
}

// TestPaymentCallCutByTheDrainDeadlineCounted: a payment call still
// running when the drain's deadline ends its turn (the turn answers
// server_shutdown and the call runs on, executeUnlessCut) is counted on
// paygate_tool_calls_total as cut_by_shutdown: it was counted nowhere, so
// the calls the model made read short by it, and of all calls it is the
// one whose outcome nobody was told. The round's next call, never started,
// is not_executed: it was client_gone, "the bot had left", which it had
// not.
func TestPaymentCallCutByTheDrainDeadlineCounted(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			tools := &heldTools{started: make(chan struct{}, 1), release: make(chan struct{})}
			defer close(tools.release)
			const calls = `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` +
				`{"index":1,"id":"call_q","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]`
			fp := newFakeProvider(t, roundByRound(callsRound(stream, calls), textRound(stream, "Done.")))
			var cut func()
			s, url := servePaygate(t, testConfig(t, fp.URL, nil), Options{Tools: tools, State: &memState{}}, func(h http.Handler) http.Handler {
				h, cut = shutdownCut(h)
				return h
			})
			req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(chatBody(stream, "")))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-WeChat-OpenID", "o-user-1")
			a := <-cutOnceStarted(req, tools.started, cut)
			if a.err != nil {
				t.Fatalf("the turn cut at its payment call: %v", a.err)
			}
			code := gjson.Get(a.body, "error.code").Str
			if stream {
				sc := bufio.NewScanner(strings.NewReader(a.body))
				for sc.Scan() {
					if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
						code = gjson.Get(d, "error.code").Str
					}
				}
			}
			if code != "server_shutdown" || !stream && a.code != http.StatusServiceUnavailable {
				t.Fatalf("the turn cut at its payment call answered %d %s; want it ended with server_shutdown", a.code, a.body)
			}
			for _, c := range []struct {
				tool, outcome string
				want          float64
			}{
				{"create_order", "cut_by_shutdown", 1}, {"create_order", "executed", 0}, {"create_order", "client_gone", 0},
				{"query_order", "not_executed", 1}, {"query_order", "executed", 0}, {"query_order", "client_gone", 0},
			} {
				got, named := toolCallsServed(t, s, c.tool, c.outcome)
				if got != c.want {
					t.Errorf(`/metrics paygate_tool_calls_total{tool=%q,outcome=%q} = %v; want %v`, c.tool, c.outcome, got, c.want)
				}
				if c.want > 0 && !named {
					t.Errorf("the HELP of paygate_tool_calls_total does not name outcome %s", c.outcome)
				}
			}
		})
	}
}
