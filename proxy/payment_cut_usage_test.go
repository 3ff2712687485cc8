package proxy

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
	// An answer whose provider falls silent after its 2xx head, until a
	// timeout ends the attempt: mid-body past timeouts.idle or total, a
	// stream before its first token past first_token, total or the
	// round's time. The provider took the request and bills what it
	// generated: the call with no token, or with the usage it sent.
	// Without a head (first_byte, or a non-stream answer's total) nothing
	// says the provider took it, as with a refused connection: no call.
	const partial = `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"hel`
	roleOnly := head + `{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}` + "\n\n"
	withUsage := head + `{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"usage":{"prompt_tokens":1000,"completion_tokens":0,"total_tokens":1000}}` + "\n\n"
	promptOnly := []accounting.ModelStats{{Provider: "fake", Model: "vendor/upstream-model", PromptTokens: 1000, LLMCost: "0.002500"}}
	ms := func(d int) config.Duration { return config.Duration(time.Duration(d) * time.Millisecond) }
	for _, tc := range []struct {
		name     string
		stream   bool
		provider http.HandlerFunc
		timeouts config.Timeouts // the provider's, over the defaults
		round    config.Duration // failover.max_round_time; 0: the default
		want     []accounting.ModelStats
	}{
		{"answer silent mid-body past idle", false, silentAfterHead("application/json", partial), config.Timeouts{Idle: ms(200)}, 0, noToken},
		{"answer silent mid-body past total", false, silentAfterHead("application/json", partial), config.Timeouts{Total: ms(300)}, 0, noToken},
		{"stream silent before its first token past first_token", true, silentAfterHead("text/event-stream", roleOnly), config.Timeouts{FirstToken: ms(200)}, 0, noToken},
		{"stream silent before its first token past total", true, silentAfterHead("text/event-stream", roleOnly), config.Timeouts{Total: ms(300)}, 0, noToken},
		{"stream silent before its first token past the round's time", true, silentAfterHead("text/event-stream", roleOnly), config.Timeouts{}, ms(300), noToken},
		{"stream silent past first_token after a usage", true, silentAfterHead("text/event-stream", withUsage), config.Timeouts{FirstToken: ms(200)}, 0, promptOnly},
		{"stream without a head past first_byte", true, silentBeforeHead, config.Timeouts{FirstByte: ms(200)}, 0, []accounting.ModelStats{}},
		{"answer without a head past total", false, silentBeforeHead, config.Timeouts{Total: ms(300)}, 0, []accounting.ModelStats{}},
	} {
		for _, user := range []string{"", "o-user-1"} {
			t.Run(tc.name+"/"+cmp.Or(user, "plain"), func(t *testing.T) {
				fp := newFakeProvider(t, tc.provider)
				cfg := pricedConfig(t, fp.URL)
				to := &cfg.Providers[0].Timeouts
				to.Idle, to.FirstByte = cmp.Or(tc.timeouts.Idle, to.Idle), cmp.Or(tc.timeouts.FirstByte, to.FirstByte)
				to.FirstToken, to.Total = cmp.Or(tc.timeouts.FirstToken, to.FirstToken), cmp.Or(tc.timeouts.Total, to.Total)
				cfg.Failover.MaxRoundTime = cmp.Or(tc.round, cfg.Failover.MaxRoundTime)
				s, ledger, _ := ledgerProxy(t, cfg, nil, &countingTools{})
				t.Cleanup(ledger.Close)
				srv, handled := waitedServer(t, s.Handler())
				resp := post(t, srv.URL, "/v1/chat/completions", chatBody(tc.stream, ""), map[string]string{"X-WeChat-OpenID": user})
				b := readAll(t, resp.Body)
				if resp.StatusCode < 500 && !strings.Contains(b, "upstream_") {
					t.Fatalf("answer %d %s; want an upstream error", resp.StatusCode, b)
				}
				handled.Wait()
				if got := ledger.Stats().ByModel; !slices.Equal(got, tc.want) {
					t.Errorf("accounted %+v; want %+v", got, tc.want)
				}
			})
		}
	}
	// A recovery's attempts, each cut before its usage came: each to its provider.
	t.Run("recovery cut too", func(t *testing.T) {
		for _, user := range []string{"", "o-user-1"} {
			recoveredStreamCounts(t, cut, cut, user, map[string][2]int64{"fake": {}, "other": {}})
		}
	})
}

// silentAfterHead answers a 2xx head of contentType and body, then
// nothing until paygate gives up on it.
func silentAfterHead(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = io.WriteString(w, body)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

// silentBeforeHead takes the request and answers nothing, not even a head,
// until paygate gives up on it.
func silentBeforeHead(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// TestCallRecordedWhenTheBotLeavesAfterTheHead: a bot that leaves (its
// request's context ends) after the provider answered a 2xx head, before
// the stream's first token or the answer's whole body, ends the attempt
// (canceled); the provider took the request and bills what it generated,
// so the call is recorded with no token, or with the usage it sent, once,
// as a cut answer is, chat (plain and payment turns, stream or not) and
// forwarded alike. It was recorded nowhere.
func TestCallRecordedWhenTheBotLeavesAfterTheHead(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
	roleOnly := silentAfterHead("text/event-stream", head+`{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}`+"\n\n")
	withUsage := silentAfterHead("text/event-stream", head+`{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"usage":{"prompt_tokens":1000,"completion_tokens":0,"total_tokens":1000}}`+"\n\n")
	partial := silentAfterHead("application/json", `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"hel`)
	noToken := []accounting.ModelStats{{Provider: "fake", Model: "vendor/upstream-model", LLMCost: "0.000000"}}
	promptOnly := []accounting.ModelStats{{Provider: "fake", Model: "vendor/upstream-model", PromptTokens: 1000, LLMCost: "0.002500"}}
	for _, tc := range []struct {
		name, path, body string
		provider         http.HandlerFunc
		want             []accounting.ModelStats
	}{
		{"chat stream before its first token", "/v1/chat/completions", chatBody(true, ""), roleOnly, noToken},
		{"chat stream before its first token, after a usage", "/v1/chat/completions", chatBody(true, ""), withUsage, promptOnly},
		{"chat answer mid-body", "/v1/chat/completions", chatBody(false, ""), partial, noToken},
		{"Responses API stream before its first event", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
			silentAfterHead("text/event-stream", ": keep-alive\n\n"), noToken},
		{"Responses API answer mid-body", "/v1/responses", `{"model":"gpt-test","input":"hi"}`,
			silentAfterHead("application/json", `{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"hel`), noToken},
	} {
		for _, user := range []string{"", "o-user-1"} {
			t.Run(tc.name+"/"+cmp.Or(user, "plain"), func(t *testing.T) {
				if got := goneAtHeadAccounted(t, tc.provider, tc.path, tc.body, user); !slices.Equal(got, tc.want) {
					t.Errorf("accounted %+v; want %+v", got, tc.want)
				}
			})
		}
	}
}

// goneAtHeadAccounted posts body to path of a priced proxy whose provider
// answers with provider, as user (none: ""), and ends the bot's request
// as soon as paygate has the provider's head; it returns the ledger's
// figures by model once the call is accounted.
func goneAtHeadAccounted(t *testing.T, provider http.HandlerFunc, path, body, user string) []accounting.ModelStats {
	t.Helper()
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	fp := newFakeProvider(t, provider)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	s, ledger, _, _ := ledgerProxyVia(t, pricedConfig(t, fp.URL), nil, &countingTools{}, leaveAtHead{tr, leave})
	t.Cleanup(ledger.Close)
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set("X-WeChat-OpenID", user)
	}
	s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	return ledger.Stats().ByModel
}

// leaveAtHead carries upstream requests and ends the bot's request (leave)
// when one's head came.
type leaveAtHead struct {
	rt    http.RoundTripper
	leave context.CancelFunc
}

func (l leaveAtHead) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err == nil {
		l.leave()
	}
	return resp, err
}
