package interceptors

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestAssistantToolMessage(t *testing.T) {
	tests := []struct {
		name    string
		content string
		calls   []ToolCall
		checks  map[string]string // gjson path → raw value
	}{
		{
			name:    "gemini thought signature goes back on the call",
			content: "I'll order it.",
			calls: []ToolCall{{ID: "function-call-1", Name: "create_order", Arguments: `{"sku":"premium-monthly"}`,
				Extra: []byte(`{"extra_content":{"google":{"thought_signature":"Ctw="}}}`)}},
			checks: map[string]string{
				"role":                            `"assistant"`,
				"content":                         `"I'll order it."`,
				"tool_calls.0.id":                 `"function-call-1"`,
				"tool_calls.0.type":               `"function"`,
				"tool_calls.0.function.name":      `"create_order"`,
				"tool_calls.0.function.arguments": `"{\"sku\":\"premium-monthly\"}"`,
				"tool_calls.0.extra_content.google.thought_signature": `"Ctw="`,
			},
		},
		{
			name:  "no content is null; empty arguments become {}",
			calls: []ToolCall{{ID: "a", Name: "query_order"}, {ID: "b", Name: "create_order", Arguments: `{"sku":"x"}`}},
			checks: map[string]string{
				"content":                         "null",
				"tool_calls.0.function.arguments": `"{}"`,
				"tool_calls.1.id":                 `"b"`,
				"tool_calls.#":                    "2",
			},
		},
		{
			name: "a custom tool's call goes back as one, its input as written (empty stays empty)",
			calls: []ToolCall{{ID: "c", Name: "run_sql", Arguments: "select 'a'", Custom: true,
				Extra: []byte(`{"extra_content":{"k":1}}`)}, {ID: "d", Name: "noop", Custom: true}},
			checks: map[string]string{
				"tool_calls.0":          `{"id":"c","type":"custom","custom":{"name":"run_sql","input":"select 'a'"},"extra_content":{"k":1}}`,
				"tool_calls.1":          `{"id":"d","type":"custom","custom":{"name":"noop","input":""}}`,
				"tool_calls.#":          "2",
				"content":               "null",
				"tool_calls.0.function": "",
			},
		},
		{
			name:    "text with quotes, newlines, control and non-ASCII characters",
			content: "say \"hi\"\n\ttab \x01 中文 \u2028",
			calls:   []ToolCall{{ID: "a", Name: "n", Arguments: "{\"q\":\"\\u4e2d\"}"}},
			checks: map[string]string{
				"content":                         `"say \"hi\"\n\ttab \u0001 中文 \u2028"`,
				"tool_calls.0.function.arguments": `"{\"q\":\"\\u4e2d\"}"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := AssistantToolMessage(tc.content, tc.calls)
			if !gjson.ValidBytes(m) {
				t.Fatalf("not JSON: %s", m)
			}
			for path, want := range tc.checks {
				if got := gjson.GetBytes(m, path).Raw; got != want {
					t.Errorf("%s = %s; want %s", path, got, want)
				}
			}
			if got := gjson.GetBytes(m, "content").String(); got != tc.content {
				t.Errorf("content round trip = %q; want %q", got, tc.content)
			}
		})
	}
}

// TestParsableArguments: a payment call cut by max_tokens goes back to the
// provider with {} (vLLM and SGLang refuse a history whose arguments do not
// parse); whole arguments, and a slice with none to replace, are untouched.
func TestParsableArguments(t *testing.T) {
	calls := []ToolCall{{ID: "a", Name: "create_order", Arguments: `{"sku":"x"}`}, {ID: "b", Name: "create_order", Arguments: `{"sku":"prem`},
		{ID: "c", Name: "query_order"}, {ID: "d", Name: "create_order", Arguments: `{'sku': 'x'}`}}
	got := ParsableArguments(calls)
	want := []string{`{"sku":"x"}`, "{}", "", "{}"}
	for i, c := range got {
		if c.ID != calls[i].ID || c.Arguments != want[i] {
			t.Errorf("call %d: %+v; want id %s, arguments %q", i, c, calls[i].ID, want[i])
		}
	}
	if calls[1].Arguments != `{"sku":"prem` {
		t.Errorf("the caller's slice was changed: %+v", calls[1])
	}
	// A custom tool's input is text, which no provider parses: it goes
	// back as the model wrote it.
	custom := []ToolCall{{ID: "e", Name: "create_order", Arguments: "select 1", Custom: true}}
	if g := ParsableArguments(custom); g[0].Arguments != "select 1" {
		t.Errorf("a custom call's input became %q", g[0].Arguments)
	}
	whole := calls[:1]
	if g := ParsableArguments(whole); &g[0] != &whole[0] {
		t.Errorf("nothing to replace, yet a copy was made")
	}
	// A call without a name goes back under one: OpenAI refuses an empty
	// name in the history.
	nameless := []ToolCall{{ID: "f", Arguments: `{}`}}
	if g := ParsableArguments(nameless); g[0].Name != UnnamedCall || g[0].Arguments != `{}` || nameless[0].Name != "" {
		t.Errorf("a nameless call went back as %+v (the caller's: %+v); want it named %q", g[0], nameless[0], UnnamedCall)
	}
}

func TestToolResultMessage(t *testing.T) {
	result := []byte(`{"order_no":"PG1","amount":"49.99 CNY","status":"awaiting_payment","note":"引号\"和\\反斜杠"}`)
	m := ToolResultMessage("call_1", result)
	if !gjson.ValidBytes(m) {
		t.Fatalf("not JSON: %s", m)
	}
	r := gjson.ParseBytes(m)
	if r.Get("role").String() != "tool" || r.Get("tool_call_id").String() != "call_1" {
		t.Errorf("message = %s", m)
	}
	c := r.Get("content")
	if c.Type != gjson.String || c.String() != string(result) {
		t.Errorf("content = %s; want the result as a string", c.Raw)
	}
}

func TestFinalChunk(t *testing.T) {
	tests := []struct {
		name    string
		role    string
		paygate []byte
		usage   *Usage
		checks  map[string]string
	}{
		{
			name:    "with paygate and usage",
			paygate: []byte(`{"actions":[{"type":"order_created"}],"rounds":[{"provider":"a","model":"m"}]}`),
			usage:   &Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15},
			checks: map[string]string{
				"id": `"turn-1"`, "object": `"chat.completion.chunk"`, "created": "1700000000", "model": `"gpt-4o"`,
				"choices.0.index": "0", "choices.0.delta": "{}", "choices.0.finish_reason": `"stop"`,
				"paygate.actions.0.type": `"order_created"`, "paygate.rounds.0.provider": `"a"`,
				"usage.prompt_tokens": "10", "usage.completion_tokens": "5", "usage.total_tokens": "15",
			},
		},
		{
			name:   "neither",
			checks: map[string]string{"choices.0.finish_reason": `"stop"`, "paygate": "", "usage": ""},
		},
		{
			name:   "the turn's role, none having gone out before",
			role:   "assistant",
			checks: map[string]string{"choices.0.delta": `{"role":"assistant"}`, "choices.0.finish_reason": `"stop"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := FinalChunk("turn-1", "gpt-4o", 1700000000, tc.role, "stop", tc.paygate, tc.usage)
			if !gjson.ValidBytes(ch) || strings.Contains(string(ch), "\n") {
				t.Fatalf("not one line of JSON: %s", ch)
			}
			for path, want := range tc.checks {
				if got := gjson.GetBytes(ch, path).Raw; got != want {
					t.Errorf("%s = %s; want %s", path, got, want)
				}
			}
		})
	}
}

func TestFormatFen(t *testing.T) {
	tests := []struct {
		fen  int64
		want string
	}{{4999, "49.99 CNY"}, {800, "8.00 CNY"}, {5, "0.05 CNY"}, {0, "0.00 CNY"}, {-150, "-1.50 CNY"}, {50000, "500.00 CNY"}}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := FormatFen(tc.fen); got != tc.want {
				t.Errorf("FormatFen(%d) = %q; want %q", tc.fen, got, tc.want)
			}
		})
	}
}
