package interceptors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/sse"
)

// paymentNames are the tool names the fixtures' models call for payments.
var paymentNames = []string{"create_order", "query_order", "request_refund"}

func isPaymentName(name string) bool { return slices.Contains(paymentNames, name) }

// replay feeds an SSE transcript through the Capture as the turn loop does
// and returns copies of the chunks the client would be sent.
func replay(t testing.TB, c *Capture, r io.Reader) [][]byte {
	t.Helper()
	var outs [][]byte
	for _, p := range replayPairs(t, c, r) {
		if p.out != nil {
			outs = append(outs, p.out)
		}
	}
	return outs
}

// pair is one upstream chunk and what Process returned for it.
type pair struct{ in, out []byte }

func replayPairs(t testing.TB, c *Capture, r io.Reader) []pair {
	t.Helper()
	rd := sse.NewReader(r)
	defer rd.Release()
	var pairs []pair
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return pairs
		}
		if err != nil {
			t.Fatalf("reading the transcript: %v", err)
		}
		if ev.IsDone() {
			return pairs
		}
		out, err := c.Process(ev.Data)
		if err != nil {
			t.Fatalf("Process(%s): %v", ev.Data, err)
		}
		p := pair{in: append([]byte(nil), ev.Data...)}
		if out != nil {
			p.out = append([]byte(nil), out...)
		}
		pairs = append(pairs, p)
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clientView is what an OpenAI SDK accumulates from the chunks it got.
type clientView struct {
	ids       []string
	roles     int
	text      string
	reasoning string
	calls     map[int]*ToolCall
	finishes  []string
	usages    int
}

func viewOf(t testing.TB, outs [][]byte) clientView {
	t.Helper()
	v := clientView{calls: map[int]*ToolCall{}}
	for _, o := range outs {
		if !gjson.ValidBytes(o) {
			t.Fatalf("returned chunk is not valid JSON: %s", o)
		}
		r := gjson.ParseBytes(o)
		v.ids = append(v.ids, r.Get("id").String())
		if u := r.Get("usage"); u.Exists() && u.Type != gjson.Null {
			v.usages++
		}
		r.Get("choices").ForEach(func(_, ch gjson.Result) bool {
			if f := ch.Get("finish_reason"); f.Exists() && f.Type != gjson.Null {
				v.finishes = append(v.finishes, f.String())
			}
			if f := ch.Get("native_finish_reason"); f.Exists() && f.Type != gjson.Null {
				v.finishes = append(v.finishes, "native:"+f.String())
			}
			d := ch.Get("delta")
			if d.Get("role").String() != "" {
				v.roles++
			}
			v.text += d.Get("content").String()
			if rc := d.Get("reasoning_content"); rc.Exists() {
				v.reasoning += rc.String()
			} else {
				v.reasoning += d.Get("reasoning").String()
			}
			d.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
				ix := tc.Get("index")
				if ix.Type != gjson.Number {
					t.Errorf("a client tool call entry has no index: %s", tc.Raw)
				}
				call := v.calls[int(ix.Int())]
				if call == nil {
					call = &ToolCall{Index: int(ix.Int())}
					v.calls[call.Index] = call
				}
				if id := tc.Get("id").String(); id != "" && call.ID == "" {
					call.ID = id
				}
				if n := tc.Get("function.name").String(); n != "" && call.Name == "" {
					call.Name = n
				}
				call.Arguments += tc.Get("function.arguments").String()
				return true
			})
			return true
		})
	}
	return v
}

type roundWant struct {
	file      string
	text      string
	reasoning string
	// clientText is what an SDK decoding chunk by chunk shows, when it
	// differs from text (a surrogate pair split across two chunks).
	clientText string
	payment    []ToolCall
	client     []ToolCall // as the client sees them, client indexes
	finish     string
	usage      *Usage
	errSub     string // a substring of RoundResult.Error; "" for none
	toolRound  bool
	id, model  string
}

func TestCaptureFixtures(t *testing.T) {
	tests := []struct {
		name   string
		rounds []roundWant
	}{
		{
			name: "openai parallel calls: client, payment, client; usage-only last chunk; continuation",
			rounds: []roundWant{{
				file: "openai_parallel_mixed.sse",
				id:   "chatcmpl-BrT4pX0m3kWq8Yz1LvN2", model: "gpt-4o-2024-08-06",
				text:    "Sure, I'll check the weather and place the order.",
				payment: []ToolCall{{Index: 1, ID: "call_P4yM3ntZq1", Name: "create_order", Arguments: `{"sku": "premium-monthly", "quantity": 2}`}},
				client: []ToolCall{
					{Index: 0, ID: "call_W8kLmQ2xYv", Name: "get_weather", Arguments: `{"city": "Shanghai"}`},
					{Index: 1, ID: "call_C0up0nS3nd", Name: "send_coupon", Arguments: `{"code":"WELCOME"}`},
				},
				finish: "tool_calls", toolRound: true,
				usage: &Usage{PromptTokens: 412, CompletionTokens: 61, TotalTokens: 473},
			}, {
				file: "openai_continuation.sse",
				id:   "chatcmpl-BrT4rQ7cNn0aL2pS9dE1", model: "gpt-4o-2024-08-06",
				text:   `Your order PG20250709A1 for 2 × Premium is ready: 99.98 CNY. Tap "Pay" to finish.`,
				finish: "stop",
				usage:  &Usage{PromptTokens: 530, CompletionTokens: 24, TotalTokens: 554},
			}},
		},
		{
			name: "openai text only",
			rounds: []roundWant{{
				file: "openai_text.sse",
				id:   "chatcmpl-BrT4pX0m3kWq8Yz1LvN2", model: "gpt-4o-2024-08-06",
				text:   "Premium costs 49.99 CNY a month.\nWant it?",
				finish: "stop",
				usage:  &Usage{PromptTokens: 40, CompletionTokens: 12, TotalTokens: 52},
			}},
		},
		{
			name: "interleaved parallel deltas, payment first, a chunk mixing entries",
			rounds: []roundWant{{
				file: "interleaved_mixed.sse",
				id:   "chatcmpl-il7", model: "qwen3-32b",
				payment: []ToolCall{{Index: 0, ID: "chatcmpl-tool-pay01", Name: "create_order", Arguments: `{"sku": "premium-yearly", "pay_method": "native"}`}},
				client: []ToolCall{
					{Index: 0, ID: "chatcmpl-tool-wx02", Name: "get_weather", Arguments: `{"city": "Beijing"}`},
					{Index: 1, ID: "chatcmpl-tool-cp03", Name: "send_coupon", Arguments: `{"code": "VIP"}`},
				},
				finish: "tool_calls", toolRound: true,
			}},
		},
		{
			name: "arguments and text split inside multi-byte characters, a surrogate pair and an escape",
			rounds: []roundWant{{
				file: "split_unicode.sse",
				id:   "chatcmpl-sp1", model: "gpt-4o-mini",
				text:       "好的，这就为您下单 😊",
				clientText: "好的，这就为您下单 \ufffd\ufffd",
				payment:    []ToolCall{{Index: 0, ID: "call_Spl1t", Name: "create_order", Arguments: `{"sku":"premium-monthly","note":"送给妈妈😀 caf\u00e9"}`}},
				finish:     "tool_calls", toolRound: true,
			}},
		},
		{
			name: "openrouter keep-alive comments and a mid-stream error",
			rounds: []roundWant{{
				file: "openrouter_error.sse",
				id:   "gen-1752019500-Ab3dEf", model: "anthropic/claude-sonnet-4",
				text:   "Let me look that up for you",
				finish: "error", errSub: "Provider disconnected unexpectedly",
			}},
		},
		{
			name: "openrouter tool call with native_finish_reason and a usage chunk that has choices",
			rounds: []roundWant{{
				file: "openrouter_tool.sse",
				id:   "gen-1752019500-Ab3dEf", model: "anthropic/claude-sonnet-4",
				text:    "Creating your order now.",
				payment: []ToolCall{{Index: 0, ID: "toolu_01HkX9zQm3", Name: "create_order", Arguments: `{"sku": "premium-monthly"}`}},
				finish:  "tool_calls", toolRound: true,
				usage: &Usage{PromptTokens: 980, CompletionTokens: 71, TotalTokens: 1051},
			}},
		},
		{
			name: "deepseek reasoning_content before content, usage in the finish chunk",
			rounds: []roundWant{{
				file: "deepseek_reasoning.sse",
				id:   "5f3c9e1a-7b2d-4c8e-9a10-3d2b1c0e9f87", model: "deepseek-reasoner",
				text:      "Sure — ordering it.",
				reasoning: "The user wants the monthly plan.",
				payment:   []ToolCall{{Index: 0, ID: "call_0_7d4c2b9e-1f3a-4e5d-8c6b-0a9f8e7d6c5b", Name: "create_order", Arguments: `{"sku":"premium-monthly"}`}},
				finish:    "tool_calls", toolRound: true,
				usage: &Usage{PromptTokens: 321, CompletionTokens: 88, TotalTokens: 409, CachedTokens: 256},
			}},
		},
		{
			name: "qwen id and name repeated, empty strings later, role null; continuation",
			rounds: []roundWant{{
				file: "qwen_tool.sse",
				id:   "chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893", model: "qwen-plus",
				payment: []ToolCall{{Index: 1, ID: "call_91c2f0e44a5b4d0bb3e8a1", Name: "create_order", Arguments: `{"sku": "premium-monthly", "quantity": 3}`}},
				client:  []ToolCall{{Index: 0, ID: "call_5507104cb4b2468283571e", Name: "get_weather", Arguments: `{"city": "杭州"}`}},
				finish:  "tool_calls", toolRound: true,
				usage: &Usage{PromptTokens: 266, CompletionTokens: 45, TotalTokens: 311},
			}, {
				file: "qwen_continuation.sse",
				id:   "chatcmpl-9a0b7c61-2d44-9b1e-8f0c-51e2d7a4c3b6", model: "qwen-plus",
				text:   "杭州今天晴，订单已创建，请完成支付。",
				finish: "stop",
			}},
		},
		{
			name: "gemini: no index, stop on a tool round, thought signature kept; continuation with id not first",
			rounds: []roundWant{{
				file: "gemini_tool_stop.sse",
				id:   "kT5taJjQGcuMnvgPq7Kq4A8", model: "gemini-2.5-flash",
				text: "I'll place the order for you.",
				payment: []ToolCall{{Index: 0, ID: "function-call-10981283740569810923", Name: "create_order",
					Arguments: `{"sku":"premium-monthly","quantity":1,"pay_method":"jsapi"}`,
					Extra:     []byte(`{"extra_content":{"google":{"thought_signature":"CtwCAVSoXO5r1w9QmK7p0Zx3bYt2Lr8uNw=="}}}`)}},
				finish: "stop", toolRound: true,
				usage: &Usage{PromptTokens: 107, CompletionTokens: 31, TotalTokens: 286},
			}, {
				file: "gemini_continuation.sse",
				id:   "mU7ubLkRHdvNowhQr8Lr5B9", model: "gemini-2.5-flash",
				text:   "Done! Your order is waiting for payment.",
				finish: "stop",
				usage:  &Usage{PromptTokens: 190, CompletionTokens: 9, TotalTokens: 199},
			}},
		},
		{
			name: "gemini parallel calls without index in one chunk, continuation and metadata-only deltas",
			rounds: []roundWant{{
				file: "gemini_parallel.sse",
				id:   "kT5taJjQGcuMnvgPq7Kq4A8", model: "gemini-2.5-flash",
				payment: []ToolCall{{Index: 1, ID: "function-call-222", Name: "query_order", Arguments: `{"order_no":"PG20250709A1"}`,
					Extra: []byte(`{"extra_content":{"google":{"thought_signature":"Ej0KOwG+Pvb7sig/BBB="}}}`)}},
				client: []ToolCall{{Index: 0, ID: "function-call-111", Name: "get_weather", Arguments: `{"city":"Shenzhen"}`,
					Extra: []byte(`{"extra_content":{"google":{"thought_signature":"Ej0KOwG+Pvb7sig/AAA="}}}`)}},
				finish: "stop", toolRound: true,
				usage: &Usage{PromptTokens: 120, CompletionTokens: 40, TotalTokens: 160},
			}},
		},
		{
			name: "mistral: each call whole in one chunk, the payment call with finish and usage",
			rounds: []roundWant{{
				file: "mistral_tool.sse",
				id:   "a7d1c2f0e9b84b6c9d3e2f1a0b9c8d7e", model: "mistral-large-latest",
				payment: []ToolCall{{Index: 1, ID: "D681PevKs", Name: "create_order", Arguments: `{"sku": "premium-monthly", "quantity": 1, "pay_method": "native"}`}},
				client:  []ToolCall{{Index: 0, ID: "Wx7pQ2kLm", Name: "get_weather", Arguments: `{"city": "Chengdu"}`}},
				finish:  "tool_calls", toolRound: true,
				usage: &Usage{PromptTokens: 188, CompletionTokens: 63, TotalTokens: 251},
			}},
		},
		{
			name: "mistral: a client call in the finish chunk reaches the client without the finish",
			rounds: []roundWant{{
				file: "mistral_client_in_finish.sse",
				id:   "a7d1c2f0e9b84b6c9d3e2f1a0b9c8d7e", model: "mistral-large-latest",
				client: []ToolCall{{Index: 0, ID: "Qq1Ww2Ee3", Name: "send_coupon", Arguments: `{"code": "VIP"}`}},
				finish: "tool_calls", toolRound: true,
				usage: &Usage{PromptTokens: 90, CompletionTokens: 20, TotalTokens: 110},
			}},
		},
		{
			name: "azure: first chunk with empty choices and prompt_filter_results, keys sorted",
			rounds: []roundWant{{
				file: "azure_tool.sse",
				id:   "chatcmpl-AzQ9vT3mK2", model: "gpt-4o-2024-11-20",
				payment: []ToolCall{{Index: 0, ID: "call_AzPay0001", Name: "create_order", Arguments: `{"sku":"premium-monthly"}`}},
				client:  []ToolCall{{Index: 0, ID: "call_AzWx0002", Name: "get_weather", Arguments: `{"city":"Guangzhou"}`}},
				finish:  "tool_calls", toolRound: true,
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			const turnID = "chatcmpl-paygate-turn-1"
			clientSeen := map[int]bool{}
			roles := 0
			for round, want := range tc.rounds {
				if round > 0 {
					c.StartRound(round, turnID, 0)
				}
				pairs := replayPairs(t, c, bytes.NewReader(readFixture(t, want.file)))
				res := c.EndRound()
				var outs [][]byte
				for _, p := range pairs {
					if p.out != nil {
						outs = append(outs, p.out)
					}
				}
				v := viewOf(t, outs)
				roles += v.roles

				if res.ID != want.id || res.Model != want.model {
					t.Errorf("round %d: id, model = %q, %q; want %q, %q", round, res.ID, res.Model, want.id, want.model)
				}
				clientText := want.text
				if want.clientText != "" {
					clientText = want.clientText
				}
				if res.Content != want.text || v.text != clientText || res.Sent.Text != want.text {
					t.Errorf("round %d: text: result %q, client got %q; want %q", round, res.Content, v.text, want.text)
				}
				if res.Reasoning != want.reasoning || v.reasoning != want.reasoning {
					t.Errorf("round %d: reasoning: result %q, client got %q; want %q", round, res.Reasoning, v.reasoning, want.reasoning)
				}
				checkCalls(t, "payment calls", res.PaymentCalls, want.payment)
				checkCalls(t, "client calls", res.ClientCalls, want.client)
				checkCalls(t, "sent calls", res.Sent.Calls, want.client)
				// The client got exactly its own calls, intact.
				var got []ToolCall
				for _, call := range v.calls {
					got = append(got, *call)
					clientSeen[call.Index] = true
				}
				slices.SortFunc(got, func(a, b ToolCall) int { return a.Index - b.Index })
				var wantNoExtra []ToolCall
				for _, w := range want.client {
					w.Extra = nil
					wantNoExtra = append(wantNoExtra, w)
				}
				checkCalls(t, "calls the client assembled", got, wantNoExtra)
				// Payment calls never reach the client, not even their ids.
				for _, p := range res.PaymentCalls {
					for _, o := range outs {
						if bytes.Contains(o, []byte(p.ID)) || bytes.Contains(o, []byte(`"`+p.Name+`"`)) {
							t.Errorf("round %d: payment call %s leaked to the client: %s", round, p.ID, o)
						}
					}
				}
				// The finish is held.
				if len(v.finishes) != 0 {
					t.Errorf("round %d: the client got finish reasons %q; want none before the loop decides", round, v.finishes)
				}
				if v.usages != 0 {
					t.Errorf("round %d: the client got %d usage objects; want 0", round, v.usages)
				}
				if res.FinishReason != want.finish {
					t.Errorf("round %d: finish = %q; want %q", round, res.FinishReason, want.finish)
				}
				if want.finish != "" {
					fc := gjson.ParseBytes(res.FinishChunk)
					if got := fc.Get("choices.0.finish_reason").String(); got != want.finish {
						t.Errorf("round %d: finish chunk says %q; want %q: %s", round, got, want.finish, res.FinishChunk)
					}
					if d := fc.Get("choices.0.delta"); d.Exists() && d.Raw != "{}" {
						t.Errorf("round %d: finish chunk delta = %s; want {}", round, d.Raw)
					}
					if round > 0 && fc.Get("id").String() != turnID {
						t.Errorf("round %d: finish chunk id = %q; want %q", round, fc.Get("id").String(), turnID)
					}
				}
				if (res.Usage == nil) != (want.usage == nil) || (res.Usage != nil && *res.Usage != *want.usage) {
					t.Errorf("round %d: usage = %+v; want %+v", round, res.Usage, want.usage)
				}
				if want.errSub == "" && res.Error != nil || want.errSub != "" && !strings.Contains(string(res.Error), want.errSub) {
					t.Errorf("round %d: error = %s; want one containing %q", round, res.Error, want.errSub)
				}
				if res.ToolRound() != want.toolRound {
					t.Errorf("round %d: ToolRound() = %v; want %v", round, res.ToolRound(), want.toolRound)
				}
				// After round 0 the client sees the turn's id and no role.
				if round > 0 {
					for i, id := range v.ids {
						if id != turnID {
							t.Errorf("round %d chunk %d: id = %q; want %q", round, i, id, turnID)
						}
					}
					if v.roles != 0 || res.Sent.Role {
						t.Errorf("round %d: %d role deltas sent; want 0", round, v.roles)
					}
				}
				// In round 0, chunks that need no change pass byte for byte;
				// a role after the one that went out is removed.
				roleOut := false
				for _, p := range pairs {
					hasRole := func(b []byte) bool {
						has := false
						gjson.GetBytes(b, "choices.#.delta.role").ForEach(func(_, r gjson.Result) bool {
							has = has || r.Type == gjson.String && r.Str != ""
							return true
						})
						return has
					}
					switch {
					case round != 0:
					case roleOut && hasRole(p.in):
						if hasRole(p.out) {
							t.Errorf("round %d: a second role went out:\n in: %s\nout: %s", round, p.in, p.out)
						}
					case !needsRewrite(p.in) && !bytes.Equal(p.in, p.out):
						t.Errorf("round %d: chunk changed though nothing needed changing:\n in: %s\nout: %s", round, p.in, p.out)
					}
					roleOut = roleOut || p.out != nil && hasRole(p.out)
				}
			}
			// Client indexes over the turn: 0..n-1 without gaps.
			for i := 0; i < len(clientSeen); i++ {
				if !clientSeen[i] {
					t.Errorf("client tool-call indexes %v have a gap at %d", clientSeen, i)
				}
			}
		})
	}
}

// needsRewrite: an upstream chunk paygate may have to change or hold (tool
// calls, a finish, usage, empty choices or an error).
func needsRewrite(in []byte) bool {
	r := gjson.ParseBytes(in)
	if r.Get("usage").IsObject() || r.Get("error").Exists() || len(r.Get("choices").Array()) == 0 {
		return true
	}
	return r.Get("choices.#.delta.tool_calls").String() != "[]" ||
		r.Get(`choices.#(finish_reason!=null).finish_reason`).String() != ""
}

func checkCalls(t *testing.T, what string, got, want []ToolCall) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d %+v; want %d %+v", what, len(got), got, len(want), want)
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Index != w.Index || g.ID != w.ID || g.Name != w.Name || g.Arguments != w.Arguments || !bytes.Equal(g.Extra, w.Extra) || g.Custom != w.Custom {
			t.Errorf("%s[%d]: got {%d %q %q %q %s custom=%v}; want {%d %q %q %q %s custom=%v}", what, i,
				g.Index, g.ID, g.Name, g.Arguments, g.Extra, g.Custom, w.Index, w.ID, w.Name, w.Arguments, w.Extra, w.Custom)
		}
	}
}

// TestCallOfTwoKindsIsRefused: a streamed payment call named in "function"
// whose text then comes in "custom" (or the other way round) has no single
// kind: the non-stream parser refuses a call with both members, and the
// stream capture must not run it as a function call with the custom text.
func TestCallOfTwoKindsIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		deltas []string
	}{
		{"named in function, text in custom", []string{
			`{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":""}}`,
			`{"index":0,"custom":{"input":"{\"sku\":\"premium-monthly\"}"}}`,
		}},
		{"named in custom, text in function", []string{
			`{"index":0,"id":"call_1","type":"custom","custom":{"name":"create_order","input":""}}`,
			`{"index":0,"function":{"arguments":"{\"sku\":\"premium-monthly\"}"}}`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.StartRound(0, "t", 0)
			for _, d := range tc.deltas {
				if _, err := c.Process([]byte(callChunk(d))); err != nil {
					t.Fatal(err)
				}
			}
			r := c.EndRound()
			if len(r.ClientCalls) != 0 {
				t.Errorf("the bot got %+v", r.ClientCalls)
			}
			for _, pc := range r.PaymentCalls {
				if pc.Name != "" && !pc.Custom {
					t.Errorf("payment call %s(%s) would run as a function call; want it refused (no single kind)", pc.Name, pc.Arguments)
				}
			}
		})
	}
}

// TestCaptureStopsTakingCallsPastMaxCalls: each tool-call entry's call is
// looked for among the round's calls so far, so one event of many new
// calls (a 1.3 MB delta of 100,000 bare {"index":n} entries took ten
// seconds of a core, a 4 MiB one over a minute) cost time in the square of
// their number before a relay could see Calls pass its bound between
// events. The capture takes no call past MaxCalls+1, so a relay sees the
// bound passed and the rest of the event is not read.
func TestCaptureStopsTakingCallsPastMaxCalls(t *testing.T) {
	var sb strings.Builder
	for i := range 4 * MaxCalls {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"index":%d,"id":"call_%d","type":"function","function":{"name":"lookup","arguments":"{}"}}`, i, i)
	}
	c := NewCapture(isPaymentName)
	_, _ = c.Process([]byte(`{"id":"m1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[` + sb.String() + `]},"finish_reason":null}]}`))
	if n := c.Calls(); n <= MaxCalls || n > MaxCalls+1 {
		t.Errorf("the capture took %d of %d calls in one event; want it to stop just past MaxCalls (%d)", n, 4*MaxCalls, MaxCalls)
	}
}

// TestLargeChunkNotKept: a later round's chunk rewritten under the turn's
// id is built in a buffer of its own when it is over keepOut (an image
// model's picture, tens of MiB in one chunk, or a long text chunk), and
// the Capture keeps no buffer of its size for the next chunk: grown in the
// kept one, the picture was held once more to the turn's end. Small chunks
// after it are rewritten as before.
func TestLargeChunkNotKept(t *testing.T) {
	const head = `{"id":"c0","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":`
	long := strings.Repeat("A", keepOut)
	c := NewCapture(isPaymentName)
	c.StartRound(1, "turn-1", 1)
	for _, delta := range []string{
		`{"role":"assistant","images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + long + `"}}]}`, // the slow path (apply)
		`{"content":"` + long + `"}`, // a text chunk (rewriteID)
		`{"content":"Hi"}`,
	} {
		data := head + delta + `,"finish_reason":null}]}`
		out, err := c.Process([]byte(data))
		want := strings.Replace(strings.Replace(data, `"c0"`, `"turn-1"`, 1), `"created":5`, `"created":1`, 1)
		if err != nil || string(out) != want {
			t.Fatalf("Process: %.200s, %v; want %.200s", out, err, want)
		}
		if cap(c.out) > keepOut {
			t.Errorf("after a %d-byte chunk the Capture keeps a buffer of %d bytes; want at most %d", len(data), cap(c.out), keepOut)
		}
	}
}
