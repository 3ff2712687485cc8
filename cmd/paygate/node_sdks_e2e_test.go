package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
)

// What bots written with the two most used Node LLM SDKs besides openai do,
// through the binary's application against a scripted provider and the
// WeChat Pay simulator: the Vercel AI SDK (`ai` with `@ai-sdk/openai`'s
// openai.chat model, Chat Completions, or `@ai-sdk/openai-compatible`'s;
// test/node/aisdk.mjs) and
// LangChain.js (`@langchain/openai`'s ChatOpenAI; test/node/langchain.mjs).
// The AI SDK validates every chunk with its own schema, always streams
// with stream_options.include_usage, runs the calls of the tools it was
// given in a loop of steps, and retries a 408/409/429/5xx on its own;
// LangChain retries any error but a 4xx it lists; neither reads
// x-should-retry. Subtests run in parallel (each its own application, two
// at a time under -parallel): most of their time is node starting.

// jsClient is a Node LLM SDK under test/node that a bot may be written
// with, as its script drives it. The scripts print the same members.
type jsClient struct {
	name, script string
	env          []string // the script's settings
	pkgs         []string // under node_modules
	// toolsFinish is the finish reason the SDK reports for a round that
	// ends in tool calls.
	toolsFinish string
	// retriesEarlyStreamError: the SDK sends a streamed request again on
	// its own when the stream's first event is an error.
	retriesEarlyStreamError bool
}

var (
	aiSDK = jsClient{"ai-sdk", "aisdk.mjs", nil, []string{"ai", "@ai-sdk/openai", "@ai-sdk/openai-compatible", "zod"}, "tool-calls", true}
	// aiSDKCompatible: the AI SDK's provider for OpenAI-compatible servers,
	// whose chunk schema and tool-call tracker are its own (it reads an
	// early error event as the stream's, not as a failed request).
	aiSDKCompatible = jsClient{"ai-sdk-compatible", "aisdk.mjs", []string{"PAYGATE_AISDK_PROVIDER=compatible"},
		[]string{"ai", "@ai-sdk/openai", "@ai-sdk/openai-compatible", "zod"}, "tool-calls", false}
	langChain = jsClient{"langchain", "langchain.mjs", nil, []string{"@langchain/openai", "@langchain/core"}, "tool_calls", false}
	jsClients = []jsClient{aiSDK, aiSDKCompatible, langChain}
	// jsRetriers: a client of each retry policy (aiSDKCompatible's is the
	// AI SDK's, in the ai package).
	jsRetriers = []jsClient{aiSDK, langChain}
)

// chat runs the client's script in mode against the application at url as
// the signed-in testOpenID, with env added to its environment (a later
// value wins), and returns what it printed.
func (c jsClient) chat(t *testing.T, url, mode string, env ...string) gjson.Result {
	t.Helper()
	dir, _ := filepath.Abs("../../test/node")
	for _, pkg := range c.pkgs {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("the Node package %s is missing (%v): run `npm ci --prefix test/node`", pkg, err)
			}
			t.Skipf("the Node package %s is not installed: run `npm ci --prefix test/node`", pkg)
		}
	}
	cmd := exec.Command("node", c.script, mode)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PAYGATE_URL="+url+"/v1", "PAYGATE_KEY="+e2eClientKey, "PAYGATE_MODEL=gpt-4o", "PAYGATE_OPENID="+testOpenID), append(c.env, env...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s %s: %v %s", c.script, mode, err, out)
	}
	if !json.Valid(out) {
		t.Fatalf("node %s %s printed %q", c.script, mode, out)
	}
	return gjson.ParseBytes(out)
}

// chatScripted runs the client's script in mode against an application in
// front of a provider answering as script does, and returns what it
// printed, the application and the provider; an error the SDK raised fails
// the test.
func (c jsClient) chatScripted(t *testing.T, script func(string) scriptRound, mode string) (gjson.Result, *app, *scriptedProvider) {
	t.Helper()
	up := newScriptedProvider(t, script)
	url, a := paymentApp(t, up.URL, "")
	res := c.chat(t, url, mode)
	if res.Get("error").Exists() {
		t.Fatalf("the SDK raised %s", res.Raw)
	}
	return res, a, up
}

// helloScript answers every round with text alone, and usage.
func helloScript(string) scriptRound {
	const head = `{"id":"chatcmpl-H","object":"chat.completion.chunk","created":1700000000,"model":"m-hello","choices":[`
	const usage = `"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}`
	return scriptRound{
		chunks: []string{
			head + `{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`,
			head + `{"index":0,"delta":{"content":" there."},"finish_reason":null}]}`,
			head + `{"index":0,"delta":{},"finish_reason":"stop"}]}`,
			`{"id":"chatcmpl-H","object":"chat.completion.chunk","created":1700000000,"model":"m-hello","choices":[],` + usage + `}`,
		},
		whole: `{"id":"chatcmpl-H","object":"chat.completion","created":1700000000,"model":"m-hello","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there."},"finish_reason":"stop"}],` + usage + `}`,
	}
}

// TestNodeSDKsTextAndPurchase: each SDK, streaming and not (the AI SDK's
// generateText and streamText, ChatOpenAI's invoke and stream), reads a plain
// answer, and a purchase paygate continued past the model's create_order
// (two rounds stitched into one answer, one stream): the text of both
// rounds, finish reason stop (never tool-calls for paygate's own call),
// usage the sum of the rounds, one step with no tool call, and the
// paygate member with the order's payment parameters where a bot reads it
// (the raw answer: the AI SDK's step response body or raw chunks,
// LangChain's __raw_response).
func TestNodeSDKsTextAndPurchase(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(string) scriptRound
		text   string
		usage  string // input/output/total
		orders int
	}{
		{"text", helloScript, "Hello there.", "7/3/10", 0},
		{"purchase", purchaseScript, "Let me set that up. Your order is ready: tap Pay to finish.", "250/30/280", 1},
	} {
		for _, c := range jsClients {
			for _, mode := range []string{"text", "text:stream"} {
				t.Run(c.name+"/"+tc.name+"/"+mode, func(t *testing.T) {
					t.Parallel()
					res, a, up := c.chatScripted(t, tc.script, mode)
					usage := res.Get("usage.input").Raw + "/" + res.Get("usage.output").Raw + "/" + res.Get("usage.total").Raw
					if res.Get("text").Str != tc.text || res.Get("finish").Str != "stop" || usage != tc.usage {
						t.Errorf("the SDK read %q, finish %q, usage %s; want %q, stop, %s (%s)", res.Get("text").Str, res.Get("finish").Str, usage, tc.text, tc.usage, res.Raw)
					}
					if steps := res.Get("steps").Array(); len(steps) != 1 || len(steps[0].Get("toolCalls").Array()) != 0 {
						t.Errorf("steps %s; want one, without tool calls", res.Get("steps").Raw)
					}
					if n := a.sim.OrderCount(); n != tc.orders {
						t.Errorf("WeChat Pay holds %d orders; want %d", n, tc.orders)
					}
					acts := res.Get("paygate.actions").Array()
					if tc.orders == 1 && (len(acts) != 1 || acts[0].Get("type").Str != "order_created" ||
						acts[0].Get("order.order_no").Str != lastOrderNo(t, a.sim) || acts[0].Get("request_payment.paySign").Str == "") {
						t.Errorf("paygate %s; want the order's order_created with its payment parameters", res.Get("paygate").Raw)
					}
					if strings.HasSuffix(mode, ":stream") && !strings.Contains(up.requests()[0], `"stream_options":{"include_usage":true}`) {
						t.Errorf("the provider's first request %.300s; want the SDK's stream_options", up.requests()[0])
					}
				})
			}
		}
	}
}

// parallelScript: create_order beside the bot's get_weather in one round
// (the bot's call second, its arguments in two pieces), then the answer
// once the bot's result is in.
func parallelScript(body string) scriptRound {
	msgs := gjson.Get(body, "messages").Array()
	if msgs[len(msgs)-1].Get("tool_call_id").Str == "call_w" {
		return weatherScript(body)
	}
	const head = `{"id":"r1","object":"chat.completion.chunk","created":1700000001,"model":"m-r1","choices":[{"index":0,"delta":`
	const usage = `"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}`
	const pay = `{"index":0,"id":"call_pay1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
	return scriptRound{
		chunks: []string{
			head + `{"role":"assistant","content":"Ordering and checking. "},"finish_reason":null}]}`,
			head + `{"tool_calls":[` + pay + `]},"finish_reason":null}]}`,
			head + `{"tool_calls":[{"index":1,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`,
			head + `{"tool_calls":[{"index":1,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}`,
			head + `{"tool_calls":[{"index":1,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}`,
			head + `{},"finish_reason":"tool_calls"}]}`,
			`{"id":"r1","object":"chat.completion.chunk","created":1700000001,"model":"m-r1","choices":[],` + usage + `}`,
		},
		whole: `{"id":"r1","object":"chat.completion","created":1700000001,"model":"m-r1","choices":[{"index":0,"message":{"role":"assistant","content":"Ordering and checking. ","tool_calls":[` +
			strings.Replace(pay, `"index":0,`, "", 1) + `,{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],` + usage + `}`,
	}
}

// TestNodeSDKsBotToolBesidePaymentCall: the bot's own tool (get_weather, run
// by the SDK's step loop) called after create_order, in the round after
// it, and beside it, in the same round. The SDK sees exactly the bot's
// call (id, name, arguments its schema accepts), never a payment tool
// (which its loop would report as a tool-error, no such tool), runs it
// once, and its follow-up gets the answer; one order. (The AI SDK's step
// loop runs the call; for LangChain the script's loop does.) With a strict
// schema for the bot's tool, parallel_tool_calls false and a token cap
// (opts), members the SDKs send, the same.
func TestNodeSDKsBotToolBesidePaymentCall(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(string) scriptRound
		text   string
		modes  []string
	}{
		{"after", weatherScript, "Ordering. Checking the weather. ", []string{"mixed", "mixed:stream"}},
		{"beside", parallelScript, "Ordering and checking. ", []string{"mixed", "mixed:stream", "mixed:stream:opts"}},
	} {
		for _, c := range jsClients {
			for _, mode := range tc.modes {
				t.Run(c.name+"/"+tc.name+"/"+mode, func(t *testing.T) {
					t.Parallel()
					res, a, up := c.chatScripted(t, tc.script, mode)
					steps := res.Get("steps").Array()
					if len(steps) != 2 {
						t.Fatalf("steps %s; want two: the bot's call, the answer", res.Get("steps").Raw)
					}
					if got := steps[0].Get("toolCalls").Raw; got != `[{"id":"call_w","name":"get_weather","input":{"city":"Paris"}}]` {
						t.Errorf("the first step's tool calls %s; want the bot's get_weather alone", got)
					}
					if steps[0].Get("text").Str != tc.text || steps[0].Get("finish").Str != c.toolsFinish || steps[0].Get("errors").Raw != "[]" {
						t.Errorf("the first step %s; want text %q, finish %s, no tool-error", steps[0].Raw, tc.text, c.toolsFinish)
					}
					if res.Get("text").Str != "It is 21 degrees." || res.Get("finish").Str != "stop" || res.Get("called").Raw != `["Paris"]` {
						t.Errorf("the SDK ended with %q (%s) after running get_weather for %s; want the answer after one call for Paris",
							res.Get("text").Str, res.Get("finish").Str, res.Get("called").Raw)
					}
					if n := a.sim.OrderCount(); n != 1 {
						t.Errorf("WeChat Pay holds %d orders; want 1", n)
					}
					if acts := res.Get("paygate.actions").Array(); len(acts) != 1 || acts[0].Get("type").Str != "order_created" || acts[0].Get("request_payment.paySign").Str == "" {
						t.Errorf("paygate %s; want the order's order_created with its payment parameters", res.Get("paygate").Raw)
					}
					reqs := up.requests()
					if strings.HasSuffix(mode, ":opts") {
						// The bot's strict schema, parallel_tool_calls and
						// token cap reach the provider as sent.
						first := gjson.Parse(reqs[0])
						if first.Get(`tools.#(function.name=="get_weather").function.strict`).Raw != "true" || first.Get("parallel_tool_calls").Raw != "false" ||
							first.Get("max_tokens").Raw != "500" && first.Get("max_completion_tokens").Raw != "500" {
							t.Errorf("the provider's first request %.600s; want get_weather strict, parallel_tool_calls false, the cap 500", reqs[0])
						}
					}
					var sigs []string
					for _, m := range gjson.Get(reqs[len(reqs)-1], "messages").Array() {
						sigs = append(sigs, messageSignature(m))
					}
					kept := "tool:call_pg_1_0" // the payment call, kept under paygate's id
					if got := strings.Join(sigs, " "); !strings.Contains(got, kept) || !strings.HasSuffix(got, "tool:call_w") {
						t.Errorf("the bot's follow-up reached the provider as %q; want the payment exchange in place, then the bot's result", got)
					}
				})
			}
		}
	}
}

// TestNodeSDKsErrors: a bad key, an unknown model and a provider that fails
// every attempt reach the bot as the SDK's error (the AI SDK's APICallError) with paygate's
// status and message, streamed or not (the provider's text is not passed
// on: paygate's message names the provider and its failure).
func TestNodeSDKsErrors(t *testing.T) {
	failing := failingProvider(t, "upstream overloaded")
	answering := newScriptedProvider(t, helloScript)
	for _, tc := range []struct {
		name     string
		provider string // its URL
		env      []string
		status   int64
		message  string // a part of the error's message
	}{
		{"bad key", answering.URL, []string{"PAYGATE_KEY=sk-wrong"}, 401, "API key"},
		{"unknown model", answering.URL, []string{"PAYGATE_MODEL=no-such-model"}, 404, "no-such-model"},
		{"provider failing", failing.URL, nil, 502, "no provider answered: fake: upstream_server_error (HTTP 500)"},
	} {
		for _, c := range jsRetriers {
			for _, mode := range []string{"text", "text:stream"} {
				t.Run(c.name+"/"+tc.name+"/"+mode, func(t *testing.T) {
					t.Parallel()
					url, _ := paymentApp(t, tc.provider, "") // its own breakers
					res := c.chat(t, url, mode, tc.env...)
					if c.script == aiSDK.script && res.Get("name").Str != "AI_APICallError" || res.Get("status").Int() != tc.status || !strings.Contains(res.Get("message").Str, tc.message) {
						t.Errorf("the SDK raised %s; want its APICallError, %d, with a message holding %q", res.Raw, tc.status, tc.message)
					}
				})
			}
		}
	}
}

// exchangeWritesFail fails the store's exchange writes while left is
// above zero, counting it down.
type exchangeWritesFail struct {
	store.Store
	left *atomic.Int32
}

func (s exchangeWritesFail) PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if s.left.Add(-1) >= 0 {
		return store.ErrUnavailable
	}
	return s.Store.PutExchange(ctx, key, data, ttl)
}

// withdrawingApp is the app on a provider of parallelScript (create_order
// beside the bot's get_weather) whose store fails its first failures
// exchange writes: each such turn's answer is withdrawn
// (payment_round_not_recorded).
func withdrawingApp(t *testing.T, failures int32) (url string, a *app, up *scriptedProvider) {
	up = newScriptedProvider(t, parallelScript)
	left := new(atomic.Int32)
	left.Store(failures)
	url, a = paymentApp(t, up.URL, "", withStoreWrap(func(st store.Store) store.Store { return exchangeWritesFail{st, left} }))
	return url, a, up
}

// TestNodeSDKsRetriesAWithdrawnAnswer: a turn whose create_order ran beside
// the bot's call and whose payment exchange the store could not keep is
// withdrawn with a 500 payment_round_not_recorded and x-should-retry:
// false, which neither the AI SDK nor LangChain reads: each sends the
// request again on its own (maxRetries). The retry is a fresh turn of the
// same user message whose model calls create_order again: it gets the
// order the first try made, one order and one prepay at WeChat Pay,
// whether the store is back (the retry's answer hands the bot its call,
// which the bot runs) or still failing (the SDK's last error, with the
// order in its body's paygate). Streamed, the withdrawal comes after the
// bot's calls went out: the SDK raises it, does not retry, and the bot's
// loop does not run the call.
func TestNodeSDKsRetriesAWithdrawnAnswer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     string
		failures int32
		tries    int    // the SDK's requests
		code     string // the error's code; "": the answer
		called   string
	}{
		{"store back for the retry", "mixed", 1, 2, "", `["Paris"]`},
		{"store still failing", "mixed", 100, 2, "payment_round_not_recorded", `[]`},
		{"streamed", "mixed:stream", 1, 1, "payment_round_not_recorded", `[]`},
	} {
		for _, c := range jsRetriers {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				url, a, up := withdrawingApp(t, tc.failures)
				res := c.chat(t, url, tc.mode, "PAYGATE_RETRIES=1")
				if res.Get("called").Raw != tc.called {
					t.Errorf("the bot's loop ran get_weather for %s; want %s (%s)", res.Get("called").Raw, tc.called, res.Raw)
				}
				switch {
				case tc.code == "" && (res.Get("error").Exists() || res.Get("text").Str != "It is 21 degrees."):
					t.Errorf("the SDK ended with %s; want the retry's answer", res.Raw)
				case tc.code != "" && !strings.Contains(res.Get("message").Str, "answer is withdrawn: do not run its tool calls"):
					t.Errorf("the SDK ended with %s; want paygate's withdrawal", res.Raw)
				}
				if tc.code != "" {
					paygate := res.Get("paygate")
					if tc.mode == "mixed:stream" {
						paygate = res.Get("paygatePart") // the chunk before the error event
					}
					if acts := paygate.Get("actions").Array(); len(acts) != 1 || acts[0].Get("order.order_no").Str != lastOrderNo(t, a.sim) || acts[0].Get("request_payment.paySign").Str == "" {
						t.Errorf("the withdrawn answer's paygate %s; want the order's order_created with its payment parameters", paygate.Raw)
					}
				}
				oneOrderOverTries(t, a, up, tc.tries)
			})
		}
	}
}

// oneOrderOverTries checks that up got tries first rounds (the SDK's tries)
// and WeChat Pay one order and one prepay.
func oneOrderOverTries(t *testing.T, a *app, up *scriptedProvider, tries int) {
	t.Helper()
	firsts := 0
	for _, r := range up.requests() {
		if gjson.Get(r, "messages.@reverse.0.role").Str == "user" {
			firsts++
		}
	}
	if firsts != tries {
		t.Errorf("the provider got %d first rounds; want %d (the SDK's tries)", firsts, tries)
	}
	oneOrderOnePrepay(t, a)
}

// TestNodeSDKsRetriesAFailedStreamBeforeItsText: a streamed purchase whose
// first round is create_order alone (no text) and whose next round finds
// no provider: paygate's stream, begun with a 200, ends in an error event
// before any text. The AI SDK reads an error event before the first output
// as a failed request and retries it on its own (a 5xx by the error's
// code), where its openai-compatible provider, LangChain and the openai
// SDKs, past the 200, do not. The
// retry's create_order gets the first try's order: one order, one prepay;
// the SDK raises paygate's error in the end.
func TestNodeSDKsRetriesAFailedStreamBeforeItsText(t *testing.T) {
	for _, c := range jsClients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			up := newScriptedProvider(t, func(body string) scriptRound {
				if strings.Contains(body, `"role":"tool"`) {
					return scriptRound{chunks: []string{`{"error":{"message":"upstream overloaded","type":"server_error"}}`}}
				}
				const head = `{"id":"r1","object":"chat.completion.chunk","created":1700000001,"model":"m-r1","choices":[{"index":0,"delta":`
				return scriptRound{chunks: []string{
					head + `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_pay1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}`,
					head + `{},"finish_reason":"tool_calls"}]}`,
				}}
			})
			url, a := paymentApp(t, up.URL, "")
			res := c.chat(t, url, "text:stream", "PAYGATE_RETRIES=1")
			tries := 1
			if c.retriesEarlyStreamError {
				tries = 2
			}
			if !res.Get("error").Exists() || !strings.Contains(res.Get("message").Str, "no provider answered") {
				t.Errorf("the SDK ended with %s; want paygate's error", res.Raw)
			}
			oneOrderOverTries(t, a, up, tries)
		})
	}
}
