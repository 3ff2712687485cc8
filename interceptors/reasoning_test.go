package interceptors

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tidwall/gjson"
)

// TestAssistantToolMessageWithReasoning: a tool round's reasoning goes back
// on its assistant message as reasoning_content (DeepSeek's thinking mode
// requires it, https://api-docs.deepseek.com/guides/thinking_mode), and a
// reasoning_details array verbatim; neither key is sent when the round had
// none.
func TestAssistantToolMessageWithReasoning(t *testing.T) {
	calls := []ToolCall{{ID: "call_00_abc", Name: "query_order", Arguments: `{"order_no":"X1"}`}}
	tests := []struct {
		name   string
		r      Reasoning
		checks map[string]string // gjson path → raw value; "" for absent
	}{
		{"reasoning_content", Reasoning{Content: "I should query X1."}, map[string]string{
			"reasoning_content": `"I should query X1."`,
			"reasoning_details": "",
		}},
		{"escaped reasoning", Reasoning{Content: "say \"hi\"\n中文"}, map[string]string{
			"reasoning_content": `"say \"hi\"\n中文"`,
		}},
		{"no reasoning: no keys", Reasoning{}, map[string]string{
			"reasoning_content": "",
			"reasoning_details": "",
		}},
		{"reasoning_details verbatim", Reasoning{Content: "x", Details: []byte(` [{"type":"reasoning.encrypted","data":"abc==","id":"r1","format":"openai-responses-v1","index":0}] `)}, map[string]string{
			"reasoning_content": `"x"`,
			"reasoning_details": `[{"type":"reasoning.encrypted","data":"abc==","id":"r1","format":"openai-responses-v1","index":0}]`,
		}},
		{"empty reasoning_details: no key", Reasoning{Details: []byte(`[ ]`)}, map[string]string{
			"reasoning_details": "",
		}},
		{"reasoning_details not an array: no key", Reasoning{Details: []byte(`{"a":1}`)}, map[string]string{
			"reasoning_details": "",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := AssistantToolMessageWith("", tc.r, calls)
			if !gjson.ValidBytes(m) {
				t.Fatalf("not JSON: %s", m)
			}
			for path, want := range tc.checks {
				if got := gjson.GetBytes(m, path).Raw; got != want {
					t.Errorf("%s = %s; want %q in %s", path, got, want, m)
				}
			}
			if got := gjson.GetBytes(m, "tool_calls.0.function.arguments").Str; got != calls[0].Arguments {
				t.Errorf("arguments %q", got)
			}
			if string(AssistantToolMessage("", calls)) != string(AssistantToolMessageWith("", Reasoning{}, calls)) {
				t.Errorf("AssistantToolMessage differs from AssistantToolMessageWith without reasoning")
			}
		})
	}
}

// TestReadAnswerReasoning: a non-stream answer's reasoning is read from
// its first choice's message: reasoning_content, else reasoning
// (OpenRouter), each when a string, and reasoning_details as the raw array.
func TestReadAnswerReasoning(t *testing.T) {
	tests := []struct {
		name, body       string
		reasoning, recap string
	}{
		{"deepseek reasoning_content",
			`{"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":"","reasoning_content":"I should \"query\" it.","tool_calls":[]}}]}`,
			`I should "query" it.`, ""},
		{"openrouter reasoning and details",
			`{"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning":"hm","reasoning_details":[{"type":"reasoning.text","text":"hm","index":0}],"tool_calls":[]}}]}`,
			"hm", `[{"type":"reasoning.text","text":"hm","index":0}]`},
		{"reasoning_content wins over reasoning, whichever comes first",
			`{"choices":[{"message":{"reasoning":"b","reasoning_content":"a"}}]}`, "a", ""},
		{"reasoning_content first, then reasoning",
			`{"choices":[{"message":{"reasoning_content":"a","reasoning":"b"}}]}`, "a", ""},
		{"null reasoning_content",
			`{"choices":[{"message":{"reasoning_content":null,"content":"x"}}]}`, "", ""},
		{"null reasoning_content beside reasoning, as the stream capture reads it",
			`{"choices":[{"message":{"reasoning_content":null,"reasoning":"b"}}]}`, "b", ""},
		{"empty reasoning_content beside reasoning, as the stream capture reads it",
			`{"choices":[{"message":{"reasoning_content":"","reasoning":"b"}}]}`, "b", ""},
		{"reasoning beside an empty reasoning_content after it",
			`{"choices":[{"message":{"reasoning":"b","reasoning_content":""}}]}`, "b", ""},
		{"none", `{"choices":[{"message":{"content":"x"}}]}`, "", ""},
		{"second choice's reasoning is not the first's",
			`{"choices":[{"message":{"content":"x"}},{"message":{"reasoning_content":"other"}}]}`, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := ReadAnswer([]byte(tc.body))
			if a.Reasoning != tc.reasoning || a.ReasoningDetails != tc.recap {
				t.Errorf("got reasoning %q details %q; want %q %q", a.Reasoning, a.ReasoningDetails, tc.reasoning, tc.recap)
			}
		})
	}
}

// TestReasoningKeepsTheProvidersName: the reasoning of a tool round goes
// back under the member name the provider sent it in. Groq answers
// "reasoning" and refuses a message with "reasoning_content" (400
// "property 'reasoning_content' is unsupported, did you mean
// 'reasoning'?"); DeepSeek answers and requires "reasoning_content". The
// non-stream reader, both stream paths (the first chunks take the full
// walk, later ones the text scan) and a reasoning-only chunk with the
// other name all record it.
func TestReasoningKeepsTheProvidersName(t *testing.T) {
	calls := []ToolCall{{ID: "call_abc", Name: "query_order", Arguments: `{"order_no":"X1"}`}}
	for _, key := range []string{KeyReasoningContent, KeyReasoning} {
		other := KeyReasoningContent
		if key == KeyReasoningContent {
			other = KeyReasoning
		}
		check := func(t *testing.T, r Reasoning) {
			t.Helper()
			if r.Key != key {
				t.Errorf("Key %q; want %q", r.Key, key)
			}
			m := AssistantToolMessageWith("", r, calls)
			if got := gjson.GetBytes(m, key).Str; got != "I should query X1." {
				t.Errorf("%s = %q in %s", key, got, m)
			}
			if gjson.GetBytes(m, other).Exists() {
				t.Errorf("%s sent, a name the provider did not use: %s", other, m)
			}
		}
		t.Run(key+"/non-stream", func(t *testing.T) {
			a := ReadAnswer([]byte(`{"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":null,"` + key + `":"I should query X1.","tool_calls":[]}}]}`))
			check(t, Reasoning{Content: a.Reasoning, Key: a.ReasoningKey})
		})
		const p = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
		for _, path := range []struct {
			name   string
			chunks []string
		}{
			{"full walk", []string{ // the first chunks take the full walk
				p + `{"role":"assistant","` + key + `":"I should query X1."},"finish_reason":null}]}`,
			}},
			{"text scan", []string{ // later ones the text scan
				p + `{"role":"assistant","content":""},"finish_reason":null}]}`,
				p + `{"` + key + `":"I should "},"finish_reason":null}]}`,
				p + `{"` + key + `":"query X1."},"finish_reason":null}]}`,
				p + `{"` + other + `":""},"finish_reason":null}]}`, // no text: the name stays
			}},
		} {
			t.Run(key+"/stream/"+path.name, func(t *testing.T) {
				c := NewCapture(isPaymentName)
				c.StartRound(0, "t", 0)
				for _, ch := range append(path.chunks,
					p+`{"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"query_order","arguments":"{}"}}]},"finish_reason":null}]}`,
					p+`{},"finish_reason":"tool_calls"}]}`) {
					if _, err := c.Process([]byte(ch)); err != nil {
						t.Fatal(err)
					}
				}
				res := c.EndRound()
				if res.Reasoning != "I should query X1." {
					t.Fatalf("Reasoning %q", res.Reasoning)
				}
				check(t, Reasoning{Content: res.Reasoning, Key: res.ReasoningKey})
				c.StartRound(1, "t", 0)
				if r := c.EndRound(); r.ReasoningKey != "" {
					t.Errorf("a round without reasoning has ReasoningKey %q", r.ReasoningKey)
				}
			})
		}
	}
	if m := AssistantToolMessageWith("", Reasoning{Content: "x"}, calls); gjson.GetBytes(m, KeyReasoningContent).Str != "x" {
		t.Errorf("no Key: %s; want reasoning_content, as before", m)
	}
}

// TestStreamedReasoningDetailsAreMerged: a streamed round's
// reasoning_details deltas come back from EndRound as the one array a
// non-stream answer would carry. OpenRouter streams each block in pieces of
// one type and index: text, summary and data are joined, id, format and
// signature kept as they last came; blocks keep the order they first came
// in; a later null erases nothing. Only the first choice's count.
func TestStreamedReasoningDetailsAreMerged(t *testing.T) {
	const head = `{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"google/gemini-3-pro","choices":[{"index":0,"delta":`
	chunks := []string{
		head + `{"role":"assistant","content":""},"finish_reason":null}]}`,
		head + `{"reasoning":"I should ","reasoning_details":[{"type":"reasoning.text","text":"I should ","format":"google-gemini-v1","index":0}]},"finish_reason":null}]}`,
		head + `{"reasoning":"query \"X1\".","reasoning_details":[{"type":"reasoning.text","text":"query \"X1\".","index":0}]},"finish_reason":null}]}`,
		head + `{"reasoning_details":[{"type":"reasoning.text","signature":null,"index":0}]},"finish_reason":null}]}`,
		head + `{"reasoning_details":[{"type":"reasoning.encrypted","data":"c2ln","id":"tool_q1","format":"google-gemini-v1","index":1}]},"finish_reason":null}]}`,
		head + `{"reasoning_details":[{"type":"reasoning.encrypted","data":"bmF0dXJl","index":1},{"type":"reasoning.text","signature":"sig==","index":0}]},"finish_reason":null}]}`,
		`{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"google/gemini-3-pro","choices":[{"index":1,"delta":{"reasoning_details":[{"type":"reasoning.text","text":"other choice","index":0}]},"finish_reason":null}]}`,
		head + `{"tool_calls":[{"index":0,"id":"tool_q1","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":null}]}`,
		head + `{},"finish_reason":"tool_calls"}]}`,
	}
	c := NewCapture(isPaymentName)
	buf := make([]byte, 0, 1024) // one buffer for every chunk, as the SSE reader's
	for _, ch := range chunks {
		buf = append(buf[:0], ch...)
		if _, err := c.Process(buf); err != nil {
			t.Fatalf("Process(%s): %v", ch, err)
		}
		clear(buf[:cap(buf)])
	}
	res := c.EndRound()
	want := `[{"type":"reasoning.text","text":"I should query \"X1\".","format":"google-gemini-v1","index":0,"signature":"sig=="},` +
		`{"type":"reasoning.encrypted","data":"c2lnbmF0dXJl","id":"tool_q1","format":"google-gemini-v1","index":1}]`
	if !gjson.ValidBytes(res.Details) || !jsonEqual(t, string(res.Details), want) {
		t.Fatalf("Details %s\nwant    %s", res.Details, want)
	}
	if len(res.PaymentCalls) != 1 || res.Reasoning != `I should query "X1".` {
		t.Fatalf("calls %v, reasoning %q", res.PaymentCalls, res.Reasoning)
	}
	// The next round starts empty.
	c.StartRound(1, "turn-1", 0)
	if _, err := c.Process([]byte(head + `{"content":"done"},"finish_reason":"stop"}]}`)); err != nil {
		t.Fatal(err)
	}
	if d := c.EndRound().Details; d != nil {
		t.Fatalf("round 2 Details %s; want none", d)
	}
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}
