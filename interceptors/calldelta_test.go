package interceptors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"
)

// callPathDiff feeds the rounds of a turn to two captures, one with the
// call path and one whose tool-call deltas all take the slow path
// (slowCalls), set up bare and then as the turn sets them up (asTurn), and
// fails at the first difference: a returned chunk (byte
// for byte), an error, Break's chunk, what they hold (Held, Calls,
// RoleSent) or a round's result. Round 0 starts under fallback, later
// rounds under "turn-1" and created. It returns how many chunks took the
// call path: those the slow-only capture read on its slow path and the
// other did not.
func callPathDiff(t testing.TB, fallback string, created int64, rounds ...[]string) int {
	t.Helper()
	taken := callPathDiffWith(t, nil, fallback, created, rounds...)
	callPathDiffWith(t, asTurn, fallback, created, rounds...)
	return taken
}

// asTurn sets a capture up as the turn loop does.
func asTurn(c *Capture) {
	c.GiveCallIDs()
	c.PaymentNames(paymentNames...)
	c.BotNames("get_weather", "get_time", "query_order_history")
}

// madeIDs matches the ids MadeCallID makes, random, which the two captures
// of callPathDiffWith make differently.
var madeIDs = regexp.MustCompile(`call_pg[0-9a-f]{24}`)

// callPathDiffWith is callPathDiff with both captures set up by setup
// first (nil for none): with GiveCallIDs, the ids they make are compared
// as made, not by their random digits.
func callPathDiffWith(t testing.TB, setup func(*Capture), fallback string, created int64, rounds ...[]string) int {
	t.Helper()
	fast, slow := NewCapture(isPaymentName), NewCapture(isPaymentName)
	slow.slowCalls = true
	if setup != nil {
		setup(fast)
		setup(slow)
	}
	made := func(b []byte) []byte { return madeIDs.ReplaceAll(b, []byte("call_pg*")) }
	madeCalls := func(r *RoundResult) {
		for _, calls := range [][]ToolCall{r.ClientCalls, r.Sent.Calls} {
			for i := range calls {
				calls[i].ID = string(made([]byte(calls[i].ID)))
			}
		}
		r.LateCalls = made(r.LateCalls)
	}
	taken := 0
	for r, chunks := range rounds {
		for _, c := range []*Capture{fast, slow} {
			if r == 0 {
				c.StartRound(0, fallback, 0)
			} else {
				c.StartRound(r, "turn-1", created)
			}
		}
		for _, ch := range chunks {
			fs, ss := fast.slowSeen, slow.slowSeen
			out, err := fast.Process([]byte(ch))
			out = bytes.Clone(out)
			sout, serr := slow.Process([]byte(ch))
			if out != nil {
				out, sout = made(out), made(bytes.Clone(sout))
			}
			if err != serr || !bytes.Equal(out, sout) || (out == nil) != (sout == nil) {
				t.Fatalf("round %d, chunk %s:\ncall path %s (%v)\nslow path %s (%v)", r, ch, out, err, sout, serr)
			}
			if fb, sb := string(fast.Break()), string(slow.Break()); fb != sb {
				t.Fatalf("round %d, chunk %s: Break %s; slow path's %s", r, ch, fb, sb)
			}
			if fast.Held() != slow.Held() || fast.Calls() != slow.Calls() || fast.RoleSent() != slow.RoleSent() {
				t.Fatalf("round %d, chunk %s: held %d, calls %d, role %v; slow path's %d, %d, %v", r, ch,
					fast.Held(), fast.Calls(), fast.RoleSent(), slow.Held(), slow.Calls(), slow.RoleSent())
			}
			if fast.slowSeen == fs && slow.slowSeen > ss {
				taken++
			}
		}
		fr, sr := fast.EndRound(), slow.EndRound()
		madeCalls(&fr)
		madeCalls(&sr)
		if !reflect.DeepEqual(fr, sr) {
			t.Fatalf("round %d: call path's result %+v\nslow path's %+v", r, fr, sr)
		}
	}
	return taken
}

// callShape is a provider's tool round as it streams it: the envelope of
// every chunk around its delta, the delta that starts a call and the one
// that continues it, and the chunks after the calls.
type callShape struct {
	name  string
	chunk func(delta string) string
	// start and cont render a call's delta: upstream index, id, name and
	// a piece of its arguments (raw JSON string contents).
	start, cont func(idx int, id, name, args string) string
	after       []string
	// path: the continuations take the call path once the first of them
	// has shown the envelope.
	path bool
}

func openAIEnvelope(head, tail string) func(string) string {
	return func(delta string) string { return head + delta + tail }
}

// callShapes are providers' tool rounds as captured streams, provider
// documentation and issue threads show them.
var callShapes = []callShape{
	{
		name: "OpenAI",
		chunk: openAIEnvelope(`{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[{"index":0,"delta":`,
			`,"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"k3J9"}`),
		start: func(idx int, id, name, args string) string {
			return `{"role":"assistant","content":null,"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":"` + args + `"}}],"refusal":null}`
		},
		cont: func(idx int, _, _, args string) string {
			return `{"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"function":{"arguments":"` + args + `"}}]}`
		},
		after: []string{
			`{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null,"obfuscation":"Zq"}`,
			`{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[],"usage":{"prompt_tokens":42,"completion_tokens":20,"total_tokens":62},"obfuscation":"a1"}`,
		},
		path: true,
	},
	{
		name:  "DeepSeek",
		chunk: openAIEnvelope(`{"id":"5f3c9e1a-7b2d-4c8e-9a10-3d2b1c0e9f87","object":"chat.completion.chunk","created":1752019600,"model":"deepseek-chat","system_fingerprint":"fp_8802369eaa_prod0623_fp8_kvcache","choices":[{"index":0,"delta":`, `,"logprobs":null,"finish_reason":null}]}`),
		start: func(idx int, id, name, args string) string {
			return `{"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":"` + args + `"}}]}`
		},
		cont: func(idx int, _, _, args string) string {
			return `{"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"function":{"arguments":"` + args + `"}}]}`
		},
		after: []string{`{"id":"5f3c9e1a-7b2d-4c8e-9a10-3d2b1c0e9f87","object":"chat.completion.chunk","created":1752019600,"model":"deepseek-chat","system_fingerprint":"fp_8802369eaa_prod0623_fp8_kvcache","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":42,"completion_tokens":20,"total_tokens":62,"prompt_tokens_details":{"cached_tokens":32},"prompt_cache_hit_tokens":32,"prompt_cache_miss_tokens":10}}`},
		path:  true,
	},
	{
		name:  "Qwen",
		chunk: openAIEnvelope(`{"choices":[{"delta":`, `,"finish_reason":null,"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1752019700,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893"}`),
		start: func(idx int, id, name, args string) string {
			return `{"content":null,"role":null,"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":"` + args + `"}}]}`
		},
		cont: func(idx int, _, _, args string) string {
			return `{"content":null,"role":null,"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"","type":"function","function":{"name":"","arguments":"` + args + `"}}]}`
		},
		after: []string{
			`{"choices":[{"finish_reason":"tool_calls","delta":{"content":null},"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1752019700,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893"}`,
			`{"choices":[],"object":"chat.completion.chunk","usage":{"prompt_tokens":42,"completion_tokens":20,"total_tokens":62},"created":1752019700,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893"}`,
		},
		path: true,
	},
	{
		// OpenRouter repeats the role, a null content and the type in
		// every delta.
		name:  "OpenRouter",
		chunk: openAIEnvelope(`{"id":"gen-1752019500-Ab3dEf","provider":"Anthropic","model":"anthropic/claude-sonnet-4","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":`, `,"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`),
		start: func(idx int, id, name, args string) string {
			return `{"role":"assistant","content":null,"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":"` + args + `"}}]}`
		},
		cont: func(idx int, _, _, args string) string {
			return `{"role":"assistant","content":null,"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"type":"function","function":{"arguments":"` + args + `"}}]}`
		},
		after: []string{
			`{"id":"gen-1752019500-Ab3dEf","provider":"Anthropic","model":"anthropic/claude-sonnet-4","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"tool_calls","native_finish_reason":"tool_use","logprobs":null}]}`,
			`{"id":"gen-1752019500-Ab3dEf","provider":"Anthropic","model":"anthropic/claude-sonnet-4","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}],"usage":{"prompt_tokens":980,"completion_tokens":71,"total_tokens":1051,"cost":0.003999,"is_byok":false}}`,
		},
		path: true,
	},
	{
		// A relay of Anthropic's API that puts the type and the call's id
		// on every delta.
		name:  "AnthropicRelayID",
		chunk: openAIEnvelope(`{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","object":"chat.completion.chunk","created":1752019900,"model":"claude-sonnet-4-20250514","choices":[{"index":0,"delta":`, `,"finish_reason":null}]}`),
		start: func(idx int, id, name, args string) string {
			return `{"role":"assistant","tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":"` + args + `"}}]}`
		},
		cont: func(idx int, id, _, args string) string {
			return `{"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"` + id + `","type":"function","function":{"arguments":"` + args + `"}}]}`
		},
		after: []string{`{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","object":"chat.completion.chunk","created":1752019900,"model":"claude-sonnet-4-20250514","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":120,"completion_tokens":40,"total_tokens":160}}`},
		path:  true,
	},
	{
		// One that also repeats the name, and an empty content.
		name:  "AnthropicRelayIDName",
		chunk: openAIEnvelope(`{"id":"chatcmpl-7f1e","object":"chat.completion.chunk","created":1752019900,"model":"claude-3-7-sonnet","choices":[{"index":0,"delta":`, `,"finish_reason":null}]}`),
		start: func(idx int, id, name, args string) string {
			return `{"role":"assistant","content":"","tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":"` + args + `"}}]}`
		},
		cont: func(idx int, id, name, args string) string {
			return `{"content":"","tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":"` + args + `"}}]}`
		},
		after: []string{`{"id":"chatcmpl-7f1e","object":"chat.completion.chunk","created":1752019900,"model":"claude-3-7-sonnet","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":120,"completion_tokens":40,"total_tokens":160}}`},
		path:  true,
	},
	{
		// Azure names the function before the index, with a content
		// filter's results in every choice.
		name:  "Azure",
		chunk: openAIEnvelope(`{"choices":[{"content_filter_results":{},"delta":`, `,"finish_reason":null,"index":0,"logprobs":null}],"created":1752020000,"id":"chatcmpl-AzQ9vT3mK2","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0"}`),
		start: func(idx int, id, name, args string) string {
			return `{"content":null,"refusal":null,"role":"assistant","tool_calls":[{"function":{"arguments":"` + args + `","name":"` + name + `"},"id":"` + id + `","index":` + strconv.Itoa(idx) + `,"type":"function"}]}`
		},
		cont: func(idx int, _, _, args string) string {
			return `{"tool_calls":[{"function":{"arguments":"` + args + `"},"index":` + strconv.Itoa(idx) + `}]}`
		},
		after: []string{`{"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"tool_calls","index":0,"logprobs":null}],"created":1752020000,"id":"chatcmpl-AzQ9vT3mK2","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_ee1d74bde0","usage":null}`},
		path:  true,
	},
	{
		// A local server that sends no id at all.
		name:  "NoID",
		chunk: openAIEnvelope(`{"object":"chat.completion.chunk","created":1752020100,"model":"llama","choices":[{"index":0,"delta":`, `,"finish_reason":null}]}`),
		start: func(idx int, id, name, args string) string {
			return `{"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":"` + args + `"}}]}`
		},
		cont: func(idx int, _, _, args string) string {
			return `{"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"function":{"arguments":"` + args + `"}}]}`
		},
		after: []string{`{"object":"chat.completion.chunk","created":1752020100,"model":"llama","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`},
		path:  true,
	},
	{
		// The id after the delta, with another "id" before it in an
		// object of the provider's: topID walks to the top-level one
		// (topAfter), so the envelope is learnt and the turn's id goes
		// there. Found by a search, the nested one was stamped, and the
		// envelope was not learnt.
		name:  "NestedIDBeforeID",
		chunk: openAIEnvelope(`{"choices":[{"delta":`, `,"finish_reason":null,"index":0}],"created":1752019700,"x_meta":{"id":"req_01j9"},"model":"m","id":"chatcmpl-nested"}`),
		start: func(idx int, id, name, args string) string {
			return `{"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":"` + args + `"}}]}`
		},
		cont: func(idx int, _, _, args string) string {
			return `{"tool_calls":[{"index":` + strconv.Itoa(idx) + `,"function":{"arguments":"` + args + `"}}]}`
		},
		after: []string{`{"choices":[{"delta":{},"finish_reason":"tool_calls","index":0}],"created":1752019700,"x_meta":{"id":"req_01j9"},"model":"m","id":"chatcmpl-nested"}`},
		path:  true,
	},
	{
		// Gemini sends a call whole in one delta, without an index.
		name:  "Gemini",
		chunk: openAIEnvelope(`{"choices":[{"delta":`, `,"index":0}],"created":1752019800,"id":"kT5taJjQGcuMnvgPq7Kq4A8","model":"gemini-2.5-flash","object":"chat.completion.chunk"}`),
		start: func(_ int, id, name, args string) string {
			return `{"role":"assistant","tool_calls":[{"function":{"arguments":"` + args + `","name":"` + name + `"},"id":"` + id + `","type":"function"}]}`
		},
		after: []string{`{"choices":[{"delta":{"role":"assistant"},"finish_reason":"stop","index":0}],"created":1752019800,"id":"kT5taJjQGcuMnvgPq7Kq4A8","model":"gemini-2.5-flash","object":"chat.completion.chunk","usage":{"completion_tokens":40,"prompt_tokens":120,"total_tokens":160}}`},
	},
}

// The calls of callStream: a payment call and one of the bot's own, their
// arguments in pieces (raw JSON string contents), and as they decode.
var (
	payPieces    = []string{`{\"sku\":`, ` \"premium-monthly\", `, `\"quantity\": 2, \"note\": \"送给妈妈 \u263a`, `\"}`}
	clientPieces = []string{`{\"city\":`, ` \"杭州\", \"unit\": `, `\"celsius\"}`}
	payArgs      = `{"sku": "premium-monthly", "quantity": 2, "note": "送给妈妈 ☺"}`
	clientArgs   = `{"city": "杭州", "unit": "celsius"}`
)

// callStream renders a tool round of the shape: the payment call under
// upstream index pay and the bot's get_weather under the other of 0 and
// 1, the continuations interleaved (Gemini: each call whole).
func (sh callShape) callStream(pay int) []string {
	cli := 1 - pay
	if sh.cont == nil {
		return append([]string{
			sh.chunk(sh.start(pay, "call_pay", "create_order", strings.Join(payPieces, ""))),
			sh.chunk(sh.start(cli, "call_cli", "get_weather", strings.Join(clientPieces, ""))),
		}, sh.after...)
	}
	chunks := []string{
		sh.chunk(sh.start(pay, "call_pay", "create_order", "")),
		sh.chunk(sh.cont(pay, "call_pay", "create_order", payPieces[0])),
		sh.chunk(sh.start(cli, "call_cli", "get_weather", "")),
	}
	for i := 1; i < max(len(payPieces), len(clientPieces)+1); i++ {
		if i < len(payPieces) {
			chunks = append(chunks, sh.chunk(sh.cont(pay, "call_pay", "create_order", payPieces[i])))
		}
		if i-1 < len(clientPieces) {
			chunks = append(chunks, sh.chunk(sh.cont(cli, "call_cli", "get_weather", clientPieces[i-1])))
		}
	}
	return append(chunks, sh.after...)
}

// textRound is a round 0 of text before a tool round: round 1's chunks get
// the turn's id and created, and lose the role the turn has sent.
var textRound = []string{
	`{"id":"chatcmpl-r0","object":"chat.completion.chunk","created":1752019000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Let me check."},"finish_reason":null}]}`,
	`{"id":"chatcmpl-r0","object":"chat.completion.chunk","created":1752019000,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
}

// TestCallPathProviderShapes streams each provider's tool round, the
// payment call first or second, in round 0 and after a text round: the
// call path gives what the slow path gives, takes every continuation after
// the first where the shape has them, and the bot, decoding with
// go-openai, gets its own call whole, renumbered, and never the payment
// call, which the round holds whole.
func TestCallPathProviderShapes(t *testing.T) {
	for _, sh := range callShapes {
		for _, pay := range []int{0, 1} {
			for _, later := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/payment %d/later round %v", sh.name, pay, later), func(t *testing.T) {
					stream := sh.callStream(pay)
					rounds := [][]string{stream}
					if later {
						rounds = [][]string{textRound, stream}
					}
					taken := callPathDiff(t, "chatcmpl-paygate-t", 1752019000, rounds...)
					// Every continuation, or all but the first where the
					// start of the call does not show the envelope.
					if n := len(payPieces) + len(clientPieces); sh.path && (taken < n-1 || taken > n) {
						t.Errorf("the call path took %d chunks; want %d or %d", taken, n-1, n)
					} else if !sh.path && taken != 0 {
						t.Errorf("the call path took %d chunks; want none", taken)
					}

					c := NewCapture(isPaymentName)
					c.StartRound(0, "chatcmpl-paygate-t", 0)
					if later {
						for _, ch := range textRound {
							c.Process([]byte(ch))
						}
						c.EndRound()
						c.StartRound(1, "turn-1", 1752019000)
					}
					calls := map[int]*openai.ToolCall{}
					for _, ch := range stream {
						out, err := c.Process([]byte(ch))
						if err != nil {
							t.Fatalf("Process(%s): %v", ch, err)
						}
						if out == nil {
							continue
						}
						var v openai.ChatCompletionStreamResponse
						if err := json.Unmarshal(out, &v); err != nil {
							t.Fatalf("go-openai cannot decode %s: %v", out, err)
						}
						if later && v.ID != "turn-1" {
							t.Errorf("a later round's chunk went out under %q: %s", v.ID, out)
						}
						for _, choice := range v.Choices {
							for _, tc := range choice.Delta.ToolCalls {
								if tc.Index == nil {
									t.Fatalf("a tool call without an index: %s", out)
								}
								got := calls[*tc.Index]
								if got == nil {
									got = &openai.ToolCall{}
									calls[*tc.Index] = got
								}
								// As the SDKs accumulate a call: the last
								// id and name given, the arguments joined.
								if tc.ID != "" {
									got.ID = tc.ID
								}
								if tc.Function.Name != "" {
									got.Function.Name = tc.Function.Name
								}
								got.Function.Arguments += tc.Function.Arguments
							}
						}
					}
					cli := calls[0]
					if len(calls) != 1 || cli == nil || cli.Function.Name != "get_weather" || cli.Function.Arguments != clientArgs || cli.ID != "call_cli" {
						t.Errorf("the bot's calls %+v; want get_weather at 0 with %s", calls, clientArgs)
					}
					res := c.EndRound()
					if len(res.PaymentCalls) != 1 || res.PaymentCalls[0].Name != "create_order" || res.PaymentCalls[0].Arguments != payArgs || res.PaymentCalls[0].Damaged {
						t.Errorf("payment calls %+v; want create_order with %s", res.PaymentCalls, payArgs)
					}
					if len(res.ClientCalls) != 1 || res.ClientCalls[0].Arguments != clientArgs || res.ClientCalls[0].Index != 0 {
						t.Errorf("client calls %+v; want get_weather at 0 with %s", res.ClientCalls, clientArgs)
					}
				})
			}
		}
	}
}

// callMutations change a continuation chunk of the OpenAI shape (its delta
// `{"tool_calls":[{"index":N,"function":{"arguments":"…"}}]}`) in the ways
// the call path must refuse, or take as the slow path does: duplicate and
// case-variant keys that ambiguousChunk refuses, malformed JSON, members
// the slow path reads, a call the delta starts, names or gives an id, and
// white space.
var callMutations = []struct{ name, old, new string }{
	{"index twice", `[{"index":`, `[{"index":7,"index":`},
	{"arguments twice", `"function":{"arguments":`, `"function":{"arguments":"x","arguments":`},
	{"function twice", `"function":{`, `"function":{"arguments":"y"},"function":{`},
	{"Function beside function", `"function":{`, `"Function":{"arguments":"y"},"function":{`},
	{"Index beside index", `[{"index":`, `[{"Index":1,"index":`},
	{"id twice", `[{"index":`, `[{"id":"a","id":"b","index":`},
	{"type twice", `[{"index":`, `[{"type":"function","type":"function","index":`},
	{"escaped tool_calls key", `{"tool_calls"`, `{"tool\u005fcalls"`},
	{"Tool_calls beside", `{"tool_calls"`, `{"Tool_calls":[],"tool_calls"`},
	{"tool_calls twice", `{"tool_calls"`, `{"tool_calls":null,"tool_calls"`},
	{"tool_calls twice, a payment call second", `]}`, `],"tool_calls":[{"index":9,"id":"x","type":"function","function":{"name":"create_order","arguments":"{}"}}]}`},
	{"escaped arguments key", `"arguments"`, `"argument\u0073"`},
	{"key with an escape", `"arguments"`, `"arguments\n"`},
	{"Delta beside delta", `"delta":`, `"Delta":{},"delta":`},
	{"delta twice", `"delta":`, `"delta":{"content":"x"},"delta":`},
	{"invalid escape in arguments", `"arguments":"`, `"arguments":"\x`},
	{"short unicode escape", `"arguments":"`, `"arguments":"\u12`},
	{"unicode escape not hex", `"arguments":"`, `"arguments":"\u12G4`},
	{"unicode escapes", `"arguments":"`, `"arguments":"\u00e9\uD83D\ude00\/\b\f\n\r\t`},
	{"a lone surrogate", `"arguments":"`, `"arguments":"\ud83d`},
	{"control character", `"arguments":"`, "\"arguments\":\"\x01"},
	{"raw new line", `"arguments":"`, "\"arguments\":\"\n"},
	{"invalid UTF-8", `"arguments":"`, "\"arguments\":\"\xff\xfe"},
	{"DEL and high bytes", `"arguments":"`, "\"arguments\":\"\x7f\u00a0"},
	{"unterminated arguments", `"}}]}`, `}}]}`},
	{"arguments as an object", `"arguments":"`, `"arguments":{"a":"`},
	{"arguments null", `"arguments":"`, `"arguments":null,"x":"`},
	{"no arguments", `"arguments":`, `"name":`},
	{"name of the call", `"function":{`, `"function":{"name":"NAME",`},
	{"another name", `"function":{`, `"function":{"name":"get_weather",`},
	{"a payment name", `"function":{`, `"function":{"name":"create_order",`},
	{"empty name", `"function":{`, `"function":{"name":"",`},
	{"null name", `"function":{`, `"function":{"name":null,`},
	{"escaped name", `"function":{`, `"function":{"name":"get\u005fweather",`},
	{"Name beside", `"function":{`, `"function":{"Name":"x",`},
	{"name twice", `"function":{`, `"function":{"name":"","name":"",`},
	{"id of the call", `[{"index":`, `[{"id":"ID","index":`},
	{"another id", `[{"index":`, `[{"id":"call_other","index":`},
	{"empty id", `[{"index":`, `[{"id":"","index":`},
	{"null id", `[{"index":`, `[{"id":null,"index":`},
	{"escaped id", `[{"index":`, `[{"id":"call\u005fpay","index":`},
	{"type function", `[{"index":`, `[{"type":"function","index":`},
	{"type custom", `[{"index":`, `[{"type":"custom","index":`},
	{"type null", `[{"index":`, `[{"type":null,"index":`},
	{"extra member", `[{"index":`, `[{"extra_content":{"google":{"thought_signature":"Ej0"}},"index":`},
	{"null extra member", `[{"index":`, `[{"extra_content":null,"index":`},
	{"custom instead of function", `"function":{"arguments":`, `"custom":{"input":`},
	{"custom beside function", `[{"index":`, `[{"custom":{"input":"x"},"index":`},
	{"index as a string", `"index":IDX,"f`, `"index":"IDX","f`},
	{"index with a fraction", `"index":IDX,"f`, `"index":IDX.0,"f`},
	{"index with a leading zero", `"index":IDX,"f`, `"index":0IDX,"f`},
	{"negative index", `"index":IDX,"f`, `"index":-IDX,"f`},
	{"index with an exponent", `"index":IDX,"f`, `"index":IDXe0,"f`},
	{"a new index", `"index":IDX,"f`, `"index":5,"f`},
	{"a huge index", `"index":IDX,"f`, `"index":99999999999999999999,"f`},
	{"index null", `"index":IDX,"f`, `"index":null,"f`},
	{"no index", `"index":IDX,"f`, `"f`},
	{"second entry", `}}]}`, `}},{"index":1,"function":{"arguments":"zz"}}]}`},
	{"an array element not an object", `[{"index":`, `[1,{"index":`},
	{"empty tool_calls", `"tool_calls":[`, `"tool_calls":[],"x":[`},
	{"role assistant", `{"tool_calls"`, `{"role":"assistant","tool_calls"`},
	{"role assistant after", `}}]}`, `}}],"role":"assistant"}`},
	{"role user", `{"tool_calls"`, `{"role":"user","tool_calls"`},
	{"role empty", `{"tool_calls"`, `{"role":"","tool_calls"`},
	{"role null", `{"tool_calls"`, `{"role":null,"tool_calls"`},
	{"escaped role", `{"tool_calls"`, `{"role":"assist\u0061nt","tool_calls"`},
	{"content null", `{"tool_calls"`, `{"content":null,"tool_calls"`},
	{"content empty", `{"tool_calls"`, `{"content":"","tool_calls"`},
	{"content text", `{"tool_calls"`, `{"content":"Sure.","tool_calls"`},
	{"content text after", `}}]}`, `}}],"content":" ok"}`},
	{"refusal null", `{"tool_calls"`, `{"refusal":null,"tool_calls"`},
	{"refusal", `{"tool_calls"`, `{"refusal":"no","tool_calls"`},
	{"reasoning null", `{"tool_calls"`, `{"reasoning":null,"reasoning_content":null,"tool_calls"`},
	{"reasoning", `{"tool_calls"`, `{"reasoning_content":"hmm","tool_calls"`},
	{"reasoning_details", `{"tool_calls"`, `{"reasoning_details":[],"tool_calls"`},
	{"audio", `{"tool_calls"`, `{"audio":{"id":"a"},"tool_calls"`},
	{"an unknown null member", `{"tool_calls"`, `{"x":null,"tool_calls"`},
	{"content twice", `{"tool_calls"`, `{"content":null,"content":null,"tool_calls"`},
	{"white space", `{"tool_calls":[{"index":`, "{ \"tool_calls\" :\n[ {\t\"index\" : "},
	{"white space after", `}}]}`, " } } ] }"},
	{"white space at the index", `"index":IDX,"f`, `"index":IDX ,"f`},
	{"finish", `"finish_reason":null`, `"finish_reason":"tool_calls"`},
	{"native finish", `"finish_reason":null`, `"finish_reason":null,"native_finish_reason":"stop"`},
	{"usage", `"usage":null`, `"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}`},
	{"usage count twice", `"usage":null`, `"usage":{"prompt_tokens":1,"prompt_tokens":2,"completion_tokens":2,"total_tokens":3}`},
	{"choice usage", `"finish_reason":null`, `"finish_reason":null,"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}`},
	{"error", `"usage":null`, `"usage":null,"error":{"message":"overloaded"}`},
	{"empty error", `"usage":null`, `"usage":null,"error":""`},
	{"null error", `"usage":null`, `"usage":null,"error":null`},
	{"paygate member", `"usage":null`, `"usage":null,"paygate":{"actions":[]}`},
	{"PayGate member", `"usage":null`, `"usage":null,"PayGate":1`},
	{"invalid escape in a hole", `"obfuscation":"`, `"obfuscation":"\q`},
	{"control character in a hole", `"obfuscation":"`, "\"obfuscation\":\"\x1f"},
	{"escaped quote in a hole", `"obfuscation":"`, `"obfuscation":"a\"b\\`},
	{"empty hole", `"obfuscation":"k3J9"`, `"obfuscation":""`},
	{"a longer hole", `"obfuscation":"k3J9"`, `"obfuscation":"k3J9k3J9k3J9\u00e9"`},
	{"logprobs", `"logprobs":null`, `"logprobs":{"content":[]}`},
	{"a second choice", `}],"usage"`, `},{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"b"}}]}}],"usage"`},
	{"a second choice with a usage", `}],"usage"`, `},{"index":0,"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}],"usage"`},
	{"a second choice with nothing", `}],"usage"`, `},{"index":1}],"usage"`},
	{"id", `"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2"`, `"id":"chatcmpl-other"`},
	{"id null", `"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2"`, `"id":null`},
	{"id twice", `"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2"`, `"id":"a","id":"b"`},
	{"created", `"created":1752019200`, `"created":1752019999`},
	{"model", `"model":"gpt-4o-2024-08-06"`, `"model":"gpt-5"`},
	{"trailing garbage", `"k3J9"}`, `"k3J9"}}`},
	{"trailing space", `"k3J9"}`, `"k3J9"} `},
	{"cut short", `"k3J9"}`, `"k3J9"`},
	{"empty delta", `{"tool_calls":[{"index":IDX,"function":{"arguments":"`, `{},"x":[{"y":"`},
	{"a nested array", `"arguments":"`, `"arguments":"[[[[`},
	// The whole delta.
	{"an empty delta", "DELTA", `{}`},
	{"a null content alone", "DELTA", `{"content":null}`},
	{"a role alone", "DELTA", `{"role":"assistant"}`},
	{"a role and a null content", "DELTA", `{"role":"assistant","content":null}`},
	{"no call", "DELTA", `{"tool_calls":[]}`},
	{"null tool_calls", "DELTA", `{"tool_calls":null}`},
	{"text", "DELTA", `{"content":"Hello"}`},
	{"the call whole", "DELTA", `{"tool_calls":[{"index":IDX,"id":"ID","type":"function","function":{"name":"NAME","arguments":"{}"}}]}`},
}

// TestCallPathMatchesSlowPath holds the call path to the slow path on the
// streams of TestCallPathProviderShapes and the fixtures, and on the OpenAI
// stream with one continuation mutated (callMutations): the one that
// shows the envelope, or one after it, in round 0 or a later round, the
// payment call or the bot's.
func TestCallPathMatchesSlowPath(t *testing.T) {
	for _, name := range fixtureNames(t) {
		var chunks []string
		for _, ev := range strings.Split(string(readFixture(t, name)), "\n\n") {
			if d, ok := strings.CutPrefix(strings.TrimSpace(ev), "data: "); ok && d != "[DONE]" {
				chunks = append(chunks, d)
			}
		}
		t.Run(name, func(t *testing.T) {
			callPathDiff(t, "chatcmpl-paygate-t", 1752019000, chunks)
			callPathDiff(t, "chatcmpl-paygate-t", 1752019000, textRound, chunks, chunks)
		})
	}
	sh := callShapes[0]
	for _, m := range callMutations {
		for _, pay := range []int{0, 1} {
			stream := sh.callStream(pay)
			// The first continuation, later ones of the payment call and
			// of the bot's (callStream's order), or every one: a provider
			// that sends a member the slow path reads in every chunk must
			// not have its chunks' envelope learnt.
			for _, at := range []int{1, 3, 4, 6, -1} {
				t.Run(fmt.Sprintf("%s/payment %d/chunk %d", m.name, pay, at), func(t *testing.T) {
					mutated := append([]string(nil), stream...)
					for i := 1; i < len(stream)-len(sh.after); i++ {
						if i != at && (at >= 0 || i == 2) {
							continue
						}
						idx, id, name := pay, "call_pay", "create_order"
						if i%2 == 0 {
							idx, id, name = 1-pay, "call_cli", "get_weather"
						}
						mutated[i] = mutate(t, stream[i], m.old, m.new, idx, id, name)
					}
					callPathDiff(t, "chatcmpl-paygate-t", 1752019000, mutated)
					callPathDiff(t, "chatcmpl-paygate-t", 1752019000, textRound, mutated)
					callPathDiff(t, "", 0, mutated, mutated)
				})
			}
		}
	}
}

// mutate replaces old by new in chunk, once, with IDX, ID and NAME in
// both standing for the call's upstream index, id and name; old DELTA is
// the chunk's delta object.
func mutate(t testing.TB, chunk, old, new string, idx int, id, name string) string {
	r := strings.NewReplacer("IDX", strconv.Itoa(idx), "ID", id, "NAME", name)
	old, new = r.Replace(old), r.Replace(new)
	if old == "DELTA" {
		d := strings.Index(chunk, `"delta":`) + len(`"delta":`)
		old = chunk[d : d+strings.Index(chunk[d:], `,"logprobs"`)]
	}
	if !strings.Contains(chunk, old) {
		t.Fatalf("chunk %s has no %s", chunk, old)
	}
	return strings.Replace(chunk, old, new, 1)
}

// TestCallPathSlots holds the call path to the slow path where the round's
// calls, not the chunk, decide: a call named late (held, then replayed),
// a custom tool's call, a call named twice, calls continued from a cut
// attempt (ContinueCalls), a payment call continued after the finish.
func TestCallPathSlots(t *testing.T) {
	sh := callShapes[0]
	cont := func(idx int, args string) string { return sh.chunk(sh.cont(idx, "", "", args)) }
	tests := []struct {
		name   string
		chunks []string
	}{
		{"named late", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"arguments":""}}]}`),
			cont(0, `{\"ci`), cont(0, `ty\":`),
			sh.chunk(`{"tool_calls":[{"index":0,"function":{"name":"get_weather","arguments":"\"SH\""}}]}`),
			cont(0, `}`), cont(0, ` `),
		}},
		{"a payment call named late", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"arguments":""}}]}`),
			cont(0, `{\"sku`), cont(0, `\":`),
			sh.chunk(`{"tool_calls":[{"index":0,"function":{"name":"create_order","arguments":"\"x\""}}]}`),
			cont(0, `}`),
		}},
		{"never named", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"type":"function","function":{"arguments":""}}]}`),
			cont(0, `{\"sku`), cont(0, `\":1}`),
		}},
		{"custom tool", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"custom","custom":{"name":"get_weather","input":""}}]}`),
			cont(0, `a`), cont(0, `b`), sh.chunk(`{"tool_calls":[{"index":0,"custom":{"input":"c"}}]}`), cont(0, `d`),
		}},
		{"custom payment tool", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"custom","custom":{"name":"create_order","input":""}}]}`),
			cont(0, `a`), cont(0, `b`),
		}},
		{"custom payment tool continued as a function once the envelope is known", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":""}}]}`),
			cont(0, `a`), cont(0, `b`),
			sh.chunk(`{"tool_calls":[{"index":1,"id":"c2","type":"custom","custom":{"name":"create_order","input":""}}]}`),
			cont(1, `c`), cont(1, `d`),
			sh.chunk(`{"tool_calls":[{"index":2,"id":"c3","type":"custom","custom":{"name":"send_coupon","input":""}}]}`),
			cont(2, `e`), cont(2, `f`),
		}},
		// Qwen's "id":"" in every delta of a call that came without one:
		// under GiveCallIDs (asTurn) the bot's call has a made id, and
		// the empty one must not reach the bot beside it.
		{"empty ids", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"","type":"function","function":{"name":"get_weather","arguments":""}}]}`),
			sh.chunk(`{"tool_calls":[{"index":0,"id":"","function":{"arguments":"a"}}]}`),
			sh.chunk(`{"tool_calls":[{"index":0,"id":"","function":{"arguments":"b"}}]}`),
			sh.chunk(`{"tool_calls":[{"index":1,"id":"","type":"function","function":{"name":"create_order","arguments":""}}]}`),
			sh.chunk(`{"tool_calls":[{"index":1,"id":"","function":{"arguments":"c"}}]}`),
			sh.chunk(`{"tool_calls":[{"index":0,"id":"","function":{"arguments":"d"}}]}`),
		}},
		{"an id given late", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":""}}]}`),
			cont(0, `a`), cont(0, `b`),
			sh.chunk(`{"tool_calls":[{"index":1,"type":"function","function":{"name":"create_order","arguments":""}}]}`),
			sh.chunk(`{"tool_calls":[{"index":1,"id":"c2","function":{"arguments":"c"}}]}`),
			sh.chunk(`{"tool_calls":[{"index":0,"id":"c1","function":{"arguments":"d"}}]}`),
			sh.chunk(`{"tool_calls":[{"index":0,"id":"c9","function":{"arguments":"e"}}]}`),
			sh.chunk(`{"tool_calls":[{"index":1,"id":"c2","function":{"arguments":"f"}}]}`),
		}},
		{"a name given late under a known envelope", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":""}}]}`),
			cont(0, `a`), cont(0, `b`),
			sh.chunk(`{"tool_calls":[{"index":1,"id":"c2","type":"function","function":{"arguments":""}}]}`),
			cont(1, `c`),
			sh.chunk(`{"tool_calls":[{"index":1,"function":{"name":"create_order","arguments":"d"}}]}`),
			cont(1, `e`),
			sh.chunk(`{"tool_calls":[{"index":2,"id":"c3","type":"function","function":{"arguments":""}}]}`),
			cont(2, `f`),
			sh.chunk(`{"tool_calls":[{"index":2,"function":{"name":"send_coupon","arguments":"g"}}]}`),
			cont(2, `h`),
		}},
		{"named twice", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","name":"create_order","arguments":""}}]}`),
			cont(0, `a`), cont(0, `b`),
		}},
		{"two calls under one index", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":""}}]}`),
			cont(0, `a`), cont(0, `b`),
			sh.chunk(`{"tool_calls":[{"index":0,"id":"c2","type":"function","function":{"name":"create_order","arguments":""}}]}`),
			cont(0, `c`), cont(0, `d`),
			sh.chunk(`{"tool_calls":[{"index":0,"id":"c3","type":"function","function":{"name":"send_coupon","arguments":""}}]}`),
			cont(0, `e`), cont(0, `f`),
		}},
		{"a continuation of no call", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":""}}]}`),
			cont(0, `a`), cont(1, `b`), cont(1, `c`), cont(2, `d`),
		}},
		{"after the finish", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"create_order","arguments":""}}]}`),
			cont(0, `a`), cont(0, `b`), sh.after[0], cont(0, `c`), sh.after[1], cont(0, `d`),
		}},
		{"a lost chunk", []string{
			sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"create_order","arguments":""}}]}`),
			cont(0, `a`), cont(0, `b`), `{"id":`, cont(0, `c`), `[1]`, cont(0, `d`),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			callPathDiff(t, "chatcmpl-paygate-t", 1752019000, tc.chunks)
			callPathDiff(t, "chatcmpl-paygate-t", 1752019000, textRound, tc.chunks, tc.chunks)
		})
	}
	t.Run("calls continued from a cut attempt", func(t *testing.T) {
		fast, slow := NewCapture(isPaymentName), NewCapture(isPaymentName)
		slow.slowCalls = true
		sent := []ToolCall{{Index: 0, ID: "call_cli", Name: "get_weather", Arguments: `{"ci`}}
		for _, c := range []*Capture{fast, slow} {
			c.StartRound(1, "turn-1", 1752019000)
			c.ContinueCalls(sent)
		}
		for _, ch := range []string{cont(0, `ty`), cont(0, `\":`), cont(0, `1}`)} {
			out, err := fast.Process([]byte(ch))
			out = bytes.Clone(out)
			sout, serr := slow.Process([]byte(ch))
			if err != serr || !bytes.Equal(out, sout) {
				t.Fatalf("%s: call path %s (%v); slow path %s (%v)", ch, out, err, sout, serr)
			}
		}
		if fr, sr := fast.EndRound(), slow.EndRound(); !reflect.DeepEqual(fr, sr) {
			t.Fatalf("call path's result %+v\nslow path's %+v", fr, sr)
		}
	})
}

// TestCallPathMadeIDCall: a bot's call that came without an id gets one
// paygate made (GiveCallIDs, as every turn sets it up), and its later
// deltas without an "id" member still take the call path, as they do in a
// bare capture: only a delta with an id member, "" included, goes to the
// slow path, which takes it out. Holding every delta of such a call to the
// slow path changes no byte the bot gets, so callPathDiff alone did not
// see it; it costs the slow path's instructions on each of them.
func TestCallPathMadeIDCall(t *testing.T) {
	sh := callShapes[0]
	cont := func(args string) string { return sh.chunk(sh.cont(0, "", "", args)) }
	chunks := []string{
		sh.chunk(`{"role":"assistant","tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":""}}]}`),
		cont(`{\"ci`), cont(`ty\":`), cont(`\"SH\"`), cont(`}`),
	}
	bare := callPathDiffWith(t, nil, "chatcmpl-paygate-t", 1752019000, chunks)
	if turn := callPathDiffWith(t, asTurn, "chatcmpl-paygate-t", 1752019000, chunks); bare < 3 || turn != bare {
		t.Errorf("the call path took %d of the made-id call's 4 continuations as the turn sets the capture up, %d bare; want the same, 3 or more", turn, bare)
	}
}

// TestValidStringEnd holds validStringEnd to gjson.Valid on the strings it
// reads.
func TestValidStringEnd(t *testing.T) {
	for _, body := range []string{``, `a`, `\"`, `\\`, `\/`, `\b\f\n\r\t`, `\u00e9`, `\u00E9`, `\uD83D\ude00`,
		`\x`, `\u12`, `\u12G4`, `\u`, `\`, "\x00", "\x1f", "\x7f", "\xff", `a\"b`, `a\\`, `送给妈妈`} {
		for _, tail := range []string{`"`, ``} {
			s := `"` + body + tail
			e := validStringEnd(s, 1)
			want := gjson.Valid(s) && tail != ""
			if got := e >= 0 && e == len(s)-1; got != want || (e >= 0 && !gjson.Valid(s[:e+1])) {
				t.Errorf("validStringEnd(%q) = %d; gjson.Valid %v", s, e, want)
			}
		}
	}
}

// FuzzCallPathMatchesSlowPath holds the call path to the slow path on
// mutated tool-call deltas and envelopes: a payment call and one of the
// bot's are started, a continuation of each in the envelope (head, tail)
// shows it, then the fuzzed deltas come in it, and a good continuation
// after each; mode picks the round (0, or 1 after a text round), whether
// round 0 has a fallback id, and whether the bot's call is at index 0.
//
//	go test -run '^$' -fuzz '^FuzzCallPathMatchesSlowPath$' -fuzztime 10s ./interceptors
func FuzzCallPathMatchesSlowPath(f *testing.F) {
	for _, sh := range callShapes {
		if sh.cont == nil {
			continue
		}
		env := sh.chunk("\x00")
		head, tail, _ := strings.Cut(env, "\x00")
		for i, m := range callMutations {
			d := sh.cont(0, "call_pay", "create_order", `\"premium`)
			if r := strings.NewReplacer("IDX", "0", "ID", "call_pay", "NAME", "create_order"); strings.Contains(d, r.Replace(m.old)) && i%len(callShapes) == 0 {
				f.Add(head, tail, strings.Replace(d, r.Replace(m.old), r.Replace(m.new), 1), sh.cont(1, "call_cli", "get_weather", `x`), byte(i))
			}
		}
		f.Add(head, tail, sh.cont(0, "call_pay", "create_order", `\"premium`), sh.cont(1, "call_cli", "get_weather", `\u00e9`), byte(0))
		f.Add(head, tail, sh.cont(1, "call_cli", "get_weather", `{\"a\":`), sh.cont(0, "", "", `}`), byte(7))
	}
	for _, m := range callMutations {
		sh := callShapes[0]
		env := sh.chunk("\x00")
		if !strings.Contains(env, m.old) {
			continue
		}
		head, tail, _ := strings.Cut(strings.Replace(env, m.old, m.new, 1), "\x00")
		f.Add(head, tail, sh.cont(0, "", "", `a`), sh.cont(1, "", "", `b`), byte(len(m.name)))
	}
	f.Fuzz(func(t *testing.T, head, tail, delta1, delta2 string, mode byte) {
		pay, cli := 0, 1
		if mode&4 != 0 {
			pay, cli = 1, 0
		}
		chunk := func(d string) string { return head + d + tail }
		round := []string{
			chunk(`{"role":"assistant","tool_calls":[{"index":` + strconv.Itoa(pay) + `,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":""}}]}`),
			chunk(`{"tool_calls":[{"index":` + strconv.Itoa(cli) + `,"id":"call_cli","type":"function","function":{"name":"get_weather","arguments":""}}]}`),
			chunk(`{"tool_calls":[{"index":` + strconv.Itoa(pay) + `,"function":{"arguments":"{"}}]}`),
			chunk(delta1),
			chunk(`{"tool_calls":[{"index":` + strconv.Itoa(cli) + `,"function":{"arguments":"["}}]}`),
			chunk(delta2),
			chunk(`{"tool_calls":[{"index":` + strconv.Itoa(pay) + `,"function":{"arguments":"}"}}]}`),
			chunk(delta1),
		}
		fallback := ""
		if mode&2 != 0 {
			fallback = "chatcmpl-paygate-f"
		}
		if mode&1 != 0 {
			callPathDiff(t, fallback, 1752019000, textRound, round)
		} else {
			callPathDiff(t, fallback, 1752019000, round, round)
		}
	})
}
