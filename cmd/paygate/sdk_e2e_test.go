package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"
)

// What bots do with the Node openai SDK beyond reading a stream: its tool
// loop, its stream helper's events, cancelling, its own retries and its
// response headers, through the binary's application against a scripted
// provider and the WeChat Pay simulator.

// weatherScript: a purchase that goes on with the bot's own tool. The
// user's message gets a create_order call, paygate's tool result a call to
// the bot's get_weather, and the bot's result the answer. Every round
// reports usage (11 tokens), streamed and not.
func weatherScript(body string) scriptRound {
	msgs := gjson.Get(body, "messages").Array()
	last := msgs[len(msgs)-1]
	round := func(id, content, call string) scriptRound {
		head := `{"id":"` + id + `","object":"chat.completion.chunk","created":1700000001,"model":"m-` + id + `","choices":[`
		usage := `"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}`
		text, _ := json.Marshal(content)
		r := scriptRound{chunks: []string{head + `{"index":0,"delta":{"role":"assistant","content":` + string(text) + `},"finish_reason":null}]}`}}
		msg, finish := `{"role":"assistant","content":`+string(text)+`}`, "stop"
		if call != "" {
			r.chunks = append(r.chunks, head+`{"index":0,"delta":{"tool_calls":[{"index":0,`+call+`}]},"finish_reason":null}]}`)
			msg, finish = `{"role":"assistant","content":`+string(text)+`,"tool_calls":[{`+call+`}]}`, "tool_calls"
		}
		r.chunks = append(r.chunks, head+`{"index":0,"delta":{},"finish_reason":"`+finish+`"}]}`,
			`{"id":"`+id+`","object":"chat.completion.chunk","created":1700000001,"model":"m-`+id+`","choices":[],`+usage+`}`)
		r.whole = `{"id":"` + id + `","object":"chat.completion","created":1700000001,"model":"m-` + id + `","choices":[{"index":0,"message":` + msg + `,"finish_reason":"` + finish + `"}],` + usage + `}`
		return r
	}
	switch {
	case last.Get("role").Str == "user":
		return round("r1", "Ordering. ", `"id":"call_pay1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}`)
	case last.Get("tool_call_id").Str == "call_pg_1_0": // create_order's, under paygate's id
		return round("r2", "Checking the weather. ", `"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}`)
	}
	return round("r3", "It is 21 degrees.", "")
}

// TestNodeRunToolsBesidePaymentTools: the SDK's runTools loop with a
// function of the bot's own while paygate offers its payment tools. The
// bot's call reaches the SDK, which runs it; paygate's create_order never
// does (runTools would run or fail on any call it gets); the bot's next
// request, carrying its result, gets the payment exchange back in place;
// one order.
func TestNodeRunToolsBesidePaymentTools(t *testing.T) {
	for _, mode := range []string{"run-tools", "run-tools-stream"} {
		t.Run(mode, func(t *testing.T) {
			up := newScriptedProvider(t, weatherScript)
			url, a := paymentApp(t, up.URL, "")
			var res struct {
				Content string           `json:"content"`
				Called  []map[string]any `json:"called"`
				Calls   []string         `json:"calls"`
			}
			out := nodeChat(t, url, mode)
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if res.Content != "It is 21 degrees." || len(res.Called) != 1 || res.Called[0]["city"] != "Paris" {
				t.Errorf("the SDK's loop ended with %q after running get_weather with %v; want the answer after one call for Paris", res.Content, res.Called)
			}
			if strings.Join(res.Calls, ",") != "get_weather" {
				t.Errorf("tool calls in the SDK's conversation: %v; want the bot's get_weather alone", res.Calls)
			}
			reqs := up.requests()
			if len(reqs) != 3 {
				t.Fatalf("upstream saw %d requests; want 3 (purchase, weather, answer)", len(reqs))
			}
			var sigs []string
			for _, m := range gjson.Get(reqs[2], "messages").Array() {
				sigs = append(sigs, messageSignature(m))
			}
			if got, want := strings.Join(sigs, " "), "system user assistant:call_pg_1_0 tool:call_pg_1_0 assistant:call_w tool:call_w"; got != want {
				t.Errorf("the bot's second request reached the provider as %q; want %q", got, want)
			}
			if a.sim.OrderCount() != 1 {
				t.Errorf("WeChat Pay holds %d orders; want 1", a.sim.OrderCount())
			}
		})
	}
}

// TestNodeStreamHelperEventsOfAContinuedTurn: the stream helper's
// content.delta events of a purchase (two rounds) add up to the text the
// completion it assembles holds, under one id, finished "stop" (never
// "tool_calls" for paygate's own call), with the paygate object, and with
// usage, the sum of both rounds, only when the bot asked for it.
func TestNodeStreamHelperEventsOfAContinuedTurn(t *testing.T) {
	for _, tc := range []struct {
		mode      string
		wantTotal float64 // 0: no usage
	}{{"stream-events", 0}, {"stream-events-usage", 280}} {
		t.Run(tc.mode, func(t *testing.T) {
			up := newScriptedProvider(t, purchaseScript)
			url, _ := paymentApp(t, up.URL, "")
			var res struct {
				Deltas   []string `json:"deltas"`
				Done     string   `json:"done"`
				ChunkIDs []string `json:"chunkIds"`
				ID       string   `json:"id"`
				Content  string   `json:"content"`
				Finish   string   `json:"finish"`
				Usage    *struct {
					Prompt     float64 `json:"prompt_tokens"`
					Completion float64 `json:"completion_tokens"`
					Total      float64 `json:"total_tokens"`
				} `json:"usage"`
				Paygate struct {
					Actions []struct {
						Type string `json:"type"`
					} `json:"actions"`
				} `json:"paygate"`
			}
			out := nodeChat(t, url, tc.mode)
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			const want = "Let me set that up. Your order is ready: tap Pay to finish."
			if strings.Join(res.Deltas, "") != want || res.Done != want || res.Content != want {
				t.Errorf("content.delta events %q, content.done %q, completion %q; want all %q", res.Deltas, res.Done, res.Content, want)
			}
			if res.ID != "chatcmpl-R1" || len(res.ChunkIDs) != 1 || res.Finish != "stop" {
				t.Errorf("id %q over chunk ids %v, finish %q; want one id and stop", res.ID, res.ChunkIDs, res.Finish)
			}
			if len(res.Paygate.Actions) != 1 || res.Paygate.Actions[0].Type != "order_created" {
				t.Errorf("paygate %+v; want the order_created action", res.Paygate)
			}
			switch {
			case tc.wantTotal == 0 && res.Usage != nil:
				t.Errorf("usage %+v reached a bot that did not ask for it", *res.Usage)
			case tc.wantTotal != 0 && (res.Usage == nil || res.Usage.Total != tc.wantTotal || res.Usage.Prompt != 250 || res.Usage.Completion != 30):
				t.Errorf("usage %+v; want 250+30=280, both rounds", res.Usage)
			}
		})
	}
}

// TestNodeAbortCancelsUpstream: a bot that aborts a stream (AbortController)
// after its first text ends paygate's upstream request, which would
// otherwise go on generating, and billing, for nobody.
func TestNodeAbortCancelsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	var once sync.Once
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`+"\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			once.Do(func() { close(canceled) })
		case <-time.After(time.Minute):
		}
	}))
	t.Cleanup(up.Close)
	url, _ := paymentApp(t, up.URL, "")
	var res struct {
		Content string `json:"content"`
		Aborted bool   `json:"aborted"`
		Error   string `json:"error"`
	}
	out := nodeChat(t, url, "abort")
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if res.Content != "Hello" || !res.Aborted {
		t.Errorf("the bot read %q, aborted %v (error %q); want the first text, then its abort", res.Content, res.Aborted, res.Error)
	}
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request went on after the bot aborted")
	}
}

// retriedPurchaseProvider is a provider whose purchase fails with a 500 in
// the round after the order until the SDK sent the first round again: the
// retried turn then gets the first try's order back. firsts counts the
// first rounds it saw, headers the headers of every request.
func retriedPurchaseProvider(t *testing.T) (url string, firsts func() int, headers func() []http.Header) {
	var mu sync.Mutex
	var n int
	var hs []http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hs = append(hs, r.Header.Clone())
		tool := strings.Contains(string(b), `"role":"tool"`)
		if !tool {
			n++
		}
		fail := tool && n < 2
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error"}}`)
			return
		}
		_, _ = io.WriteString(w, purchaseScript(string(b)).whole)
	}))
	t.Cleanup(up.Close)
	return up.URL,
		func() int { mu.Lock(); defer mu.Unlock(); return n },
		func() []http.Header { mu.Lock(); defer mu.Unlock(); return slices.Clone(hs) }
}

// TestNodeRetriedPostMakesOneOrder: a non-stream purchase whose round after
// the order fails at the provider is a 5xx to the bot, which the SDK sends
// again on its own (maxRetries): the retry gets the order the first try
// made, with its payment parameters, and WeChat Pay sees one order and one
// prepay. The SDK's x-stainless-* headers, retry count included, reach no
// provider, and the answer carries paygate's own headers.
func TestNodeRetriedPostMakesOneOrder(t *testing.T) {
	up, firsts, headers := retriedPurchaseProvider(t)
	url, a := paymentApp(t, up, "")
	var res struct {
		Headers map[string]string `json:"headers"`
		Content string            `json:"content"`
		Paygate struct {
			Actions []struct {
				Type           string         `json:"type"`
				Order          map[string]any `json:"order"`
				RequestPayment map[string]any `json:"request_payment"`
			} `json:"actions"`
		} `json:"paygate"`
	}
	out := nodeChat(t, url, "with-response", "PAYGATE_RETRIES=2")
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if retried := firsts(); retried != 2 {
		t.Fatalf("the provider saw %d first rounds; want 2, the SDK's retry of the failed turn", retried)
	}
	if a.sim.OrderCount() != 1 {
		t.Errorf("WeChat Pay holds %d orders after the SDK's retry; want 1", a.sim.OrderCount())
	}
	var prepays int
	for _, rl := range a.sim.Requests() {
		if strings.HasPrefix(rl.Op, "prepay") {
			prepays++
		}
	}
	if prepays != 1 {
		t.Errorf("%d prepays reached WeChat Pay; want 1", prepays)
	}
	if len(res.Paygate.Actions) != 1 || res.Paygate.Actions[0].Type != "order_created" || res.Paygate.Actions[0].RequestPayment["paySign"] == nil {
		t.Errorf("the retried answer's paygate %+v; want the order with its payment parameters", res.Paygate)
	}
	if res.Headers["x-paygate-provider"] != "fake" || res.Headers["x-paygate-attempts"] == "" || res.Headers["x-request-id"] == "" {
		t.Errorf("answer headers %v; want X-Paygate-Provider, X-Paygate-Attempts and X-Request-Id", res.Headers)
	}
	for _, h := range headers() {
		for k := range h {
			if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-stainless") || lk == "idempotency-key" || lk == "x-wechat-openid" {
				t.Errorf("the bot's %s header reached the provider", k)
			}
		}
	}
}

// TestGoOpenAIContinuedStreamWithUsageAndLogprobs: go-openai reads a
// purchase streamed over two rounds, each from another model build and
// second, with logprobs asked and usage asked (stream_options): every chunk
// decodes, under one id and one created; the text chunks of both rounds
// carry their logprobs; one finish, "stop"; and the last chunk, after the
// finish, is the usage of both rounds summed, token details included.
func TestGoOpenAIContinuedStreamWithUsageAndLogprobs(t *testing.T) {
	lp := func(tok string) string {
		return `{"content":[{"token":"` + tok + `","logprob":-0.5,"bytes":[1],"top_logprobs":[]}],"refusal":null}`
	}
	up := newScriptedProvider(t, func(body string) scriptRound {
		id, created, text, calls := "chatcmpl-L1", "1700000001", "Let me. ", true
		usage := `{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":50},"completion_tokens_details":{"reasoning_tokens":5}}`
		if strings.Contains(body, `"role":"tool"`) {
			id, created, text, calls = "chatcmpl-L2", "1700000002", "Tap pay.", false
			usage = `{"prompt_tokens":150,"completion_tokens":10,"total_tokens":160,"prompt_tokens_details":{"cached_tokens":100},"completion_tokens_details":{"reasoning_tokens":0}}`
		}
		head := `{"id":"` + id + `","object":"chat.completion.chunk","created":` + created + `,"model":"gpt-4o-` + id + `","system_fingerprint":"fp","choices":[`
		r := scriptRound{chunks: []string{head + `{"index":0,"delta":{"role":"assistant","content":"` + text + `"},"logprobs":` + lp(text) + `,"finish_reason":null}]}`}}
		finish := "stop"
		if calls {
			r.chunks = append(r.chunks, head+`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"logprobs":null,"finish_reason":null}]}`)
			finish = "tool_calls"
		}
		r.chunks = append(r.chunks, head+`{"index":0,"delta":{},"logprobs":null,"finish_reason":"`+finish+`"}]}`,
			`{"id":"`+id+`","object":"chat.completion.chunk","created":`+created+`,"model":"gpt-4o-`+id+`","choices":[],"usage":`+usage+`}`)
		return r
	})
	url, _ := paymentApp(t, up.URL, "")
	stream, err := userClient(url).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Stream: true, LogProbs: true,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
		Messages:      []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "premium please"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var chunks []openai.ChatCompletionStreamResponse
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv after %d chunks: %v", len(chunks), err)
		}
		chunks = append(chunks, c)
	}
	if len(chunks) == 0 {
		t.Fatal("the stream ended with no chunk")
	}
	var text strings.Builder
	var tokens, finishes []string
	ids, created := map[string]bool{}, map[int64]bool{}
	for i, c := range chunks {
		ids[c.ID], created[c.Created] = true, true
		if c.Usage != nil && i != len(chunks)-1 {
			t.Errorf("chunk %d of %d carries usage; want it on the last alone", i, len(chunks))
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
			if ch.Logprobs != nil {
				for _, l := range ch.Logprobs.Content {
					tokens = append(tokens, l.Token)
				}
			}
			if ch.FinishReason != "" {
				finishes = append(finishes, string(ch.FinishReason))
			}
		}
	}
	if text.String() != "Let me. Tap pay." || strings.Join(tokens, "") != "Let me. Tap pay." {
		t.Errorf("text %q with logprob tokens %q; want both rounds' text, each with its logprobs", text.String(), tokens)
	}
	if len(ids) != 1 || !ids["chatcmpl-L1"] || len(created) != 1 || !created[1700000001] {
		t.Errorf("ids %v, created %v; want the first round's one id and one created", ids, created)
	}
	if strings.Join(finishes, ",") != "stop" {
		t.Errorf("finish reasons %q; want one stop", finishes)
	}
	u := chunks[len(chunks)-1].Usage
	if u == nil || u.PromptTokens != 250 || u.CompletionTokens != 30 || u.TotalTokens != 280 ||
		u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens != 150 ||
		u.CompletionTokensDetails == nil || u.CompletionTokensDetails.ReasoningTokens != 5 {
		t.Errorf("usage %+v; want both rounds summed: 250+30=280, 150 cached, 5 reasoning", u)
	}
}

// TestToolChoiceNoneAfterAMixedRoundKeepsPaymentToolDefinitions: a bot runs
// its own tool from a round that also made a payment call and asks for the
// final answer with tool_choice "none", as agent loops do. The provider
// gets the payment exchange back in the conversation, so it also gets the
// payment tools' definitions, still with tool_choice "none": Anthropic's
// models (also behind OpenRouter and LiteLLM) refuse a conversation with
// tool calls and results whose tools are not defined ("Requests which
// include tool_use or tool_result blocks must define tools"). Without a
// payment call in the conversation, "none" still offers none.
func TestToolChoiceNoneAfterAMixedRoundKeepsPaymentToolDefinitions(t *testing.T) {
	const weather = `{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}`
	up := newScriptedProvider(t, func(body string) scriptRound {
		if !strings.Contains(body, `"role":"tool"`) {
			return callRound("mx", [3]string{"call_pay", "create_order", `{"sku":"premium-monthly"}`}, [3]string{"call_w", "get_weather", `{"city":"Paris"}`})
		}
		return scriptRound{whole: `{"id":"fin","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Ordered; 21 degrees."},"finish_reason":"stop"}]}`}
	})
	url, a := paymentApp(t, up.URL, "")
	first := chatBody(t, url, `{"model":"gpt-4o","tools":[`+weather+`],"messages":[{"role":"user","content":"premium, and the weather"}]}`)
	if got := gjson.Get(first, "choices.0.message.tool_calls.#.function.name").Raw; got != `["get_weather"]` {
		t.Fatalf("the bot got calls %s; want its get_weather alone: %s", got, first)
	}
	for _, tc := range []struct {
		name     string
		messages string
		wantDefs bool
	}{
		{"after the mixed round", `{"role":"user","content":"premium, and the weather"},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
			`{"role":"tool","tool_call_id":"call_w","content":"21"}`, true},
		{"a conversation without payment calls", `{"role":"user","content":"hello"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(up.requests())
			chatBody(t, url, `{"model":"gpt-4o","tool_choice":"none","tools":[`+weather+`],"messages":[`+tc.messages+`]}`)
			reqs := up.requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("upstream requests %d; want 1", len(reqs))
			}
			req := reqs[0]
			calls := gjson.Get(req, "messages.#.tool_calls.#.function.name").Raw
			tools := gjson.Get(req, "tools.#.function.name").Raw
			if tc.wantDefs != strings.Contains(calls, "create_order") {
				t.Fatalf("payment calls in the conversation: %s; want them there: %v", calls, tc.wantDefs)
			}
			if got := strings.Contains(tools, "create_order"); got != tc.wantDefs {
				t.Errorf("tools %s beside calls %s; want the payment tools defined: %v", tools, calls, tc.wantDefs)
			}
			if !strings.Contains(tools, "get_weather") || gjson.Get(req, "tool_choice").Str != "none" {
				t.Errorf("tools %s, tool_choice %s; want the bot's tool and its \"none\"", tools, gjson.Get(req, "tool_choice").Raw)
			}
		})
	}
	if a.sim.OrderCount() != 1 {
		t.Errorf("WeChat Pay holds %d orders; want 1", a.sim.OrderCount())
	}
}

// TestNodeSendsAnAtMostOnceCallOnce: a forwarded call that creates
// something (POST /v1/batches) that the provider may have acted on (a 500,
// a connection lost after it was sent) is sent to no provider again, and
// the bot's SDK, whose retries of a 5xx are on by default, must not send it
// again either: the answer says x-should-retry: false. Without it the Node
// SDK sent the batch twice more, three batches billed where paygate's
// answer said it had sent one and to check before sending it again.
func TestNodeSendsAnAtMostOnceCallOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(w http.ResponseWriter)
	}{
		{"a 500", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":{"message":"internal error","type":"server_error"}}`)
		}},
		{"a connection lost after the request", func(http.ResponseWriter) { panic(http.ErrAbortHandler) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			batches := 0
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				if r.URL.Path == "/v1/batches" {
					mu.Lock()
					batches++
					mu.Unlock()
				}
				tc.fail(w)
			}))
			t.Cleanup(up.Close)
			url, _ := paymentApp(t, up.URL, "")
			var res struct {
				Status int    `json:"status"`
				Error  string `json:"error"`
			}
			out := nodeChat(t, url, "batch-create", "PAYGATE_RETRIES=2")
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if res.Status < 500 {
				t.Errorf("the bot got %d (%s); want paygate's 5xx", res.Status, res.Error)
			}
			mu.Lock()
			defer mu.Unlock()
			if batches != 1 {
				t.Errorf("the provider got the batch %d times; want once, the SDK not sending it again", batches)
			}
		})
	}
}

// TestNodeReadsAChatCompletionAProviderSentAsText: a provider whose server
// labels its chat completion text/plain (mistral.rs's OpenAI server did)
// hands paygate a JSON chat completion, which paygate checks as one; the
// bot's Node SDK reads an answer by its Content-Type, and given text/plain
// it returned the body as a string, so the bot's completion.choices[0]
// threw. paygate says what it checked: application/json, for a bot
// whose user is signed in (a payment turn) and one whose user is not alike.
func TestNodeReadsAChatCompletionAProviderSentAsText(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, `{"id":"c-text","object":"chat.completion","created":1700000000,"model":"local","choices":[{"index":0,"message":{"role":"assistant","content":"Hello as text"},"finish_reason":"stop"}]}`)
	}))
	t.Cleanup(up.Close)
	url, _ := paymentApp(t, up.URL, "")
	for _, tc := range []struct{ name, openID string }{{"signed in", testOpenID}, {"no user", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			var res struct {
				Content string `json:"content"`
				Error   string `json:"error"`
			}
			out := nodeChat(t, url, "nonstream", "PAYGATE_OPENID="+tc.openID)
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if res.Content != "Hello as text" {
				t.Errorf("the bot's SDK read %s; want the completion's content", out)
			}
		})
	}
}
