package proxy

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/config"
)

// TestPaymentTurnCutRecorded: a chat stream its provider cuts mid-answer,
// before any usage came, was billed by the provider: a plain turn records
// the call under its provider and model with no token (the stats' per-model
// figures, the metrics), and so must a payment turn (a known user, payment
// tools offered), which recorded no row at all. A multi-round payment
// turn's earlier rounds, which completed, keep their usage. A non-stream
// answer cut mid-body is no answer (failed over, else an error), but its
// provider took the request and began the answer, which it bills: it is
// recorded as a cut stream is, with no token, where it recorded no row at
// all, whether the turn then failed or the next provider answered. So is a
// recovery's every attempt recorded, each cut before its usage came.
func TestPaymentTurnCutRecorded(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
	cut := abruptClose(head + `{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}` + "\n\n")
	order := sseHandler(head+`{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}`+"\n\n",
		head+`{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n",
		`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":40,"total_tokens":1040}}`+"\n\n",
		"data: [DONE]\n\n")
	whole := sseHandler(head+`{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}`+"\n\n",
		head+`{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")
	cutBody := rawAnswer(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n",
		`{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"hel`)
	orderJSON := jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":`+
		`[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}],`+
		`"usage":{"prompt_tokens":1000,"completion_tokens":40,"total_tokens":1040}}`)
	wholeJSON := jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":1000,"completion_tokens":40,"total_tokens":1040}}`)
	const lost, done = "upstream_connection_lost", "data: [DONE]"
	// The call, no token: the provider billed it, its count unknown.
	noToken := []accounting.ModelStats{{Provider: "fake", Model: "vendor/upstream-model", LLMCost: "0.000000"}}
	// 1000 prompt tokens at 2.50 and 40 completion tokens at 10.00 per million.
	firstRound := []accounting.ModelStats{{Provider: "fake", Model: "vendor/upstream-model", PromptTokens: 1000, CompletionTokens: 40, LLMCost: "0.002900"}}
	for _, tc := range []struct {
		name, user string
		stream     bool
		end        string // the stream's end the bot gets
		provider   http.HandlerFunc
		calls      int32 // payment calls run
		want       []accounting.ModelStats
	}{
		{"plain stream cut mid-answer", "", true, lost, cut, 0, noToken},
		{"payment turn stream cut mid-answer", "o-user-1", true, lost, cut, 0, noToken},
		{"payment turn stream cut in its second round", "o-user-1", true, lost, roundByRound(order, cut), 1, firstRound},
		{"plain stream whole without usage", "", true, done, whole, 0, noToken},
		{"payment turn stream whole without usage", "o-user-1", true, done, whole, 0, noToken},
		{"plain answer cut mid-body", "", false, "", cutBody, 0, noToken},
		{"payment turn answer cut mid-body", "o-user-1", false, "", cutBody, 0, noToken},
		// An error answer is no bill, cut or not.
		{"plain error answer cut mid-body", "", false, "", rawAnswer(t, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 400\r\n",
			`{"error":{"message":"overloa`), 0, []accounting.ModelStats{}},
		{"payment turn answer cut mid-body in its second round", "o-user-1", false, "", roundByRound(orderJSON, cutBody), 1, firstRound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.provider)
			tools := &countingTools{}
			s, ledger, _ := ledgerProxy(t, pricedConfig(t, fp.URL), nil, tools)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			resp := post(t, srv.URL, "/v1/chat/completions", chatBody(tc.stream, ""), map[string]string{"X-WeChat-OpenID": tc.user})
			b := readAll(t, resp.Body)
			if tc.stream && (resp.StatusCode != 200 || !strings.Contains(b, tc.end)) {
				t.Fatalf("answer %d %s; want a stream that ends with %s", resp.StatusCode, b, tc.end)
			}
			if !tc.stream && resp.StatusCode < 500 {
				t.Fatalf("answer %d %s; want an upstream error", resp.StatusCode, b)
			}
			handled.Wait() // the turn is accounted after its answer
			if got := ledger.Stats().ByModel; !slices.Equal(got, tc.want) {
				t.Errorf("accounted %+v; want %+v", got, tc.want)
			}
			if got := tools.executed.Load(); got != tc.calls {
				t.Errorf("executed %d payment calls; want %d", got, tc.calls)
			}
		})
	}
	// An answer cut mid-body, then another provider's whole answer: each
	// to its provider, the cut one with no token.
	t.Run("answer cut mid-body, the next provider answering", func(t *testing.T) {
		for _, user := range []string{"", "o-user-1"} {
			answeredCounts(t, false, cutBody, wholeJSON, user, map[string][2]int64{"fake": {}, "other": {1000, 40}})
		}
	})
	// A stream cut before its first token, failed over: recorded as one
	// cut after it is.
	t.Run("stream cut before its first token, the next provider answering", func(t *testing.T) {
		roleOnly := abruptClose(head + `{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}` + "\n\n")
		for _, user := range []string{"", "o-user-1"} {
			answeredCounts(t, true, roleOnly, whole, user, map[string][2]int64{"fake": {}, "other": {}})
		}
	})
	// An answer whose provider falls silent mid-body, past timeouts.idle.
	t.Run("answer silent mid-body", func(t *testing.T) {
		fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"hel`)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // silent until paygate gives up on it
		})
		s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
			c.Providers[0].Timeouts.Idle = config.Duration(200 * time.Millisecond)
		}), nil, nil)
		t.Cleanup(ledger.Close)
		srv, handled := waitedServer(t, s.Handler())
		resp := post(t, srv.URL, "/v1/chat/completions", chatBody(false, ""), nil)
		if b := readAll(t, resp.Body); resp.StatusCode < 500 {
			t.Fatalf("answer %d %s; want an upstream error", resp.StatusCode, b)
		}
		handled.Wait()
		if got := ledger.Stats().ByModel; !slices.Equal(got, noToken) {
			t.Errorf("accounted %+v; want %+v", got, noToken)
		}
	})
	// A recovery's attempts, each cut before its usage came: each to its provider.
	t.Run("recovery cut too", func(t *testing.T) {
		for _, user := range []string{"", "o-user-1"} {
			recoveredStreamCounts(t, cut, cut, user, map[string][2]int64{"fake": {}, "other": {}})
		}
	})
}
