package interceptors

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"
)

// run feeds chunks (JSON texts) through a Capture, one round per slice, and
// returns the returned chunks of every round and each round's result.
func run(t *testing.T, rounds ...[]string) ([][]string, []RoundResult) {
	t.Helper()
	return runTurn(t, "", 0, rounds...)
}

// runTurn is run with round 0 started under the fallback id fallback and
// the later rounds under "turn-1" and the turn's created (see StartRound).
func runTurn(t *testing.T, fallback string, created int64, rounds ...[]string) ([][]string, []RoundResult) {
	t.Helper()
	c := NewCapture(isPaymentName)
	c.StartRound(0, fallback, 0)
	var outs [][]string
	var results []RoundResult
	for i, chunks := range rounds {
		if i > 0 {
			c.StartRound(i, "turn-1", created)
		}
		var got []string
		for _, ch := range chunks {
			out, err := c.Process([]byte(ch))
			if err != nil {
				t.Fatalf("Process(%s): %v", ch, err)
			}
			if out != nil {
				if !gjson.Valid(string(out)) {
					t.Fatalf("returned chunk is not JSON: %s", out)
				}
				got = append(got, string(out))
			}
		}
		outs = append(outs, got)
		results = append(results, c.EndRound())
	}
	return outs, results
}

func TestCaptureCases(t *testing.T) {
	tests := []struct {
		name    string
		rounds  [][]string
		want    [][]string // returned chunks per round
		payment []ToolCall // of the last round
		client  []ToolCall // of the last round
		finish  string     // of the last round
		usage   *Usage     // of the last round
	}{
		{
			name: "a provider that gives every call index 0 with its own id",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c2","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"x\"}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c3","type":"function","function":{"name":"send_coupon","arguments":"{}"}}]}}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c3","type":"function","function":{"name":"send_coupon","arguments":"{}"}}]}}]}`,
			}},
			payment: []ToolCall{{Index: 0, ID: "c2", Name: "create_order", Arguments: `{"sku":"x"}`}},
			client:  []ToolCall{{Index: 0, ID: "c1", Name: "get_weather", Arguments: "{}"}, {Index: 1, ID: "c3", Name: "send_coupon", Arguments: "{}"}},
		},
		{
			name: "a provider that gives every call index 0 and no id: a new name is a new call",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"create_order","arguments":"{\"sku\""}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":\"x\"}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"send_coupon","arguments":"{}"}}]}}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"type":"function","function":{"name":"send_coupon","arguments":"{}"}}]}}]}`,
			}},
			payment: []ToolCall{{Index: 0, Name: "create_order", Arguments: `{"sku":"x"}`}},
			client:  []ToolCall{{Index: 0, Name: "get_weather", Arguments: "{}"}, {Index: 1, Name: "send_coupon", Arguments: "{}"}},
		},
		{
			name: "a provider that repeats the name of a call in every delta under index 0 and no id: one call",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":"ty\":1}"}}]}}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":"ty\":1}"}}]}}]}`,
			}},
			client: []ToolCall{{Index: 0, Name: "get_weather", Arguments: `{"city":1}`}},
		},
		{
			name: "no index and one id for two calls: a new name is a new call, a nameless delta continues the last",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"id":"c0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"x\"}"}},{"id":"c0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"id":"c0","function":{"arguments":"\"SH\"}"}}]}}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c0","function":{"arguments":"\"SH\"}"}}]}}]}`,
			}},
			payment: []ToolCall{{Index: 0, ID: "c0", Name: "create_order", Arguments: `{"sku":"x"}`}},
			client:  []ToolCall{{Index: 0, ID: "c0", Name: "get_weather", Arguments: `{"city":"SH"}`}},
		},
		{
			name: "a call named late is held, then replayed whole to the client",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"arguments":"{\"ci"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"get_weather","arguments":"ty\":1"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":1"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}}]}`,
			}},
			client: []ToolCall{{Index: 0, ID: "c1", Name: "get_weather", Arguments: `{"city":1}`}},
		},
		{
			name: "a custom tool's call of the bot's passes as the model wrote it and is reported custom",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"query_order","arguments":"{}"}},{"index":1,"id":"c2","type":"custom","custom":{"name":"run_sql","input":"sel"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"custom":{"input":"ect 1"}}]}}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c2","type":"custom","custom":{"name":"run_sql","input":"sel"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"custom":{"input":"ect 1"}}]}}]}`,
			}},
			payment: []ToolCall{{Index: 0, ID: "c1", Name: "query_order", Arguments: "{}"}},
			client:  []ToolCall{{Index: 0, ID: "c2", Name: "run_sql", Arguments: "select 1", Custom: true}},
		},
		{
			name: "a custom tool's call named late is replayed whole as a custom call",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"custom","custom":{"input":"sel"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"custom":{"name":"run_sql","input":"ect \"1\""}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"custom":{"input":";"}}]}}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"custom","custom":{"name":"run_sql","input":"select \"1\""}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"custom":{"input":";"}}]}}]}`,
			}},
			client: []ToolCall{{Index: 0, ID: "c1", Name: "run_sql", Arguments: `select "1";`, Custom: true}},
		},
		{
			name: "a custom tool's call named like a payment tool is held and reported custom, for the turn to refuse",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"custom","custom":{"name":"create_order","input":"{\"sku\":\"x\"}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
			}},
			want:    [][]string{nil},
			payment: []ToolCall{{Index: 0, ID: "c1", Name: "create_order", Arguments: `{"sku":"x"}`, Custom: true}},
			finish:  "tool_calls",
		},
		{
			name: "a call whose name never comes is never shown and is reported as a payment call without name",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"arguments":"{}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
			}},
			want:    [][]string{nil},
			payment: []ToolCall{{Index: 0, ID: "c1", Arguments: "{}"}},
			finish:  "tool_calls",
		},
		{
			name: "a call named twice is never shown and is reported as a payment call without name, whatever comes after",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","name":"create_order","arguments":"{\"sku\""}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"get_weather","arguments":":\"x\"}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c2","type":"function","function":{"name":"create_order","name":"get_weather","arguments":"{}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"id":"c3","type":"function","function":{"name":"get_weather","Name":"create_order","arguments":"{}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"type":"function","function":{"name":"get_weather","arguments":"{}"},"Function":{"name":"create_order"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":9,"id":"c5","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c5","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
			}},
			payment: []ToolCall{
				{Index: 0, ID: "c1", Arguments: `{"sku":"x"}`},
				{Index: 1, ID: "c2", Arguments: "{}"},
				{Index: 2, ID: "c3", Arguments: "{}"},
				{Index: 3, Arguments: "{}", Extra: []byte(`{"Function":{"name":"create_order"}}`)},
			},
			client: []ToolCall{{Index: 0, ID: "c5", Name: "get_weather", Arguments: "{}"}},
		},
		{
			name: "a call named twice after the bot's call under its index is a new call",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","name":"create_order","arguments":"{}"}}]}}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
			}},
			payment: []ToolCall{{Index: 0, Arguments: "{}"}},
			client:  []ToolCall{{Index: 0, ID: "c1", Name: "get_weather", Arguments: "{}"}},
		},
		{
			name: "client indexes keep counting across rounds; role removed and id rewritten after round 0",
			rounds: [][]string{{
				`{"id":"r0","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"p","type":"function","function":{"name":"create_order","arguments":"{}"}},{"index":1,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
			}, {
				`{"id":"r1","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"index":0,"id":"c2","type":"function","function":{"name":"send_coupon","arguments":"{}"}}]}}]}`,
				`{"choices":[{"delta":{"content":"ok","role":"assistant"},"index":0}],"id":"r1"}`,
				`{"choices":[{"delta":{"role":"assistant"},"index":0}],"id":"r1"}`,
				`{"id":"r1","choices":[{"index":0,"delta":{"content":" done"}}]}`,
			}},
			want: [][]string{{
				`{"id":"r0","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
			}, {
				`{"id":"turn-1","choices":[{"index":0,"delta":{"content":"","tool_calls":[{"index":1,"id":"c2","type":"function","function":{"name":"send_coupon","arguments":"{}"}}]}}]}`,
				`{"choices":[{"delta":{"content":"ok"},"index":0}],"id":"turn-1"}`,
				`{"id":"turn-1","choices":[{"index":0,"delta":{"content":" done"}}]}`,
			}},
			client: []ToolCall{{Index: 1, ID: "c2", Name: "send_coupon", Arguments: "{}"}},
		},
		{
			name: "pretty-printed chunks with spaces around colons",
			rounds: [][]string{{
				`{"id": "a", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null}]}`,
				`{"id": "a", "choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}`,
			}},
			want: [][]string{{
				`{"id": "a", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null}]}`,
				`{"id": "a", "choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": null}], "usage": null}`,
			}},
			finish: "stop",
			usage:  &Usage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5},
		},
		{
			name: "an empty finish_reason string is no finish",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"reasoning_content":"hm"},"finish_reason":""}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"content":"yes"},"finish_reason":""}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"reasoning_content":"hm"},"finish_reason":""}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"content":"yes"},"finish_reason":""}]}`,
			}},
		},
		{
			name: "a proxy that puts finish_reason stop on every chunk: text flows, the last finish is kept",
			rounds: [][]string{{
				`{"id":"a","choices":[{"delta":{"content":"你好"},"finish_reason":"stop","index":0}]}`,
				`{"id":"a","choices":[{"delta":{"content":"！"},"finish_reason":"stop","index":0}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"delta":{"content":"你好"},"finish_reason":null,"index":0}]}`,
				`{"id":"a","choices":[{"delta":{"content":"！"},"finish_reason":null,"index":0}]}`,
			}},
			finish: "stop",
		},
		{
			name: "usage on every chunk is withheld from the client and the last one kept",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`,
				`{"id":"a","choices":[{"index":0,"delta":{"content":"b"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}`,
				`{"id":"a","choices":[{"index":0,"delta":{"content":"b"}}],"usage":null}`,
			}},
			usage: &Usage{PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7},
		},
		{
			name: "arguments sent as a JSON object instead of a string",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"p","type":"function","function":{"name":"create_order","arguments":{"sku":"x","quantity":2}}}]}}]}`,
			}},
			want:    [][]string{nil},
			payment: []ToolCall{{Index: 0, ID: "p", Name: "create_order", Arguments: `{"sku":"x","quantity":2}`}},
		},
		{
			name: "role as the last, first and only member of a delta after round 0",
			rounds: [][]string{{
				`{"id":"r0","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}]}`,
			}, {
				`{"id":"r1","choices":[{"index":0,"delta":{"content":"a" , "role" : "assistant"}}]}`,
				`{"id":"r1","choices":[{"index":0,"delta":{ "role":"assistant", "content":"b"}}]}`,
				`{"id":"r1","choices":[{"index":0,"delta":{"role":"assistant"}}]}`,
			}},
			want: [][]string{{
				`{"id":"r0","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}]}`,
			}, {
				`{"id":"turn-1","choices":[{"index":0,"delta":{"content":"a"}}]}`,
				`{"id":"turn-1","choices":[{"index":0,"delta":{ "content":"b"}}]}`,
			}},
		},
		{
			name: "openrouter repeats the role in every delta: removed after round 0",
			rounds: [][]string{{
				`{"id":"gen-0","choices":[{"index":0,"delta":{"role":"assistant","content":"a"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
			}, {
				`{"id":"gen-1","provider":"Anthropic","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
				`{"id":"gen-1","provider":"Anthropic","choices":[{"index":0,"delta":{"role":"assistant","content":"Your order"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
				`{"id":"gen-1","provider":"Anthropic","choices":[{"index":0,"delta":{"role":"assistant","content":" is"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
				`{"id":"gen-1","provider":"Anthropic","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
				`{"id":"gen-1","provider":"Anthropic","choices":[{"index":0,"delta":{"content":" ready","role":"assistant"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
				`{"id":"gen-1","provider":"Anthropic","choices":[{"index":0,"delta":{"role":"assistant","refusal":"no"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
			}},
			want: [][]string{{
				`{"id":"gen-0","choices":[{"index":0,"delta":{"role":"assistant","content":"a"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
			}, {
				`{"id":"turn-1","provider":"Anthropic","choices":[{"index":0,"delta":{"content":"Your order"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
				`{"id":"turn-1","provider":"Anthropic","choices":[{"index":0,"delta":{"content":" is"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
				`{"id":"turn-1","provider":"Anthropic","choices":[{"index":0,"delta":{"content":" ready"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
				`{"id":"turn-1","provider":"Anthropic","choices":[{"index":0,"delta":{"refusal":"no"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
			}},
		},
		{
			name: "keys spelled with escapes are read as a parser reads them",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"content":"x"}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"tool\u005fcalls":[{"index":0,"id":"p","type":"function","function":{"n\u0061me":"create_order","arguments":"{}"}}]}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"content":"y"},"finish\u005freason":"stop"}]}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"content":"x"}}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{"content":"y"},"finish\u005freason":null}]}`,
			}},
			payment: []ToolCall{{Index: 0, ID: "p", Name: "create_order", Arguments: "{}"}},
			finish:  "stop",
		},
		{
			name: "a provider that sends no id: text still flows unchanged",
			rounds: [][]string{{
				`{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`,
				`{"choices":[{"index":0,"delta":{"content":"a"}}]}`,
				`{"choices":[{"index":0,"delta":{"content":"b"}}]}`,
				`{"choices":[{"index":0,"delta":{"content":"c"}}]}`,
				`{"choices":[{"index":0,"delta":{"content":"d"}}]}`,
			}},
			want: [][]string{{
				`{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`,
				`{"choices":[{"index":0,"delta":{"content":"a"}}]}`,
				`{"choices":[{"index":0,"delta":{"content":"b"}}]}`,
				`{"choices":[{"index":0,"delta":{"content":"c"}}]}`,
				`{"choices":[{"index":0,"delta":{"content":"d"}}]}`,
			}},
		},
		{
			name: "chunks after the finish chunk are still processed",
			rounds: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{},"finish_reason":null,"content_filter_results":{"hate":{"filtered":false}}}]}`,
				`{"id":"a","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
			}},
			want: [][]string{{
				`{"id":"a","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`,
				`{"id":"a","choices":[{"index":0,"delta":{},"finish_reason":null,"content_filter_results":{"hate":{"filtered":false}}}]}`,
			}},
			finish: "stop",
			usage:  &Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outs, results := run(t, tc.rounds...)
			for i := range tc.want {
				if strings.Join(outs[i], "\n") != strings.Join(tc.want[i], "\n") {
					t.Errorf("round %d returned\n%s\nwant\n%s", i, strings.Join(outs[i], "\n"), strings.Join(tc.want[i], "\n"))
				}
			}
			last := results[len(results)-1]
			checkCalls(t, "payment calls", last.PaymentCalls, tc.payment)
			checkCalls(t, "client calls", last.ClientCalls, tc.client)
			if last.FinishReason != tc.finish {
				t.Errorf("finish = %q; want %q", last.FinishReason, tc.finish)
			}
			if (last.Usage == nil) != (tc.usage == nil) || (last.Usage != nil && *last.Usage != *tc.usage) {
				t.Errorf("usage = %+v; want %+v", last.Usage, tc.usage)
			}
		})
	}
}

// TestCaptureRoundWithoutID: a first round whose chunks name no id (or
// an empty one) goes out under the fallback id StartRound gave it, every
// chunk the client gets, the kept finish chunk and the round's ID alike, and
// a later round's chunks get the turn's id also where they have none: the
// Node SDK's stream helper takes a chunk's top-level members, the paygate
// object among them, only from a chunk with an id. A first round that names
// itself keeps its id, also after Azure's nameless first chunk.
func TestCaptureRoundWithoutID(t *testing.T) {
	const head = `{"object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	tests := []struct {
		name        string
		rounds      [][]string
		wantIDs     []string // of round 0's result, then of the ids every chunk of each round went out under
		wantFinish0 string   // the id of round 0's kept finish chunk
	}{
		{
			name: "no id member",
			rounds: [][]string{{
				head + `{"role":"assistant","content":"Checking"},"finish_reason":null}]}`,
				head + `{"content":" your"},"finish_reason":null}]}`,
				head + `{"content":" order"},"finish_reason":null}]}`,
				head + `{"content":" now."},"finish_reason":null}]}`, // past the slow path's first chunks
				head + `{"content":" Done"},"finish_reason":"tool_calls"}]}`,
			}, {
				`{"id":"chatcmpl-2",` + head[1:] + `{"role":"assistant","content":"Paid"},"finish_reason":null}]}`,
				head + `{"content":"."},"finish_reason":null}]}`,
			}},
			wantIDs:     []string{"chatcmpl-paygate-r1", "chatcmpl-paygate-r1", "turn-1"},
			wantFinish0: "chatcmpl-paygate-r1",
		},
		{
			name: "an empty id",
			rounds: [][]string{{
				`{"id":"",` + head[1:] + `{"role":"assistant","content":"Checking"},"finish_reason":null}]}`,
				`{"id":"",` + head[1:] + `{"content":" now"},"finish_reason":null}]}`,
				`{"id":"",` + head[1:] + `{"content":"."},"finish_reason":null}]}`,
				`{"id":"",` + head[1:] + `{"content":" Done"},"finish_reason":null}]}`,
				`{"id":"",` + head[1:] + `{},"finish_reason":"stop"}]}`,
			}},
			wantIDs:     []string{"chatcmpl-paygate-r1", "chatcmpl-paygate-r1"},
			wantFinish0: "chatcmpl-paygate-r1",
		},
		{
			name: "Azure's nameless first chunk, then ids",
			rounds: [][]string{{
				`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}`,
				`{"choices":[{"delta":{"role":"assistant","content":"Hi"},"index":0}],"created":5,"id":"chatcmpl-Az","model":"m"}`,
				`{"choices":[{"delta":{"content":" there"},"index":0}],"created":5,"id":"chatcmpl-Az","model":"m"}`,
				`{"choices":[{"delta":{},"finish_reason":"stop","index":0}],"created":5,"id":"chatcmpl-Az","model":"m"}`,
			}},
			wantIDs:     []string{"chatcmpl-Az", "chatcmpl-Az"},
			wantFinish0: "chatcmpl-Az",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outs, results := runTurn(t, "chatcmpl-paygate-r1", 0, tc.rounds...)
			if results[0].ID != tc.wantIDs[0] {
				t.Errorf("round 0's ID %q; want %q", results[0].ID, tc.wantIDs[0])
			}
			for r, chunks := range outs {
				for _, out := range chunks {
					if n := strings.Count(out, `"id":`); gjson.Get(out, "id").Str != tc.wantIDs[r+1] || n != 1 {
						t.Errorf("round %d: chunk %s has %d ids; want one, %q", r, out, n, tc.wantIDs[r+1])
					}
				}
			}
			if got := gjson.GetBytes(results[0].FinishChunk, "id"); got.Str != tc.wantFinish0 {
				t.Errorf("round 0's finish chunk %s; want id %q", results[0].FinishChunk, tc.wantFinish0)
			}
		})
	}
}

// TestCaptureLaterRoundsTakeTheTurnsCreated: every chunk of a later round
// goes out with the turn's "created" (round 0's, which its result reports,
// past Azure's first chunk and its 0), wherever the provider puts it, on
// the fast path and the slow one and in the kept finish chunk: a stitched
// stream carried each round's timestamp, where OpenAI gives every chunk
// of a stream the same one.
func TestCaptureLaterRoundsTakeTheTurnsCreated(t *testing.T) {
	const openai = `{"id":"r2","object":"chat.completion.chunk","created":1700000005,"model":"m","choices":[{"index":0,"delta":`
	gemini := func(delta, finish string) string {
		return `{"choices":[{"delta":` + delta + finish + `,"index":0}],"created":1700000005,"id":"r2","model":"m","object":"chat.completion.chunk"}`
	}
	round0 := []string{
		`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}`,
		`{"id":"r1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Sure. "},"finish_reason":null}]}`,
	}
	tests := []struct {
		name   string
		round1 []string
	}{
		{"created before the delta", []string{
			openai + `{"role":"assistant","content":"Your"},"finish_reason":null}]}`,
			openai + `{"content":" order"},"finish_reason":null}]}`,
			openai + `{"content":" is"},"finish_reason":null}]}`,
			openai + `{"content":" ready."},"finish_reason":null}]}`,
			openai + `{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},"finish_reason":null}]}`,
			openai + `{},"finish_reason":"stop"}]}`,
		}},
		{"created after the delta, the role in every delta", []string{
			gemini(`{"role":"assistant","content":"Your"}`, ""),
			gemini(`{"role":"assistant","content":" order"}`, ""),
			gemini(`{"content":" is"}`, ""),
			gemini(`{"content":" ready."}`, ""),
			gemini(`{}`, `,"finish_reason":"stop"`),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outs, results := runTurn(t, "", 1700000000, round0, tc.round1)
			if results[0].Created != 1700000000 {
				t.Errorf("round 0's Created %d; want 1700000000", results[0].Created)
			}
			for _, out := range append(outs[1], string(results[1].FinishChunk)) {
				if got := gjson.Get(out, "created").Int(); got != 1700000000 || strings.Count(out, `"created":`) != 1 {
					t.Errorf("chunk %s; want one created, 1700000000", out)
				}
			}
			if len(outs[1]) < 4 {
				t.Errorf("round 1 returned %d chunks; want its text and calls: %q", len(outs[1]), outs[1])
			}
		})
	}
	t.Run("none given: the chunks keep theirs", func(t *testing.T) {
		outs, _ := runTurn(t, "", 0, round0, tests[0].round1)
		for _, out := range outs[1] {
			if got := gjson.Get(out, "created").Int(); got != 1700000005 {
				t.Errorf("chunk %s; want its own created", out)
			}
		}
	})
}

// TestFinishChunkLogprobsOnce: a finish chunk that carries the last token
// (its text and logprobs with finish_reason, as vLLM and TGI send it) goes
// out as that text now and as the finish chunk at the turn's end, and only
// the first carries the token's logprobs: SDKs append every chunk's
// logprobs, and the token was counted twice. A finish chunk whose delta is
// empty keeps whatever logprobs it has.
func TestFinishChunkLogprobsOnce(t *testing.T) {
	lp := func(tok string) string {
		return `{"content":[{"token":"` + tok + `","logprob":-0.5,"bytes":null,"top_logprobs":[]}],"refusal":null}`
	}
	const head = `{"id":"r","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	tests := []struct {
		name   string
		chunks []string
		want   string // the tokens of every chunk's logprobs, the kept finish chunk's last
	}{
		{"the last token in the finish chunk", []string{
			head + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
			head + `{"content":"Hello"},"logprobs":` + lp("Hello") + `,"finish_reason":null}]}`,
			head + `{"content":" there."},"logprobs":` + lp(" there.") + `,"finish_reason":"stop"}]}`,
		}, "Hello| there."},
		{"an empty finish delta keeps its logprobs", []string{
			head + `{"role":"assistant","content":"Hello"},"logprobs":` + lp("Hello") + `,"finish_reason":null}]}`,
			head + `{},"logprobs":` + lp("<eos>") + `,"finish_reason":"stop"}]}`,
		}, "Hello|<eos>"},
	}
	for _, tc := range tests {
		for round := range 2 {
			t.Run(fmt.Sprintf("%s, round %d", tc.name, round), func(t *testing.T) {
				rounds := [][]string{tc.chunks}
				if round > 0 {
					rounds = [][]string{{head + `{"content":"x"},"finish_reason":"tool_calls"}]}`}, tc.chunks}
				}
				outs, results := run(t, rounds...)
				var toks []string
				for _, c := range append(outs[round], string(results[round].FinishChunk)) {
					for _, tok := range gjson.Get(c, "choices.0.logprobs.content.#.token").Array() {
						toks = append(toks, tok.Str)
					}
				}
				if got := strings.Join(toks, "|"); got != tc.want {
					t.Errorf("logprob tokens the client gets %q; want %q", got, tc.want)
				}
			})
		}
	}
}

// TestCaptureBreakBeforeText: after BreakBeforeText, the first text the
// client gets (on the slow path or the fast one, however many rounds
// later) has a paragraph break's chunk before it, unless it starts with
// white space; only the first.
func TestCaptureBreakBeforeText(t *testing.T) {
	const head = `{"id":"r2","object":"chat.completion.chunk","created":5,"model":"m2","choices":[{"index":0,"delta":`
	tests := []struct {
		name   string
		chunks []string
		want   []bool // a break before each returned chunk
	}{
		{"text in the first chunk", []string{head + `{"role":"assistant","content":"Your"},"finish_reason":null}]}`, head + `{"content":" order"},"finish_reason":null}]}`}, []bool{true, false}},
		{"text after a role chunk", []string{head + `{"role":"assistant","content":""},"finish_reason":null}]}`, head + `{"content":"Your"},"finish_reason":null}]}`, head + `{"content":" order"},"finish_reason":null}]}`}, []bool{true, false}},
		{"a space first", []string{head + `{"role":"assistant","content":" Your"},"finish_reason":null}]}`}, []bool{false}},
		{"an escaped line break first", []string{head + `{"role":"assistant","content":"\nYour"},"finish_reason":null}]}`}, []bool{false}},
		{"an escaped no-break space first", []string{head + `{"role":"assistant","content":"\u00a0Your"},"finish_reason":null}]}`}, []bool{false}},
		{"Chinese", []string{head + `{"role":"assistant","content":"订单已创建。"},"finish_reason":null}]}`}, []bool{true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.Process([]byte(`{"id":"r1","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Sure."},"finish_reason":"tool_calls"}]}`))
			c.EndRound()
			// A round without text: the break waits for the next one's.
			c.StartRound(1, "turn-1", 1)
			c.BreakBeforeText("\n\n")
			c.Process([]byte(`{"id":"r2","created":3,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"create_order","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`))
			c.EndRound()
			c.StartRound(2, "turn-1", 1)
			var got []bool
			for _, ch := range tc.chunks {
				out, err := c.Process([]byte(ch))
				if err != nil || out == nil {
					continue
				}
				brk := c.Break()
				got = append(got, brk != nil)
				if brk != nil {
					want := `{"id":"turn-1","object":"chat.completion.chunk","created":1,"model":"m2","choices":[{"index":0,"delta":{"content":"\n\n"},"logprobs":null,"finish_reason":null}]}`
					if string(brk) != want {
						t.Errorf("break %s; want %s", brk, want)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("breaks before the returned chunks %v; want %v", got, tc.want)
			}
			if r := c.EndRound(); strings.Contains(r.Content, "\n\n") {
				t.Errorf("the round's content %q has the break: it is paygate's, not the model's", r.Content)
			}
		})
	}
}

func TestCaptureMalformed(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"done sentinel", "[DONE]"},
		{"plain text", "OPENROUTER PROCESSING"},
		{"empty", ""},
		{"array", "[1,2]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			out, err := c.Process([]byte(tc.data))
			if !errors.Is(err, ErrMalformedChunk) || out != nil {
				t.Errorf("Process(%q) = %q, %v; want nil, ErrMalformedChunk", tc.data, out, err)
			}
		})
	}
}

// TestCaptureChunksDecodeWithGoOpenAI: every chunk the client gets, and the
// final chunk, decode with go-openai's stream type (the SDK bots use).
func TestCaptureChunksDecodeWithGoOpenAI(t *testing.T) {
	files := []string{"openai_parallel_mixed.sse", "gemini_parallel.sse", "qwen_tool.sse", "azure_tool.sse", "mistral_tool.sse"}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			outs := replay(t, c, strings.NewReader(string(readFixture(t, f))))
			res := c.EndRound()
			outs = append(outs, FinalChunk("turn-1", res.Model, 1752019200, "", "tool_calls", []byte(`{"actions":[]}`), res.Usage))
			for _, o := range outs {
				var v openai.ChatCompletionStreamResponse
				if err := json.Unmarshal(o, &v); err != nil {
					t.Errorf("go-openai cannot decode %s: %v", o, err)
				}
				for _, ch := range v.Choices {
					for _, tc := range ch.Delta.ToolCalls {
						if tc.Index == nil {
							t.Errorf("tool call without index for go-openai: %s", o)
						}
						if isPaymentName(tc.Function.Name) {
							t.Errorf("payment call reached the client: %s", o)
						}
					}
				}
			}
		})
	}
}

// TestCaptureOneRoleDeltaPerTurn: the client gets exactly one role delta
// per turn (SPEC 3.6), in the first returned chunk that has one, whatever
// round that is. A provider that sends no role with the tool-call chunks of
// round 0 (held back: payment calls) left the client with none at all, as
// every later round's role was removed, and the Node SDK's stream helper
// failed the answer ("missing role for choice 0"), its paygate object
// with it.
func TestCaptureOneRoleDeltaPerTurn(t *testing.T) {
	const head = `{"id":"r","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	text := func(delta string) string { return head + delta + `,"finish_reason":null}]}` }
	payCall := text(`{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"x\"}"}}]}`)
	finish := func(reason string) string { return head + `{},"finish_reason":"` + reason + `"}]}` }
	tests := []struct {
		name      string
		rounds    [][]string
		roleRound int // the round whose returned chunks carry the role
		roleChunk int // the returned chunk of that round that carries it
	}{
		{
			name:   "round 0 sends one: later rounds' are removed",
			rounds: [][]string{{text(`{"role":"assistant","content":"Sure. "}`), payCall, finish("tool_calls")}, {text(`{"role":"assistant","content":"Pay now."}`), text(`{"role":"assistant","content":" Bye"}`), finish("stop")}},
		},
		{
			name:      "round 0's payment call without a role: round 1's goes out, once",
			rounds:    [][]string{{payCall, finish("tool_calls")}, {text(`{"role":"assistant","content":"Pay now."}`), text(`{"role":"assistant","content":" Bye"}`), finish("stop")}},
			roleRound: 1,
		},
		{
			name:      "a role-only chunk of round 1, then text with the role repeated",
			rounds:    [][]string{{payCall, finish("tool_calls")}, {text(`{"content":""}`), text(`{"role":"assistant"}`), text(`{"role":"assistant","content":"Pay"}`), text(`{"role":"assistant","content":" now."}`), finish("stop")}},
			roleRound: 1, roleChunk: 0,
		},
		{
			name:      "round 1's role on the fast path, after a text chunk without one",
			rounds:    [][]string{{payCall, finish("tool_calls")}, {text(`{"content":"Pay"}`), text(`{"role":"assistant","content":" now"}`), text(`{"role":"assistant","content":"."}`), finish("stop")}},
			roleRound: 1, roleChunk: 1,
		},
		{
			name:      "a role with a client call in round 1",
			rounds:    [][]string{{payCall, finish("tool_calls")}, {text(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"k1","type":"function","function":{"name":"send_receipt","arguments":"{}"}}]}`), finish("tool_calls")}},
			roleRound: 1,
		},
		{
			name:      "no role before round 2",
			rounds:    [][]string{{payCall, finish("tool_calls")}, {payCall, finish("tool_calls")}, {text(`{"role":"assistant","content":"Done."}`), text(`{"role":"assistant","content":" Bye"}`), finish("stop")}},
			roleRound: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outs, results := runTurn(t, "", 1, tc.rounds...)
			roles := 0
			for r, chunks := range outs {
				for i, out := range chunks {
					if !gjson.Get(out, "choices.0.delta.role").Exists() {
						continue
					}
					roles++
					if r != tc.roleRound || i != tc.roleChunk {
						t.Errorf("round %d chunk %d carries a role: %s; want it in round %d chunk %d only", r, i, out, tc.roleRound, tc.roleChunk)
					}
				}
				if got, want := results[r].Sent.Role, r == tc.roleRound; got != want {
					t.Errorf("round %d: Sent.Role %v; want %v", r, got, want)
				}
				if fc := results[r].FinishChunk; gjson.GetBytes(fc, "choices.0.delta.role").Exists() {
					t.Errorf("round %d: the kept finish chunk carries a role: %s", r, fc)
				}
			}
			if roles != 1 {
				t.Errorf("%d role deltas returned over the turn; want 1: %q", roles, outs)
			}
		})
	}
	t.Run("paygate's own chunk carries it when none went out", func(t *testing.T) {
		c := NewCapture(isPaymentName)
		for _, ch := range []string{payCall, finish("tool_calls")} {
			if out, err := c.Process([]byte(ch)); err != nil || out != nil {
				t.Fatalf("Process(%s) = %s, %v; want it held", ch, out, err)
			}
		}
		c.EndRound()
		if c.RoleSent() || !c.ClaimRole() || !c.RoleSent() || c.ClaimRole() {
			t.Errorf("ClaimRole: want true once, while no role went out, and false after")
		}
		c.StartRound(1, "turn-1", 1)
		out, _ := c.Process([]byte(text(`{"role":"assistant","content":"Hi"}`)))
		if gjson.GetBytes(out, "choices.0.delta.role").Exists() {
			t.Errorf("a role after paygate's own: %s", out)
		}
	})
}

// TestCaptureSentRefusalAndOpaque: a round's record of what the client got
// holds its refusal text, read on the fast path (a refusal beside nothing
// else) and the slow one (with a role, past the first chunks) alike, and
// notes content given as parts and audio, which no recovery can match: a
// recovery repeated them to the client (SPEC 5: nothing sent twice).
func TestCaptureSentRefusalAndOpaque(t *testing.T) {
	const head = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	tests := []struct {
		name        string
		chunks      []string
		wantRefusal string
		wantOpaque  bool
	}{
		{"refusal", []string{
			head + `{"role":"assistant","refusal":"I can"},"finish_reason":null}]}`,
			head + `{"refusal":"'t"},"finish_reason":null}]}`,
			head + `{"refusal":" do"},"finish_reason":null}]}`,
			head + `{"refusal":" that \u2014 sorry."},"finish_reason":null}]}`,
		}, "I can't do that — sorry.", false},
		{"thinking parts", []string{
			head + `{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"hm"}]}]},"finish_reason":null}]}`,
			head + `{"content":"Hi"},"finish_reason":null}]}`,
		}, "", true},
		{"audio", []string{
			head + `{"role":"assistant","content":null,"audio":{"id":"audio_1","transcript":"Hi","data":"AAAA"}},"finish_reason":null}]}`,
		}, "", true},
		{"empty parts", []string{
			head + `{"role":"assistant","content":[]},"finish_reason":null}]}`,
			head + `{"content":"Hi"},"finish_reason":null}]}`,
		}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(func(string) bool { return false })
			for _, ch := range tc.chunks {
				if _, err := c.Process([]byte(ch)); err != nil {
					t.Fatal(err)
				}
			}
			sent := c.EndRound().Sent
			if sent.Refusal != tc.wantRefusal || sent.Opaque != tc.wantOpaque {
				t.Errorf("sent refusal %q, opaque %v; want %q, %v", sent.Refusal, sent.Opaque, tc.wantRefusal, tc.wantOpaque)
			}
		})
	}
}

// TestCaptureLaterRoundRemovesAdjacentMembers: in a later round the
// capture removes a delta's repeated role (the turn's went out) and the
// tool_calls of a held payment call; side by side at the delta's end each
// took the comma between them, and the second removal was dropped as an
// overlapping edit: the payment call, or a second role, reached the bot
// beside the delta's text. Gemini sends its text, role and calls in one
// delta in that order.
func TestCaptureLaterRoundRemovesAdjacentMembers(t *testing.T) {
	const head = `{"id":"r","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	const tail = `,"finish_reason":null}]}`
	const pay = `"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"x\"}"}}]`
	const round0 = head + `{"role":"assistant","content":"Sure."}` + tail
	const want = `{"id":"turn-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Ordering."}` + tail
	tests := []struct{ name, delta string }{
		{"text, role, call", `{"content":"Ordering.","role":"assistant",` + pay + `}`},
		{"text, call, role", `{"content":"Ordering.",` + pay + `,"role":"assistant"}`},
		{"with white space", `{ "content":"Ordering." , "role":"assistant" ,` + pay + ` }`},
		{"role and call first", `{"role":"assistant",` + pay + `,"content":"Ordering."}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outs, results := runTurn(t, "", 1, []string{round0}, []string{head + tc.delta + tail})
			if len(outs[1]) != 1 {
				t.Fatalf("round 1 returned %q; want one chunk", outs[1])
			}
			got := outs[1][0]
			if strings.Contains(got, "create_order") || strings.Contains(got, "role") {
				t.Errorf("round 1 returned %s: the payment call or a second role reached the bot", got)
			}
			if compact := strings.NewReplacer(" ", "").Replace(got); compact != want {
				t.Errorf("round 1 returned %s; want %s", got, want)
			}
			if p := results[1].PaymentCalls; len(p) != 1 || p[0].Name != "create_order" || p[0].Arguments != `{"sku":"x"}` {
				t.Errorf("round 1's payment calls %+v; want create_order held", p)
			}
		})
	}
}
