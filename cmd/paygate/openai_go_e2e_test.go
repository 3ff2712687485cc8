package main

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"
	"github.com/tidwall/gjson"
)

// What bots written with OpenAI's official Go SDK (github.com/openai/openai-go/v3)
// do, through the binary's application against a scripted provider and the
// WeChat Pay simulator: Chat.Completions.New and NewStreaming read with
// ChatCompletionAccumulator, the bot's own tool beside paygate's, the
// paygate member (RawJSON, JSON.ExtraFields), errors as *openai.Error, and
// the SDK's own retries, which read x-should-retry and Retry-After.

// goSDK is an openai-go client of the application at url, as the signed-in
// testOpenID, that retries nothing unless opts say otherwise.
func goSDK(url string, opts ...option.RequestOption) *openai.Client {
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(url + "/v1"), option.WithAPIKey(e2eClientKey),
		option.WithHeader("X-WeChat-OpenID", testOpenID), option.WithMaxRetries(0),
	}, opts...)...)
	return &c
}

// goSDKStream is what a bot reads of a stream with the accumulator: each
// chunk added (an AddChunk that refuses one fails the test), the
// JustFinished events in order, and the paygate members of the chunks.
type goSDKStream struct {
	acc      openai.ChatCompletionAccumulator
	contents []string
	calls    []openai.FinishedChatCompletionToolCall
	paygate  []string
	chunks   int
}

func readGoSDKStream(t *testing.T, client *openai.Client, params openai.ChatCompletionNewParams, opts ...option.RequestOption) (*goSDKStream, error) {
	t.Helper()
	stream := client.Chat.Completions.NewStreaming(context.Background(), params, opts...)
	defer stream.Close()
	s := &goSDKStream{}
	for stream.Next() {
		chunk := stream.Current()
		s.chunks++
		if !s.acc.AddChunk(chunk) {
			t.Errorf("the accumulator refused chunk %d: %s", s.chunks, chunk.RawJSON())
		}
		if c, ok := s.acc.JustFinishedContent(); ok {
			s.contents = append(s.contents, c)
		}
		if c, ok := s.acc.JustFinishedToolCall(); ok {
			s.calls = append(s.calls, c)
		}
		if f, ok := chunk.JSON.ExtraFields["paygate"]; ok && f.Raw() != "" {
			s.paygate = append(s.paygate, f.Raw())
		}
	}
	return s, stream.Err()
}

func userParams(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)}}
}

// orderCreated checks that a paygate member is one order_created action
// with the payment parameters of WeChat Pay's one order.
func orderCreated(t *testing.T, a *app, paygate string) {
	t.Helper()
	acts := gjson.Get(paygate, "actions").Array()
	if len(acts) != 1 || acts[0].Get("type").Str != "order_created" || acts[0].Get("request_payment.paySign").Str == "" ||
		acts[0].Get("order.order_no").Str != lastOrderNo(t, a.sim) {
		t.Errorf("paygate %s; want the order's order_created with its payment parameters", paygate)
	}
}

// TestOpenAIGoPurchaseContinued: a purchase paygate continues past the
// model's create_order (two rounds) reaches the SDK as one answer, New and
// NewStreaming alike: the text of both rounds, finish "stop", no tool call,
// usage the sum of both rounds, and the paygate member with the order, read
// as the README says (RawJSON, JSON.ExtraFields). Streamed, every chunk
// goes into the accumulator (one id), whose JustFinishedContent fires once
// with the whole text and JustFinishedToolCall never.
func TestOpenAIGoPurchaseContinued(t *testing.T) {
	const want = "Let me set that up. Your order is ready: tap Pay to finish."
	t.Run("new", func(t *testing.T) {
		up := newScriptedProvider(t, purchaseScript)
		url, a := paymentApp(t, up.URL, "")
		c, err := goSDK(url).Chat.Completions.New(context.Background(), userParams("premium for a month"))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != 1 || c.Choices[0].Message.Content != want || c.Choices[0].FinishReason != "stop" || len(c.Choices[0].Message.ToolCalls) != 0 {
			t.Errorf("completion %s; want one answer of both rounds, finished stop, no tool call", c.RawJSON())
		}
		if c.Usage.PromptTokens != 250 || c.Usage.CompletionTokens != 30 || c.Usage.TotalTokens != 280 {
			t.Errorf("usage %+v; want 250+30=280, both rounds", c.Usage)
		}
		// An extra field's Valid() is false (the SDK has no type for it):
		// its Raw() is the member's JSON.
		f, ok := c.JSON.ExtraFields["paygate"]
		if !ok || f.Raw() != gjson.Get(c.RawJSON(), "paygate").Raw {
			t.Fatalf("JSON.ExtraFields[paygate] %v %q; want the RawJSON's paygate member", ok, f.Raw())
		}
		orderCreated(t, a, f.Raw())
		oneOrderOnePrepay(t, a)
	})
	t.Run("streaming", func(t *testing.T) {
		up := newScriptedProvider(t, purchaseScript)
		url, a := paymentApp(t, up.URL, "")
		p := userParams("premium for a month")
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		s, err := readGoSDKStream(t, goSDK(url), p)
		if err != nil {
			t.Fatalf("stream after %d chunks: %v", s.chunks, err)
		}
		acc := s.acc
		if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != want || acc.Choices[0].FinishReason != "stop" || len(acc.Choices[0].Message.ToolCalls) != 0 {
			t.Errorf("accumulated %+v; want one answer of both rounds, finished stop, no tool call", acc.Choices)
		}
		if strings.Join(s.contents, "|") != want || len(s.calls) != 0 {
			t.Errorf("JustFinishedContent %q, JustFinishedToolCall %+v; want the whole text once, no call", s.contents, s.calls)
		}
		if acc.ID != "chatcmpl-R1" {
			t.Errorf("id %q; want the first round's", acc.ID)
		}
		if acc.Usage.PromptTokens != 250 || acc.Usage.CompletionTokens != 30 || acc.Usage.TotalTokens != 280 {
			t.Errorf("usage %+v; want 250+30=280, both rounds", acc.Usage)
		}
		if len(s.paygate) != 1 {
			t.Fatalf("paygate on %d chunks: %q; want one", len(s.paygate), s.paygate)
		}
		orderCreated(t, a, s.paygate[0])
		oneOrderOnePrepay(t, a)
	})
}

// weatherTool is the bot's own tool, with a strict schema.
var weatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name: "get_weather", Strict: openai.Bool(true), Description: openai.String("The weather in a city"),
	Parameters: shared.FunctionParameters{
		"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}},
		"required": []string{"city"}, "additionalProperties": false,
	},
})

// TestOpenAIGoBotToolBesidePaymentCall: the bot's own strict tool called in
// the round after create_order (weatherScript) and beside it in the same
// round, as the second call (parallelScript). The SDK sees exactly the
// bot's call, its id and arguments, at index 0 (streamed: the accumulator
// holds that one call, JustFinishedToolCall fires for it alone, finish
// tool_calls); the bot's follow-up, the accumulated message sent back with
// ToParam and its result, gets the answer; the provider got the bot's tool
// definition and parallel_tool_calls as the SDK sent them; one order.
func TestOpenAIGoBotToolBesidePaymentCall(t *testing.T) {
	for _, sc := range []struct {
		name   string
		script func(string) scriptRound
	}{{"after", weatherScript}, {"beside", parallelScript}} {
		for _, stream := range []bool{false, true} {
			name := sc.name + "/new"
			if stream {
				name = sc.name + "/streaming"
			}
			t.Run(name, func(t *testing.T) {
				up := newScriptedProvider(t, sc.script)
				url, a := paymentApp(t, up.URL, "")
				client := goSDK(url)
				p := userParams("premium, and the weather in Paris")
				p.Tools = []openai.ChatCompletionToolUnionParam{weatherTool}
				p.ParallelToolCalls = openai.Bool(false)
				var msg openai.ChatCompletionMessage
				var finish string
				if stream {
					s, err := readGoSDKStream(t, client, p)
					if err != nil {
						t.Fatalf("stream after %d chunks: %v", s.chunks, err)
					}
					if len(s.acc.Choices) != 1 {
						t.Fatalf("accumulated %d choices; want 1", len(s.acc.Choices))
					}
					msg, finish = s.acc.Choices[0].Message, s.acc.Choices[0].FinishReason
					if len(s.calls) != 1 || s.calls[0].Index != 0 || s.calls[0].ID != "call_w" || s.calls[0].Name != "get_weather" || s.calls[0].Arguments != `{"city":"Paris"}` {
						t.Errorf("JustFinishedToolCall %+v; want the bot's call_w alone, at index 0", s.calls)
					}
					if len(s.paygate) != 1 {
						t.Errorf("paygate on %d chunks: %q; want one", len(s.paygate), s.paygate)
					} else {
						orderCreated(t, a, s.paygate[0])
					}
				} else {
					c, err := client.Chat.Completions.New(context.Background(), p)
					if err != nil {
						t.Fatal(err)
					}
					if len(c.Choices) != 1 {
						t.Fatalf("completion %s; want one choice", c.RawJSON())
					}
					msg, finish = c.Choices[0].Message, c.Choices[0].FinishReason
					orderCreated(t, a, c.JSON.ExtraFields["paygate"].Raw())
				}
				if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].ID != "call_w" || msg.ToolCalls[0].Function.Name != "get_weather" ||
					msg.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` || finish != "tool_calls" {
					t.Fatalf("the bot got tool calls %+v, finish %q; want its call_w alone, tool_calls", msg.ToolCalls, finish)
				}
				first := up.requests()[0]
				var sent string
				for _, tool := range gjson.Get(first, "tools").Array() {
					if tool.Get("function.name").Str == "get_weather" {
						sent = tool.Raw
					}
				}
				if want, _ := weatherTool.MarshalJSON(); !jsonEqual(sent, string(want)) || gjson.Get(first, "parallel_tool_calls").Raw != "false" {
					t.Errorf("the provider got the bot's tool %s and parallel_tool_calls %s; want %s and false", sent, gjson.Get(first, "parallel_tool_calls").Raw, want)
				}
				p.Messages = append(p.Messages, msg.ToParam(), openai.ToolMessage("21 degrees", "call_w"))
				c, err := client.Chat.Completions.New(context.Background(), p)
				if err != nil {
					t.Fatal(err)
				}
				if c.Choices[0].Message.Content != "It is 21 degrees." {
					t.Errorf("the follow-up's answer %s; want the weather", c.RawJSON())
				}
				reqs := up.requests()
				var sigs []string
				for _, m := range gjson.Get(reqs[len(reqs)-1], "messages").Array() {
					sigs = append(sigs, messageSignature(m))
				}
				wantSigs := "system user assistant:call_pg_1_0 tool:call_pg_1_0 assistant:call_w tool:call_w"
				if sc.name == "beside" {
					// The kept call of a round mixed with the bot's goes back under
					// an id of paygate's own (no later answer of the provider takes it).
					wantSigs = "system user assistant:call_pg_1_0,call_w tool:call_pg_1_0 tool:call_w"
				}
				if got := strings.Join(sigs, " "); got != wantSigs {
					t.Errorf("the follow-up reached the provider as %q; want %q", got, wantSigs)
				}
				oneOrderOnePrepay(t, a)
			})
		}
	}
}

// jsonEqual says whether two JSON texts hold the same value.
func jsonEqual(a, b string) bool {
	return a != "" && canonJSON(a) == canonJSON(b)
}

func canonJSON(s string) string {
	return gjson.Get(s, "@pretty:{\"sortKeys\":true}").Raw
}

// TestOpenAIGoErrors: paygate's errors reach a Go bot as *openai.Error with
// paygate's status, code and message: a wrong client key (401), a model not
// configured (404), every provider failing (502).
func TestOpenAIGoErrors(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error"}}`)
	}))
	t.Cleanup(up.Close)
	url, _ := paymentApp(t, up.URL, "")
	for _, tc := range []struct {
		name    string
		opts    []option.RequestOption
		model   string
		status  int
		code    string
		message string
	}{
		{"wrong key", []option.RequestOption{option.WithAPIKey("sk-wrong")}, "gpt-4o", 401, "invalid_api_key", "client key"},
		{"unknown model", nil, "gpt-nope", 404, "model_not_found", "gpt-nope"},
		{"providers failing", nil, "gpt-4o", 502, "", "no provider answered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := userParams("hi")
			p.Model = tc.model
			_, err := goSDK(url, tc.opts...).Chat.Completions.New(context.Background(), p)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T); want *openai.Error", err, err)
			}
			raw := gjson.Parse(apiErr.RawJSON())
			if apiErr.StatusCode != tc.status || apiErr.Code != raw.Get("code").Str || apiErr.Message != raw.Get("message").Str ||
				(tc.code != "" && apiErr.Code != tc.code) || !strings.Contains(apiErr.Message, tc.message) {
				t.Errorf("%d code %q message %q (%s); want %d, code %q, a message with %q", apiErr.StatusCode, apiErr.Code, apiErr.Message, apiErr.RawJSON(), tc.status, tc.code, tc.message)
			}
		})
	}
}

// TestOpenAIGoRetriedPurchaseAndHeaders: a non-stream purchase whose round
// after the order fails at the provider is a 5xx, which the SDK sends
// again on its own (its default two retries): the retry gets the order the
// first try made, with its payment parameters; one order and one prepay.
// What the SDK sends beside the body (its X-Stainless-* headers, retry
// count included, a header of the bot's through option.WithHeader, its
// User-Agent, the client key) reaches no provider.
func TestOpenAIGoRetriedPurchaseAndHeaders(t *testing.T) {
	up, firsts, headers := retriedPurchaseProvider(t)
	url, a := paymentApp(t, up, "")
	var resp *http.Response
	c, err := goSDK(url, option.WithMaxRetries(2), option.WithHeader("X-Bot-Trace", "trace-1")).Chat.Completions.New(
		context.Background(), userParams("premium for a month"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if retried := firsts(); retried != 2 {
		t.Fatalf("the provider saw %d first rounds; want 2, the SDK's retry of the failed turn", retried)
	}
	orderCreated(t, a, c.JSON.ExtraFields["paygate"].Raw())
	oneOrderOnePrepay(t, a)
	if resp.Header.Get("X-Paygate-Provider") != "fake" || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("answer headers %v; want X-Paygate-Provider and X-Request-Id", resp.Header)
	}
	for _, h := range headers() {
		for k, v := range h {
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "x-stainless") || lk == "idempotency-key" || lk == "x-wechat-openid" || lk == "x-bot-trace" ||
				(lk == "user-agent" && strings.Contains(strings.Join(v, ""), "OpenAI")) || strings.Contains(strings.Join(v, ""), e2eClientKey) {
				t.Errorf("the bot's %s: %v reached the provider", k, v)
			}
		}
	}
}

// TestOpenAIGoDoesNotRetryAWithdrawnAnswer: a turn whose create_order ran
// beside the bot's call and whose payment exchange the store could not
// keep is withdrawn with a 500 payment_round_not_recorded and
// x-should-retry: false, which openai-go obeys: one try, however many
// retries it may make; the *openai.Error carries the order in its paygate
// member (JSON.ExtraFields), and WeChat Pay holds one order and one prepay.
func TestOpenAIGoDoesNotRetryAWithdrawnAnswer(t *testing.T) {
	url, a, up := withdrawingApp(t, 100)
	p := userParams("premium, and the weather in Paris")
	p.Tools = []openai.ChatCompletionToolUnionParam{weatherTool}
	_, err := goSDK(url, option.WithMaxRetries(3)).Chat.Completions.New(context.Background(), p)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 || apiErr.Code != "payment_round_not_recorded" {
		t.Fatalf("error %v; want paygate's 500 payment_round_not_recorded", err)
	}
	orderCreated(t, a, apiErr.JSON.ExtraFields["paygate"].Raw())
	oneOrderOverTries(t, a, up, 1)
}

// TestOpenAIGoRetryAfter: a provider's rate limit reaches the bot as
// paygate's 429 with Retry-After, which openai-go waits out before its own
// retry (the cool-down over, the retry answered); a wait over a minute
// says x-should-retry: false, and the SDK does not wait an hour inside the
// bot's request: one try, the 429 at once.
func TestOpenAIGoRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		tries      int
	}{{"a second", "1", 2}, {"an hour", "3600", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				if n.Add(1) == 1 {
					w.Header().Set("Retry-After", tc.retryAfter)
					w.WriteHeader(http.StatusTooManyRequests)
					_, _ = io.WriteString(w, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)
					return
				}
				_, _ = io.WriteString(w, helloScript(string(b)).whole)
			}))
			t.Cleanup(up.Close)
			url, _ := paymentApp(t, up.URL, "")
			start := time.Now()
			c, err := goSDK(url, option.WithMaxRetries(2)).Chat.Completions.New(context.Background(), userParams("hi"))
			took := time.Since(start)
			if got := int(n.Load()); got != tc.tries {
				t.Errorf("the provider got %d requests; want %d", got, tc.tries)
			}
			if tc.tries == 2 {
				if err != nil || c.Choices[0].Message.Content != "Hello there." || took < 900*time.Millisecond {
					t.Errorf("after %v: %v; want the retry's answer after paygate's Retry-After", took, err)
				}
				return
			}
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || took > 10*time.Second {
				t.Errorf("after %v: %v; want paygate's 429 at once", took, err)
			}
		})
	}
}

// interleavedScript: a round of three calls, create_order between the
// bot's get_weather (index 0) and get_time (index 2), whose argument
// pieces come interleaved, as parallel calls stream; then the answer once
// the bot's results are in.
func interleavedScript(body string) scriptRound {
	if strings.Contains(body, `"tool_call_id":"call_t"`) {
		return weatherScript(`{"messages":[{"role":"tool","tool_call_id":"call_w2"}]}`)
	}
	const head = `{"id":"r1","object":"chat.completion.chunk","created":1700000001,"model":"m-r1","choices":[{"index":0,"delta":`
	call := func(index, rest string) string {
		return head + `{"tool_calls":[{"index":` + index + `,` + rest + `}]},"finish_reason":null}]}`
	}
	return scriptRound{
		chunks: []string{
			head + `{"role":"assistant","content":null},"finish_reason":null}]}`,
			call("0", `"id":"call_w","type":"function","function":{"name":"get_weather","arguments":""}`),
			call("2", `"id":"call_t","type":"function","function":{"name":"get_time","arguments":"{\"tz\":"}`),
			call("1", `"id":"call_pay1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}`),
			call("0", `"function":{"arguments":"{\"city\":"}`),
			call("2", `"function":{"arguments":"\"CET\"}"}`),
			call("0", `"function":{"arguments":"\"Paris\"}"}`),
			head + `{},"finish_reason":"tool_calls"}]}`,
		},
		whole: `{"id":"r1","object":"chat.completion","created":1700000001,"model":"m-r1","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
			`{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},` +
			`{"id":"call_pay1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` +
			`{"id":"call_t","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"CET\"}"}}]},"finish_reason":"tool_calls"}]}`,
	}
}

// TestOpenAIGoInterleavedCallsAroundAPaymentCall: the bot's two calls
// around create_order, their argument pieces interleaved: the SDK gets
// the two, at indexes 0 and 1, each with its own id, name and arguments
// (the accumulator joins each piece to its call), New and NewStreaming
// alike; the follow-up with both results gets the answer; one order.
func TestOpenAIGoInterleavedCallsAroundAPaymentCall(t *testing.T) {
	timeTool := openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "get_time",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"tz": map[string]any{"type": "string"}}}})
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "new", true: "streaming"}[stream], func(t *testing.T) {
			up := newScriptedProvider(t, interleavedScript)
			url, a := paymentApp(t, up.URL, "")
			client := goSDK(url)
			p := userParams("premium, the weather and the time")
			p.Tools = []openai.ChatCompletionToolUnionParam{weatherTool, timeTool}
			var msg openai.ChatCompletionMessage
			if stream {
				s, err := readGoSDKStream(t, client, p)
				if err != nil {
					t.Fatalf("stream after %d chunks: %v", s.chunks, err)
				}
				msg = s.acc.Choices[0].Message
			} else {
				c, err := client.Chat.Completions.New(context.Background(), p)
				if err != nil {
					t.Fatal(err)
				}
				msg = c.Choices[0].Message
			}
			var got []string
			for _, c := range msg.ToolCalls {
				got = append(got, c.ID+" "+c.Function.Name+" "+c.Function.Arguments)
			}
			if want := `call_w get_weather {"city":"Paris"}|call_t get_time {"tz":"CET"}`; strings.Join(got, "|") != want {
				t.Fatalf("the bot got calls %q; want %q", got, want)
			}
			p.Messages = append(p.Messages, msg.ToParam(), openai.ToolMessage("21 degrees", "call_w"), openai.ToolMessage("14:00", "call_t"))
			c, err := client.Chat.Completions.New(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if c.Choices[0].Message.Content != "It is 21 degrees." {
				t.Errorf("the follow-up's answer %s; want the weather", c.RawJSON())
			}
			oneOrderOnePrepay(t, a)
		})
	}
}

// TestOpenAIGoStreamedWithdrawal: streamed, the withdrawal of a turn whose
// payment exchange the store could not keep comes after the bot's call
// went out: the stream ends with the SDK's *ssestream.StreamError, whose
// event is paygate's error (code payment_round_not_recorded), the chunk
// before it carries the order in paygate, and no finish reason told the
// accumulator the round was complete; one order.
func TestOpenAIGoStreamedWithdrawal(t *testing.T) {
	url, a, up := withdrawingApp(t, 100)
	p := userParams("premium, and the weather in Paris")
	p.Tools = []openai.ChatCompletionToolUnionParam{weatherTool}
	s, err := readGoSDKStream(t, goSDK(url, option.WithMaxRetries(3)), p)
	var se *ssestream.StreamError
	if !errors.As(err, &se) || gjson.GetBytes(se.Event.Data, "error.code").Str != "payment_round_not_recorded" {
		t.Fatalf("stream error %v; want paygate's payment_round_not_recorded event", err)
	}
	if len(s.paygate) != 1 {
		t.Fatalf("paygate on %d chunks; want one", len(s.paygate))
	}
	orderCreated(t, a, s.paygate[0])
	// JustFinishedToolCall fired for call_w on that chunk, before the
	// error: a bot runs its calls once the stream ended without an error
	// and with finish tool_calls (README).
	if s.acc.Choices[0].FinishReason != "" {
		t.Errorf("finish %q; want none, the round withdrawn", s.acc.Choices[0].FinishReason)
	}
	oneOrderOverTries(t, a, up, 1)
}

// TestOpenAIGoUploads: openai-go's multipart forms (a transcription, which
// names a model, and a file upload, which does not) are read by paygate as
// any form and reach the provider whole: the model rewritten to the
// target's, the file's name, type and bytes as the SDK sent them.
func TestOpenAIGoUploads(t *testing.T) {
	type got struct {
		path   string
		fields map[string]string
		file   string
		name   string
		ctype  string
	}
	var mu sync.Mutex
	var seen []got
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := got{path: r.URL.Path, fields: map[string]string{}}
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err == nil {
			mr := multipart.NewReader(r.Body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				b, _ := io.ReadAll(p)
				if p.FileName() != "" {
					g.file, g.name, g.ctype = string(b), p.FileName(), p.Header.Get("Content-Type")
				} else {
					g.fields[p.FormName()] = string(b)
				}
			}
		}
		mu.Lock()
		seen = append(seen, g)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/files") {
			_, _ = io.WriteString(w, `{"id":"file-1","object":"file","bytes":5,"created_at":1,"filename":"data.jsonl","purpose":"batch","status":"processed"}`)
			return
		}
		_, _ = io.WriteString(w, `{"text":"hello there"}`)
	}))
	t.Cleanup(up.Close)
	url, _ := paymentApp(t, up.URL, "")
	client := goSDK(url)
	audio := "\x00\x00\x00\x20ftypM4A \r\n--x\xff"
	tr, err := client.Audio.Transcriptions.New(context.Background(), openai.AudioTranscriptionNewParams{
		Model: "gpt-4o", File: openai.File(strings.NewReader(audio), "voice.m4a", "audio/mp4"),
	})
	if err != nil {
		t.Fatalf("transcription: %v", err)
	}
	if tr.Text != "hello there" {
		t.Errorf("transcription %+v", tr)
	}
	f, err := client.Files.New(context.Background(), openai.FileNewParams{
		File: openai.File(strings.NewReader("{}\n{}\n"), "data.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch,
	})
	if err != nil {
		t.Fatalf("file upload: %v", err)
	}
	if f.ID != "file-1" {
		t.Errorf("file %+v", f)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("the provider got %d requests; want 2", len(seen))
	}
	if g := seen[0]; g.path != "/v1/audio/transcriptions" || g.fields["model"] != "openai/gpt-4o" || g.file != audio || g.name != "voice.m4a" || g.ctype != "audio/mp4" {
		t.Errorf("the transcription reached the provider as %+v", g)
	}
	if g := seen[1]; g.path != "/v1/files" || g.fields["purpose"] != "batch" || g.file != "{}\n{}\n" || g.name != "data.jsonl" {
		t.Errorf("the upload reached the provider as %+v", g)
	}
}
