package proxy

import (
	"bufio"
	"cmp"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestForwardedStreamCutWithoutUsageRecorded: a forwarded stream (the
// Responses API, a legacy completion) its provider cuts mid-answer before
// any usage came is recorded as a chat stream so cut is: its provider and
// model in the stats with no token and no cost (the provider bills it, its
// tokens unknown), the cut in paygate_upstream_stream_ends_total. It was
// recorded nowhere in the ledger: the stats showed no call of the model at
// all, as if nothing had been asked.
func TestForwardedStreamCutWithoutUsageRecorded(t *testing.T) {
	for _, tc := range []forwardedStream{
		// The reference: a plain chat stream cut mid-answer.
		{"chat completion", "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`, []string{
			`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}` + "\n\n",
		}},
		{"Responses API", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`, []string{
			"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"usage\":null}}\n\n",
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hello\"}\n\n",
		}},
		{"legacy completion", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, []string{
			"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"hello\",\"finish_reason\":null}],\"usage\":null}\n\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, ledger, reg, _, handled := ledgeredPost(t, abruptClose(tc.events...), tc.path, tc.body)
			b, err := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(b), "hello") {
				t.Fatalf("%d %q", resp.StatusCode, b)
			}
			// A chat stream ends with paygate's error event; a forwarded
			// one is cut for the bot as the provider cut it.
			if chat := strings.HasPrefix(tc.path, "/v1/chat/"); !chat && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("the bot's read ended with %v; want the cut (unexpected EOF)", err)
			}
			handled.Wait()
			if got := ledger.Stats().ByModel; len(got) != 1 || got[0] != unmeteredCall {
				t.Errorf("accounted %+v; want %+v: the call, no token counted", got, unmeteredCall)
			}
			if ends := streamEnds(t, reg); ends["upstream_connection_lost"] != 1 || len(ends) != 1 {
				t.Errorf("stream ends %v; want upstream_connection_lost 1", ends)
			}
		})
	}
}

// TestForwardedAnswerCutRecorded: a forwarded generation whose provider
// cut its answer before any usage came, a JSON answer mid-body or a stream
// before its first event, failed over (here: the round ended with an
// error) and was recorded nowhere, though the provider took the call and
// bills what it generated: it is recorded as a forwarded stream cut
// mid-answer is, its provider and model with no token.
func TestForwardedAnswerCutRecorded(t *testing.T) {
	unmetered := []accounting.ModelStats{{Provider: "fake", Model: "vendor/upstream-model", LLMCost: "0.000000"}}
	const stream, answer = `{"model":"gpt-test","input":"hi","stream":true}`, `{"model":"gpt-test","input":"hi"}`
	partial := silentAfterHead("application/json", `{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"hel`)
	timeouts := func(first, total time.Duration) func(*config.Config) {
		return func(c *config.Config) {
			to := &c.Providers[0].Timeouts
			to.FirstByte, to.FirstToken = cmp.Or(config.Duration(first), to.FirstByte), cmp.Or(config.Duration(first), to.FirstToken)
			to.Total = cmp.Or(config.Duration(total), to.Total)
		}
	}
	for _, tc := range []struct {
		name, path, body string
		provider         http.HandlerFunc
		mutate           func(*config.Config)
	}{
		{"Responses API answer cut mid-body", "/v1/responses", `{"model":"gpt-test","input":"hi"}`,
			rawAnswer(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n", `{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"hel`), nil},
		{"embeddings answer cut mid-body", "/v1/embeddings", `{"model":"gpt-test","input":"hi"}`,
			rawAnswer(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n", `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,`), nil},
		{"Responses API stream cut before its first event", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
			abruptClose("event: response.created\ndata: {\"type\":\"response.cre"), nil},
		// Silent after the head until a timeout ends the attempt (a forwarded
		// call waits for its head up to total).
		{"Responses API stream silent before its first event past first_token", "/v1/responses", stream,
			silentAfterHead("text/event-stream", ": keep-alive\n\n"), timeouts(200*time.Millisecond, 0)},
		{"Responses API stream silent before its first event past total", "/v1/responses", stream,
			silentAfterHead("text/event-stream", ": keep-alive\n\n"), timeouts(0, 300*time.Millisecond)},
		{"Responses API answer silent mid-body past total", "/v1/responses", answer, partial, timeouts(0, 300*time.Millisecond)},
		// No head: nothing says the provider took the request.
		{"no head: stream past total", "/v1/responses", stream, silentBeforeHead, timeouts(0, 300*time.Millisecond)},
		{"no head: answer past total", "/v1/responses", answer, silentBeforeHead, timeouts(0, 300*time.Millisecond)},
		// An error answer is no bill, cut or not.
		{"error answer cut mid-body", "/v1/responses", `{"model":"gpt-test","input":"hi"}`,
			rawAnswer(t, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 400\r\n", `{"error":{"message":"overloa`), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.provider)
			want := unmetered
			if strings.HasPrefix(tc.name, "error") || strings.HasPrefix(tc.name, "no head") {
				want = []accounting.ModelStats{}
			}
			if got := failedCallAccounted(t, testConfig(t, fp.URL, tc.mutate), tc.path, tc.body); !slices.Equal(got, want) {
				t.Errorf("accounted %+v; want %+v", got, want)
			}
		})
	}
}

// failedCallAccounted posts body to path of a proxy for cfg, wants the
// upstream error that ends the call, and returns the ledger's figures by
// model once the call is accounted.
func failedCallAccounted(t *testing.T, cfg *config.Config, path, body string) []accounting.ModelStats {
	t.Helper()
	s, ledger, _ := ledgerProxy(t, cfg, nil, nil)
	t.Cleanup(ledger.Close)
	srv, handled := waitedServer(t, s.Handler())
	resp := clientReq(t, http.MethodPost, srv.URL+path, strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
	if b := readAll(t, resp.Body); resp.StatusCode < 500 {
		t.Fatalf("%d %s; want an upstream error", resp.StatusCode, b)
	}
	handled.Wait() // the call is accounted after its answer
	return ledger.Stats().ByModel
}

// TestForwardedStreamEndedWithoutUsageRecorded: a forwarded stream its
// provider ended whole without any usage (a legacy completion not asked
// for include_usage, a relay that drops the Responses API's) was taken
// and billed by its provider: it is recorded with no token under its
// provider and model, as a chat stream so ended is (the reference). It
// was recorded nowhere, while one cut or left by its client so was.
func TestForwardedStreamEndedWithoutUsageRecorded(t *testing.T) {
	for _, tc := range []forwardedStream{
		{"chat completion", "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`, []string{
			`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}` + "\n\n",
			"data: [DONE]\n\n",
		}},
		{"Responses API", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`, []string{
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hello\"}\n\n",
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[]}}\n\n",
		}},
		{"legacy completion", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true}`, []string{
			"data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"hello\",\"finish_reason\":\"stop\"}]}\n\n",
			"data: [DONE]\n\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, ledger, _, _, handled := ledgeredPost(t, sseHandler(tc.events...), tc.path, tc.body)
			if b := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(b, "hello") {
				t.Fatalf("%d %q", resp.StatusCode, b)
			}
			handled.Wait()
			if got := ledger.Stats().ByModel; len(got) != 1 || got[0] != unmeteredCall {
				t.Errorf("accounted %+v; want %+v: the call, no token counted", got, unmeteredCall)
			}
		})
	}
}

// ledgeredPost posts body, JSON, to path of a proxy with a ledger (closed
// at the test's end) whose provider answers with h, and returns the bot's
// response, the ledger, the registry, the log and the server's handlers,
// to wait for before reading the ledger or the log.
func ledgeredPost(t *testing.T, h http.HandlerFunc, path, body string) (*http.Response, *accounting.Ledger, *prometheus.Registry, *logtest.Buffer, *sync.WaitGroup) {
	t.Helper()
	fp := newFakeProvider(t, h)
	s, ledger, reg, logs := ledgerProxyLog(t, testConfig(t, fp.URL, nil), nil, nil)
	t.Cleanup(ledger.Close)
	srv, handled := waitedServer(t, s.Handler())
	resp := clientReq(t, http.MethodPost, srv.URL+path, strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
	return resp, ledger, reg, logs, handled
}

// forwardedStream is a stream asked on path with body, its provider
// answering events.
type forwardedStream struct {
	name, path, body string
	events           []string
}

// unmeteredCall is a call recorded with no token under the fake provider
// and its target's model.
var unmeteredCall = accounting.ModelStats{Provider: "fake", Model: "vendor/upstream-model", LLMCost: "0.000000"}

// TestForwardedAnswerWithoutUsageRecorded: a forwarded generation answered
// whole as JSON, 2xx, without any usage (a relay that drops it, or nulls
// it) was taken and billed by its provider: it is recorded with no token
// under its provider and model, as a chat answer so answered is (the
// reference) and a forwarded stream that ended without usage is. It was
// recorded nowhere. A call that creates something (failover.Replayable: a
// background Response, whose usage a retrieval answers; an assistant) is
// no generation's answer, and stays no call.
func TestForwardedAnswerWithoutUsageRecorded(t *testing.T) {
	for _, tc := range []struct {
		name, path, body, answer string
		recorded                 bool
	}{
		{"chat completion", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`,
			`{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}`, true},
		{"Responses API", "/v1/responses", `{"model":"gpt-test","input":"hi"}`,
			`{"id":"resp_1","object":"response","status":"completed","model":"vendor/upstream-model","output":[{"type":"message","content":[{"type":"output_text","text":"hello"}]}]}`, true},
		{"Responses API, usage null", "/v1/responses", `{"model":"gpt-test","input":"hi"}`,
			`{"id":"resp_1","object":"response","status":"completed","model":"vendor/upstream-model","output":[{"type":"message","content":[{"type":"output_text","text":"hello"}]}],"usage":null}`, true},
		{"legacy completion", "/v1/completions", `{"model":"gpt-test","prompt":"hi"}`,
			`{"id":"c","object":"text_completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"text":"hello","finish_reason":"stop"}]}`, true},
		{"embeddings", "/v1/embeddings", `{"model":"gpt-test","input":"hello"}`,
			`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"vendor/upstream-model"}`, true},
		{"background Response", "/v1/responses", `{"model":"gpt-test","input":"hello","background":true}`,
			`{"id":"resp_1","object":"response","status":"queued","background":true,"model":"vendor/upstream-model","output":[],"usage":null}`, false},
		{"assistant", "/v1/assistants", `{"model":"gpt-test","name":"hello"}`,
			`{"id":"asst_1","object":"assistant","created_at":1,"name":"hello","model":"vendor/upstream-model","tools":[]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, ledger, _, _, handled := ledgeredPost(t, jsonHandler(200, tc.answer), tc.path, tc.body)
			if b := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(b, `"model":"vendor/upstream-model"`) {
				t.Fatalf("%d %q", resp.StatusCode, b)
			}
			handled.Wait()
			want := []accounting.ModelStats{}
			if tc.recorded {
				want = []accounting.ModelStats{unmeteredCall}
			}
			if got := ledger.Stats().ByModel; !slices.Equal(got, want) {
				t.Errorf("accounted %+v; want %+v", got, want)
			}
		})
	}
}

// TestForwardedUnmeteredWarned: a forwarded generation its provider
// answered whole, 2xx, without a usage or with one that counts nothing
// the ledger prices (no prompt nor completion tokens: a total alone) has
// its first of each provider and model logged, as a chat answer's is (the
// reference, accounting.Ledger.Unmetered): its cost counts as 0, and the
// LLM spend was short without a word. A stream cut before any usage came
// is not unmetered (its usage never came), as a chat stream's is not; a
// call that creates something is no generation's answer.
func TestForwardedUnmeteredWarned(t *testing.T) {
	const (
		answered   = `{"id":"resp_1","object":"response","status":"completed","model":"vendor/upstream-model","output":[{"type":"message","content":[{"type":"output_text","text":"hello"}]}]`
		responses  = `{"model":"gpt-test","input":"hi"}`
		streamed   = `{"model":"gpt-test","input":"hi","stream":true}`
		delta      = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hello\"}\n\n"
		completion = "data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"hello\",\"finish_reason\":\"stop\"}]}\n\n"
	)
	for _, tc := range []struct {
		name, path, body string
		provider         http.HandlerFunc
		warned           bool
	}{
		{"chat answer without usage", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`,
			jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}`), true},
		{"Responses API answer without usage", "/v1/responses", responses, jsonHandler(200, answered+"}"), true},
		{"legacy completion answer with a total alone", "/v1/completions", `{"model":"gpt-test","prompt":"hi"}`,
			jsonHandler(200, `{"id":"c","object":"text_completion","model":"vendor/upstream-model","choices":[{"index":0,"text":"hello","finish_reason":"stop"}],"usage":{"total_tokens":7}}`), true},
		{"Responses API stream ended without usage", "/v1/responses", streamed, sseHandler(delta,
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[]}}\n\n"), true},
		{"legacy completion stream ended without usage", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true}`,
			sseHandler(completion, "data: [DONE]\n\n"), true},
		{"Responses API answer with usage", "/v1/responses", responses,
			jsonHandler(200, answered+`,"usage":{"input_tokens":30,"output_tokens":2,"total_tokens":32}}`), false},
		{"Responses API stream cut before usage", "/v1/responses", streamed, abruptClose(delta), false},
		{"legacy completion stream cut before usage", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true}`, abruptClose(completion), false},
		{"background Response", "/v1/responses", `{"model":"gpt-test","input":"hello","background":true}`,
			jsonHandler(200, `{"id":"resp_1","object":"response","status":"queued","background":true,"model":"vendor/upstream-model","output":[],"usage":null}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _, _, logs, handled := ledgeredPost(t, tc.provider, tc.path, tc.body)
			if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || len(b) == 0 {
				t.Fatalf("%d %q", resp.StatusCode, b)
			}
			handled.Wait()
			lines := usageWarnings(logs.String())
			if !tc.warned && len(lines) != 0 {
				t.Errorf("log lines about the usage %q; want none", lines)
			}
			if tc.warned && (len(lines) != 1 || !strings.Contains(lines[0], "reported no usage") || !strings.Contains(lines[0], `"level":"WARN"`) ||
				!strings.Contains(lines[0], `"provider":"fake"`) || !strings.Contains(lines[0], `"target":"vendor/upstream-model"`)) {
				t.Errorf("log lines about the usage %q; want one WARN of provider fake and target vendor/upstream-model that says it reported no usage", lines)
			}
		})
	}
}

// TestForwardedUsagelessEndpointNotUnmetered: a forwarded generation of
// an endpoint whose answers carry no token counts by design (moderations,
// which OpenAI does not bill; an image of dall-e; a reranking that answers
// a JSON array, as text-embeddings-inference does, or a total alone, as
// vLLM does) is no call without usage: it was recorded with no token and
// warned of as a provider or relay that drops the usage, the operator told
// to check a setting that was right. An embeddings answer so answered is
// (the reference).
func TestForwardedUsagelessEndpointNotUnmetered(t *testing.T) {
	for _, tc := range []struct {
		name, path, body, answer string
		want                     []accounting.ModelStats
	}{
		{"embeddings without usage", "/v1/embeddings", `{"model":"gpt-test","input":"hello"}`,
			`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"vendor/upstream-model"}`, []accounting.ModelStats{unmeteredCall}},
		{"embeddings without usage, a query after the path", "/v1/embeddings?api-version=2024-02-01", `{"model":"gpt-test","input":"hello"}`,
			`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"vendor/upstream-model"}`, []accounting.ModelStats{unmeteredCall}},
		{"moderation", "/v1/moderations", `{"model":"gpt-test","input":"hello"}`,
			`{"id":"modr-1","model":"vendor/upstream-model","results":[{"flagged":false}]}`, []accounting.ModelStats{}},
		{"image of dall-e", "/v1/images/generations", `{"model":"gpt-test","prompt":"hello"}`,
			`{"created":1,"data":[{"url":"https://example.com/vendor/upstream-model.png"}]}`, []accounting.ModelStats{}},
		{"reranking, a JSON array", "/v1/rerank", `{"model":"gpt-test","query":"hello","texts":["a"]}`,
			`[{"index":0,"score":0.9,"text":"vendor/upstream-model"}]`, []accounting.ModelStats{}},
		{"reranking, a total alone", "/v1/rerank", `{"model":"gpt-test","query":"hello","documents":["a"]}`,
			`{"id":"rerank-1","model":"vendor/upstream-model","results":[{"index":0,"relevance_score":0.9}],"usage":{"total_tokens":7}}`, []accounting.ModelStats{unmeteredCall}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, ledger, _, logs, handled := ledgeredPost(t, jsonHandler(200, tc.answer), tc.path, tc.body)
			if b := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(b, "vendor/upstream-model") {
				t.Fatalf("%d %q", resp.StatusCode, b)
			}
			handled.Wait()
			if got := ledger.Stats().ByModel; !slices.Equal(got, tc.want) {
				t.Errorf("accounted %+v; want %+v", got, tc.want)
			}
			lines := usageWarnings(logs.String())
			if reference := strings.HasPrefix(tc.path, "/v1/embeddings"); reference != (len(lines) == 1) || len(lines) > 1 {
				t.Errorf("log lines about the usage %q; want one: %v", lines, reference)
			}
		})
	}
}

// TestForwardedMislabelledStreamAccounted: the event stream answering a
// call whose "stream" is true, labelled text/plain, application/octet-stream
// or not at all, which is piped and masked as a stream (streamAsked), has
// its usage counted as a labelled one's is. It was counted nowhere: no
// row, its tokens left out of the LLM spend.
func TestForwardedMislabelledStreamAccounted(t *testing.T) {
	const stream = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hello\"}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[]," +
		"\"usage\":{\"input_tokens\":30,\"output_tokens\":2,\"total_tokens\":32}}}\n\n"
	for _, ct := range []string{"text/event-stream", "text/plain", "application/octet-stream", ""} {
		t.Run(cmp.Or(ct, "none"), func(t *testing.T) {
			resp, ledger, _, _, handled := ledgeredPost(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = []string{ct}
				io.WriteString(w, stream)
			}, "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`)
			if b := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(b, "hello") {
				t.Fatalf("%d %q", resp.StatusCode, b)
			}
			handled.Wait()
			want := []accounting.ModelStats{{Provider: "fake", Model: "vendor/upstream-model", PromptTokens: 30, CompletionTokens: 2, LLMCost: "0.000000"}}
			if got := ledger.Stats().ByModel; !slices.Equal(got, want) {
				t.Errorf("accounted %+v; want %+v", got, want)
			}
		})
	}
}

// TestForwardedStreamEndedByDrainAfterLastEventUnmetered: a forwarded
// stream without usage that the drain deadline ends after its last event
// (response.completed) came whole, as one its provider ended is: it is
// logged as unmetered, once. Read as cut (pipeUpstreamBody's whole
// false), it was not, though the provider finished and billed it.
func TestForwardedStreamEndedByDrainAfterLastEventUnmetered(t *testing.T) {
	const completed = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[]}}\n\n"
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, completed)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the connection stays open past the last event
	})
	s, ledger, _, logs := ledgerProxyLog(t, testConfig(t, fp.URL, nil), nil, nil)
	t.Cleanup(ledger.Close)
	h, cut := shutdownCut(s.Handler())
	srv, handled := waitedServer(t, h)
	resp := clientReq(t, http.MethodPost, srv.URL+"/v1/responses", strings.NewReader(`{"model":"gpt-test","input":"hi","stream":true}`),
		map[string]string{"Content-Type": "application/json"})
	if ev := readEvent(t, bufio.NewReader(resp.Body)); resp.StatusCode != 200 || ev != completed {
		t.Fatalf("%d %q", resp.StatusCode, ev)
	}
	cut()
	_, _ = io.ReadAll(resp.Body)
	handled.Wait()
	if lines := usageWarnings(logs.String()); len(lines) != 1 || !strings.Contains(lines[0], "reported no usage") {
		t.Errorf("log lines about the usage %q; want one that says it reported no usage", lines)
	}
}

// TestForwardedStreamLabelledJSONAccounted: the event stream answering a
// call whose "stream" is true, labelled application/json, is no JSON
// object to failover, which refuses it as malformed (a 502, each target
// asked again), each attempt billed by its provider all the same. The
// usage of its last event is accounted for each attempt, as a malformed
// JSON answer's is (failover's billedUsage); it was counted nowhere. A
// stream with usage on every event (vLLM's continuous_usage_stats) counts
// its last, the whole answer's. When the next attempt's stream comes
// labelled as one and answers, the refused attempt is counted once beside
// it, and the answer once, by its own usage.
func TestForwardedStreamLabelledJSONAccounted(t *testing.T) {
	for _, tc := range []struct{ name, path, body, stream string }{
		{"Responses API", "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`,
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hello\"}\n\n" +
				"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[]," +
				"\"usage\":{\"input_tokens\":30,\"output_tokens\":2,\"total_tokens\":32}}}\n\n"},
		{"legacy completion", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`,
			"data: {\"id\":\"c1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"hello\"}],\"usage\":null}\r\n\r\n" +
				"data: {\"id\":\"c1\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":2,\"total_tokens\":32}}\r\n\r\n" +
				"data: [DONE]\r\n\r\n"},
		{"legacy completion, usage on every event", "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}`,
			"data: {\"id\":\"c1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"hel\"}],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":1,\"total_tokens\":31}}\n\n" +
				"data: {\"id\":\"c1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"lo\",\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":2,\"total_tokens\":32}}\n\n" +
				"data: [DONE]\n\n"},
	} {
		for _, then := range []struct {
			name, label string // label: the second attempt's Content-Type
			status      int
		}{
			{"every attempt labelled JSON", "application/json", http.StatusBadGateway},
			{"the second labelled an event stream", "text/event-stream", http.StatusOK},
		} {
			t.Run(tc.name+", "+then.name, func(t *testing.T) {
				var calls atomic.Int64
				resp, ledger, _, _, handled := ledgeredPost(t, func(w http.ResponseWriter, r *http.Request) {
					label := "application/json"
					if calls.Add(1) > 1 {
						label = then.label
					}
					w.Header().Set("Content-Type", label)
					io.WriteString(w, tc.stream)
				}, tc.path, tc.body)
				readAll(t, resp.Body)
				handled.Wait()
				n := calls.Load()
				want := []accounting.ModelStats{{Provider: "fake", Model: "vendor/upstream-model", PromptTokens: 30 * n, CompletionTokens: 2 * n, LLMCost: "0.000000"}}
				if got := ledger.Stats().ByModel; n != 2 || resp.StatusCode != then.status || !slices.Equal(got, want) {
					t.Errorf("answered %d; accounted %+v after %d attempts; want %d, %+v after 2", resp.StatusCode, got, n, then.status, want)
				}
			})
		}
	}
}
