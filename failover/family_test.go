package failover

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/failover/h1"
)

func TestIsMistral(t *testing.T) {
	for _, tc := range []struct {
		base, model string
		want        bool
	}{
		{"https://api.mistral.ai/v1", "some-new-model", true},
		{"https://openrouter.ai/api/v1", "mistralai/mistral-small-3.2-24b-instruct", true},
		{"https://x.openai.azure.com/openai", "Mistral-Large-2411", true},
		{"http://vllm:8000/v1", "mistralai/Devstral-Small-2507", true},
		{"https://api.mistral.ai.evil.example/v1", "gpt-4o", false},
		{"https://api.openai.com/v1", "gpt-4o-mini", false},
		{"https://api.deepseek.com", "deepseek-chat", false},
		{"https://dashscope.aliyuncs.com/compatible-mode/v1", "qwen-plus", false},
	} {
		if got := isMistral(tc.base, tc.model); got != tc.want {
			t.Errorf("isMistral(%q, %q) = %v; want %v", tc.base, tc.model, got, tc.want)
		}
	}
}

// TestMistralToolCallIDs: every id not of Mistral's shape is mapped, the
// same way in a call and its result, to none the request names; ids of
// Mistral's shape and every other byte stay as they came.
func TestMistralToolCallIDs(t *testing.T) {
	taken := mistralID("call_x", 0) // the request already names the id call_x would map to
	body := `{"model":"m", "messages":[{"role":"user","content":"call_x"},
 {"role":"assistant","content":null,"tool_calls":[{"id":"call_x","type":"function","function":{"name":"a","arguments":"{}"}},{"id":"AbCdE1234","type":"function","function":{"name":"b","arguments":"{}"}},{"id":"call\u005fy","type":"function","function":{"name":"c","arguments":"{}"}}]},
 {"role":"tool","tool_call_id":"call_x","content":"1"},{"role":"tool","tool_call_id":"AbCdE1234","content":"2"},{"role":"tool","tool_call_id":"call_y","content":"3"},
 {"role":"assistant","content":null,"tool_calls":[{"id":"` + taken + `","type":"function","function":{"name":"d","arguments":"{}"}}]},
 {"role":"tool","tool_call_id":"` + taken + `","content":"4"}]}`
	out, err := mistralToolCallIDs([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	m := gjson.GetBytes(out, "messages")
	x, y := m.Get("1.tool_calls.0.id").Str, m.Get("1.tool_calls.2.id").Str
	for _, c := range []struct{ got, want string }{
		{m.Get("0.content").Str, "call_x"},
		{m.Get("1.tool_calls.1.id").Str, "AbCdE1234"},
		{m.Get("2.tool_call_id").Str, x},
		{m.Get("3.tool_call_id").Str, "AbCdE1234"},
		{m.Get("4.tool_call_id").Str, y},
		{m.Get("5.tool_calls.0.id").Str, taken},
		{m.Get("6.tool_call_id").Str, taken},
	} {
		if c.got != c.want {
			t.Errorf("got %q; want %q in %s", c.got, c.want, out)
		}
	}
	if !validMistralID(x) || !validMistralID(y) || x == y || x == taken || y == taken {
		t.Errorf("mapped call_x to %q, call_y to %q (%q taken); want distinct 9-character ids", x, y, taken)
	}
	if len(out) != len(body)-len("call_x")*2-len(`call\u005fy`)-len("call_y")+9*4 {
		t.Errorf("body %s; want only the ids changed", out)
	}
	plain := []byte(`{"messages":[{"role":"assistant","tool_calls":[{"id":"AbCdE1234"}]},{"role":"tool","tool_call_id":"AbCdE1234"}]}`)
	if got, _ := mistralToolCallIDs(plain); &got[0] != &plain[0] {
		t.Errorf("a body of valid ids was copied: %s", got)
	}
}

// TestThinkingAsText: an assistant message's content with a thinking
// block goes as its text (null beside tool calls when it has none); every
// other message, parts of text alone included, stays as it came.
func TestThinkingAsText(t *testing.T) {
	const think = `{"type":"thinking","thinking":[{"type":"text","text":"hm"}]}`
	for _, tc := range []struct{ in, want string }{
		{`{"role":"assistant","content":[` + think + `,{"type":"text","text":"Let me "},{"type":"text","text":"order."}],"tool_calls":[{"id":"a"}]}`,
			`{"role":"assistant","content":"Let me order.","tool_calls":[{"id":"a"}]}`},
		{`{"role":"assistant","content": [` + think + `],"tool_calls":[{"id":"a"}]}`, `{"role":"assistant","content": null,"tool_calls":[{"id":"a"}]}`},
		{`{"role":"assistant","content":[` + think + `]}`, `{"role":"assistant","content":""}`},
		{`{"role":"assistant","content":[{"type":"text","text":"thinking"}]}`, `{"role":"assistant","content":[{"type":"text","text":"thinking"}]}`},
		{`{"role":"user","content":[{"type":"text","text":"x"},` + think + `]}`, `{"role":"user","content":[{"type":"text","text":"x"},` + think + `]}`},
		{`{"role":"assistant","content":"\"thinking\""}`, `{"role":"assistant","content":"\"thinking\""}`},
	} {
		body := `{"model":"m","messages":[{"role":"user","content":"hi"},` + tc.in + `]}`
		got, err := thinkingAsText([]byte(body), 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"model":"m","messages":[{"role":"user","content":"hi"},` + tc.want + `]}`; string(got) != want {
			t.Errorf("thinkingAsText(%s)\n = %s\nwant %s", body, got, want)
		}
	}
}

// TestMistralAssistants: an assistant message, and each of its calls,
// keeps only the members Mistral takes, the others as they came; every
// other message (a user's that says "reasoning" included) stays byte for
// byte.
func TestMistralAssistants(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"role":"assistant","content":null,"reasoning_content":"hm","tool_calls":[{"id":"a"}]}`, `{"role":"assistant","content":null,"tool_calls":[{"id":"a"}]}`},
		{`{"role": "assistant", "reasoning": "hm", "reasoning_details": [{"type":"reasoning.text"}], "content": "ok"}`, `{"role":"assistant","content":"ok"}`},
		{`{"role":"assistant","content":null,"tool_calls":[{"id":"a","index":0,"type":"function","function":{"name":"f","arguments":"{}"},"extra_content":{"google":{"thought_signature":"x"}}}, {"id":"b","function":{}}]}`,
			`{"role":"assistant","content":null,"tool_calls":[{"id":"a","index":0,"type":"function","function":{"name":"f","arguments":"{}"}},{"id":"b","function":{}}]}`},
		{`{"role":"assistant","content":"hi", "prefix": true}`, `{"role":"assistant","content":"hi", "prefix": true}`},
		{`{"role":"user","content":"reasoning","reasoning_content":"x"}`, `{"role":"user","content":"reasoning","reasoning_content":"x"}`},
		{`{"role":"assistant","content":"\"reasoning\" is fine"}`, `{"role":"assistant","content":"\"reasoning\" is fine"}`},
	} {
		body := `{"messages":[{"role":"user","content":"hi"}, ` + tc.in + `]}`
		got, err := mistralAssistants([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"messages":[{"role":"user","content":"hi"}, ` + tc.want + `]}`; string(got) != want {
			t.Errorf("mistralAssistants(%s)\n = %s\nwant %s", body, got, want)
		}
	}
}

func TestDeepSeekReasoning(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"role":"assistant","content":null,"tool_calls":[{"id":"a"}]}`, `{"reasoning_content":"","role":"assistant","content":null,"tool_calls":[{"id":"a"}]}`},
		{`{ "role":"assistant","reasoning":"hm","tool_calls":[{"id":"a"}]}`, `{"reasoning_content":"hm", "role":"assistant","reasoning":"hm","tool_calls":[{"id":"a"}]}`},
		{`{"role":"assistant","reasoning_content":"x","tool_calls":[{"id":"a"}]}`, `{"role":"assistant","reasoning_content":"x","tool_calls":[{"id":"a"}]}`},
		{`{"role":"assistant","content":"hi","tool_calls":[]}`, `{"role":"assistant","content":"hi","tool_calls":[]}`},
		{`{"role":"assistant","content":"tool_calls"}`, `{"role":"assistant","content":"tool_calls"}`},
	} {
		body := `{"messages":[{"role":"user","content":"hi"},` + tc.in + `]}`
		got, err := deepseekReasoning([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"messages":[{"role":"user","content":"hi"},` + tc.want + `]}`; string(got) != want {
			t.Errorf("deepseekReasoning(%s)\n = %s\nwant %s", body, got, want)
		}
	}
	for _, tc := range []struct {
		base, model string
		want        bool
	}{
		{"https://api.deepseek.com", "whatever", true},
		{"http://fake/v1", "deepseek-reasoner", true},
		{"http://fake/v1", "deepseek-v4-flash", true},
		{"https://api.groq.com/openai/v1", "deepseek-r1-distill-llama-70b", false},
		{"https://openrouter.ai/api/v1", "deepseek/deepseek-r1", false},
	} {
		if got := isDeepSeek(tc.base, tc.model); got != tc.want {
			t.Errorf("isDeepSeek(%q, %q) = %v; want %v", tc.base, tc.model, got, tc.want)
		}
	}
}

// TestMistralAPIStreamOptions: Mistral's API refuses stream_options (422
// extra_forbidden, loc ["body","stream_options","include_usage"]), which
// paygate adds to every streamed chat request to count its usage: every
// stream of a provider on api.mistral.ai failed. Mistral sends the usage
// on its finish chunk unasked; its targets get the request without
// stream_options.
func TestMistralAPIStreamOptions(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		if gjson.GetBytes(b, "stream_options").Exists() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(422)
			_, _ = io.WriteString(w, `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","stream_options","include_usage"],"msg":"Extra inputs are not permitted","input":true}]},"type":"invalid_request_error","param":null,"code":null}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"id":"m","object":"chat.completion.chunk","created":1,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`+"\n\n"+
			`data: {"id":"m","object":"chat.completion.chunk","created":1,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"total_tokens":6,"completion_tokens":1}}`+"\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	d := &net.Dialer{}
	tr := &h1.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, srv.Listener.Addr().String()) // api.mistral.ai, here
	}}
	for _, tc := range []struct {
		base string
		want bool // stream_options kept
	}{
		{"http://api.mistral.ai/v1", false},
		{"http://vllm.internal/v1", true}, // a Mistral model served elsewhere counts its usage by it
	} {
		cfg := testConfig(map[string]string{"a": tc.base}, []string{"a"})
		cfg.Models[0].Targets[0].Model = "mistral-small-latest"
		r, err := New(cfg, Options{Transport: tr, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		// The key spelled with an escape, which Mistral reads as
		// stream_options, is left out too: a search for the plain
		// spelling let it through.
		for _, key := range []string{"stream_options", `stream\u005foptions`} {
			body := []byte(`{"model":"gpt","stream":true,"messages":[{"role":"user","content":"hi"}],"` + key + `":{"include_usage":true}}`)
			resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: body, Stream: true})
			if tc.want {
				if err == nil {
					resp.Close()
				}
				if !gjson.Get(got.Load().(string), "stream_options").Exists() {
					t.Errorf("%s got %s; want stream_options kept", tc.base, got.Load())
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s, %s: %v; want the stream (sent %s)", tc.base, key, err, got.Load())
			}
			resp.Close()
		}
	}
}

// TestMistralAdaptationAllocationFree: a conversation Mistral takes as it
// is (its own call ids and results, assistant messages of its members
// only: the usual request of a Mistral target) is sent as it came without
// an allocation. Each assistant message was rebuilt in a new buffer only to
// be found unchanged, and each id's JSON path formatted before it was
// found valid: 264 allocations for this history of ten tool rounds, on
// every request to Mistral, three times a whole non-stream turn's.
func TestMistralAdaptationAllocationFree(t *testing.T) {
	body := []byte(`{"model":"mistral-small-latest","messages":[{"role":"system","content":"shop"}`)
	for i := range 10 {
		id := fmt.Sprintf("AbCdE123%d", i)
		body = fmt.Appendf(body, `,{"role":"user","content":"weather %d?"}`+
			`,{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"hm"}]},{"type":"text","text":"Let me see."}],"tool_calls":[{"id":%q,"type":"function","function":{"name":"get_weather","arguments":"{}"},"index":0}]}`+
			`,{"role":"tool","tool_call_id":%q,"content":"sunny"},{"role":"assistant","content":"Sunny.","prefix":false}`, i, id, id)
	}
	body = append(body, `],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]}`...)
	tg := &target{mistral: true, mistralAPI: true}
	allocs := testing.AllocsPerRun(100, func() {
		out, err := tg.adaptMessages(body, 0)
		if err != nil || &out[0] != &body[0] {
			t.Fatalf("adaptMessages: %v, %s; want the body itself", err, out)
		}
	})
	if allocs != 0 {
		t.Errorf("adaptMessages allocates %v times for a conversation it leaves as it is; want 0", allocs)
	}
}

// TestToolsTailLeftOutOfAdaptChecks: the checks for a message to adapt
// search a body without the tools member its caller appended last
// (Request.ToolsTail), and adapt every message as they do on the whole body;
// a tail that is not such a member, or a provider's drop_fields, leaves the
// whole body searched.
func TestToolsTailLeftOutOfAdaptChecks(t *testing.T) {
	const msgs = `{"model":"m","messages":[{"role":"assistant","content":null,"refusal":"Which plan?"},` +
		`{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"hm"}]},{"type":"text","text":"Paid."}]}]`
	const tools = `,"tools":[{"type":"function","function":{"name":"request_refund","description":"Propose a refund: the user must confirm the refund."}}]}`
	body := []byte(msgs + tools)
	want, err := (&target{}).adaptMessages(body, 0)
	if err != nil || string(want) == string(body) {
		t.Fatalf("adaptMessages(%s, 0) = %s, %v; want both messages adapted", body, want, err)
	}
	for _, tc := range []struct {
		name  string
		tail  int
		drop  []string
		scope int // len(messagesScope(body, tail))
	}{
		{"the appended tools", len(tools), nil, len(msgs)},
		{"no tail", 0, nil, len(body)},
		{"a tail that is not the tools member", len(tools) - 1, nil, len(body)},
		{"a tail reaching into the messages", len(tools) + 20, nil, len(body)},
		{"a tail longer than the body", len(body) + 1, nil, len(body)},
		{"a provider that drops fields", len(tools), []string{"user"}, len(msgs)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(messagesScope(body, tc.tail)); got != tc.scope {
				t.Errorf("messagesScope(body, %d) holds %d bytes; want %d", tc.tail, got, tc.scope)
			}
			tg := &target{p: &provider{drop: tc.drop}}
			if got, err := tg.adaptMessages(body, tc.tail); err != nil || string(got) != string(want) {
				t.Errorf("adaptMessages(body, %d) = %s, %v; want %s", tc.tail, got, err, want)
			}
		})
	}
}

// TestToolsTailThatIsNoAppendedToolsMember: a ToolsTail whose bytes are
// not the tools member at the body's end is not trusted: one that lands on
// a string "tools" in the messages (`,"tools"]`, no colon), or one counted
// before a provider's drop_fields deleted "tools" itself, whose window then
// lands on a message's own "tools" member. Either way the refusal after it
// is still found and moved into the message's content.
func TestToolsTailThatIsNoAppendedToolsMember(t *testing.T) {
	refusal := `{"role":"assistant","content":null,"refusal":"Which plan would you like, monthly or yearly? ` + strings.Repeat("Tell me. ", 12) + `"}`
	const toolsHead = `,"tools":[{"type":"function","function":{"name":"request_refund","description":"`
	const toolsEnd = `"}}]}`
	// tools is the appended tools member of n bytes with its closing brace.
	tools := func(n int) string {
		if n < len(toolsHead)+len(toolsEnd) {
			t.Fatalf("a tools member of %d bytes cannot be made", n)
		}
		return toolsHead + strings.Repeat("x", n-len(toolsHead)-len(toolsEnd)) + toolsEnd
	}
	t.Run("a string tools in the messages", func(t *testing.T) {
		body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi","tags":["a","tools"]},` + refusal + `]` + tools(200) + ``)
		tail := len(body) - bytes.Index(body, []byte(`,"tools"]`))
		tg := &target{p: &provider{}}
		want, err := tg.adaptMessages(body, 0)
		if err != nil || string(want) == string(body) {
			t.Fatalf("adaptMessages(%s, 0) = %s, %v; want the refusal moved", body, want, err)
		}
		if got, err := tg.adaptMessages(body, tail); err != nil || string(got) != string(want) {
			t.Errorf("adaptMessages(body, %d), the tail at `,\"tools\"]` = %s, %v; want %s", tail, got, err, want)
		}
	})
	t.Run("drop_fields deletes the tools", func(t *testing.T) {
		msgs := `{"model":"m","messages":[{"role":"user","content":"hi","tools":0},` + refusal + `]`
		// The tail counted on the sent body, whose tools member the patch
		// deletes: its window on the patched body (msgs and "}") starts at
		// the user message's "tools".
		tail := len(msgs) + 1 - strings.Index(msgs, `,"tools":0`)
		tg := &target{p: &provider{drop: []string{escapePath("tools")}}}
		body, err := tg.patch([]byte(msgs+tools(tail)), false)
		if err != nil || string(body) != msgs+"}" {
			t.Fatalf("patch = %s, %v; want %s}", body, err, msgs)
		}
		if len(messagesScope(body, tail)) == len(body) {
			t.Fatalf("messagesScope(%s, %d) is the whole body; the test needs a window on the message's tools", body, tail)
		}
		want, err := (&target{p: &provider{}}).adaptMessages(body, 0)
		if err != nil || string(want) == string(body) {
			t.Fatalf("adaptMessages(%s, 0) = %s, %v; want the refusal moved", body, want, err)
		}
		if got, err := tg.adaptMessages(body, tail); err != nil || string(got) != string(want) {
			t.Errorf("adaptMessages(body, %d) for a provider dropping tools = %s, %v; want %s", tail, got, err, want)
		}
	})
}

// TestRefusalAsContent: an assistant message with a refusal and neither
// content nor calls (a bot's history of a json_schema turn paygate ended
// with its clarification, or of an OpenAI model's refusal) holds the
// refusal as its content, in its place, and one whose text content does
// not say it holds it after that text; every other message stays byte
// for byte, and a history of OpenAI's "refusal": null members is the body
// itself, without an allocation.
func TestRefusalAsContent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"role":"assistant","content":null,"refusal":"Which plan?"}`, `{"role":"assistant","content":"Which plan?"}`},
		{`{"role":"assistant","refusal":"Which plan?","parsed":null}`, `{"role":"assistant","content":"Which plan?","parsed":null}`},
		{`{"role": "assistant", "content": "", "refusal": "Which plan?", "tool_calls": []}`, `{"role":"assistant","content":"Which plan?","tool_calls":[]}`},
		{`{"role":"assistant","content":[],"refusal":"Which \"plan\"?"}`, `{"role":"assistant","content":"Which \"plan\"?"}`},
		{`{"role":"assistant","content":"On it.","refusal":"Which plan?"}`, `{"role":"assistant","content":"On it.\n\nWhich plan?"}`},
		{`{"role":"assistant","content":"I can't help with that.","refusal":"I can't help with that."}`, `{"role":"assistant","content":"I can't help with that.","refusal":"I can't help with that."}`},
		{`{"role":"assistant","content":[{"type":"text","text":"On it."}],"refusal":"Which plan?"}`, `{"role":"assistant","content":[{"type":"text","text":"On it."}],"refusal":"Which plan?"}`},
		{`{"role":"assistant","content":null,"refusal":"Which plan?","tool_calls":[{"id":"a"}]}`, `{"role":"assistant","content":null,"refusal":"Which plan?","tool_calls":[{"id":"a"}]}`},
		{`{"role":"assistant","content":null,"refusal":"x","function_call":{"name":"f"}}`, `{"role":"assistant","content":null,"refusal":"x","function_call":{"name":"f"}}`},
		{`{"role":"assistant","content":null,"refusal":""}`, `{"role":"assistant","content":null,"refusal":""}`},
		{`{"role":"user","content":null,"refusal":"x"}`, `{"role":"user","content":null,"refusal":"x"}`},
		// A refusal named twice is moved once: the message goes out
		// with one content, not a member of its own named twice.
		{`{"role":"assistant","content":null,"refusal":"Which plan?","refusal":null}`, `{"role":"assistant","content":"Which plan?"}`},
		{`{"role":"assistant","refusal":"Which plan?","content":"","refusal":"Which plan?"}`, `{"role":"assistant","content":"Which plan?"}`},
	} {
		body := `{"messages":[{"role":"user","content":"hi"}, ` + tc.in + `]}`
		got, err := refusalAsContent([]byte(body), 0)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"messages":[{"role":"user","content":"hi"}, ` + tc.want + `]}`
		if string(got) != want {
			t.Errorf("refusalAsContent(%s)\n = %s\nwant %s", body, got, want)
		}
	}
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Hello.","refusal":null,"annotations":[]},{"role":"user","content":"buy"}]}`)
	tg := &target{}
	allocs := testing.AllocsPerRun(100, func() {
		out, err := tg.adaptMessages(body, 0)
		if err != nil || &out[0] != &body[0] {
			t.Fatalf("adaptMessages: %v, %s; want the body itself", err, out)
		}
	})
	if allocs != 0 {
		t.Errorf("adaptMessages allocates %v times for a history of refusal null; want 0", allocs)
	}
}

// TestRefusalTextFilter: refusalAsContent walks the messages only for a
// body with a member named refusal whose value is text, not for every
// body an SDK wrote: OpenAI's Python and Node SDKs keep "refusal": null
// on each assistant message a bot pushes into its history, and the walk
// cost about 14 µs an attempt on a 20-turn history of them
// (BenchmarkAdaptMessagesSDKHistory), 25 times the check. The word in a
// user's text, a tool's arguments or a schema's property never needs it,
// and every body it rules out is one the walk leaves as it came.
func TestRefusalTextFilter(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"messages":[{"role":"assistant","content":null,"refusal":"Which plan?"}]}`, true},
		{`{"messages":[{"role":"assistant","content":null,"refusal" :` + "\n\t" + ` "Which plan?"}]}`, true},
		{`{"messages":[{"role":"assistant","content":"Hi.","refusal":null},{"role":"assistant","content":"Hi.","refusal": null},{"role":"assistant","refusal":""}]}`, true},
		{`{"messages":[{"role":"assistant","content":"Hi.","refusal":null},{"role":"assistant","content":"Hi.","refusal" : null}]}`, false},
		{`{"messages":[{"role":"user","content":"my \"refusal\": \"no\" policy"},{"role":"user","content":"refusal"},{"role":"user","content":["refusal",{"type":"text","text":"\"refusal\":\"x\""}]}]}`, false},
		{`{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"refusal\":\"x\"}"}}]}]}`, false},
		{`{"messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"refusal":{"type":"string"}}}}}]}`, false},
		{`{"messages":[{"role":"user","content":"hi"}]}`, false},
		{`{"refusal"`, false},
		{`{"refusal":`, false},
	} {
		if got := holdsRefusalText([]byte(tc.body)); got != tc.want {
			t.Errorf("holdsRefusalText(%s) = %v; want %v", tc.body, got, tc.want)
		}
		if !tc.want {
			if out, err := refusalAsContent([]byte(tc.body), 0); err != nil || string(out) != tc.body {
				t.Errorf("refusalAsContent(%s) = %s, %v; the filter ruled out a body the walk changes", tc.body, out, err)
			}
		}
	}
}

// BenchmarkAdaptMessagesSDKHistory is adaptMessages on a 20-turn history
// as OpenAI's SDKs give it back ("refusal": null, "annotations": [] and
// the other members of each kept assistant message) and, for comparison,
// on the same history without those members.
func BenchmarkAdaptMessagesSDKHistory(b *testing.B) {
	history := func(members string) []byte {
		var s strings.Builder
		s.WriteString(`{"model":"gpt-4o","messages":[{"role":"system","content":"You are the shop assistant of a WeChat mini-program. Answer briefly."}`)
		for range 20 {
			s.WriteString(`,{"role":"user","content":"What plans do you offer, and how much is the premium one?"}`)
			s.WriteString(`,{"role":"assistant","content":"We offer a basic plan at 9.90 CNY a month and a premium plan at 49.99 CNY a month, with priority support and more."` + members + `}`)
		}
		s.WriteString(`],"temperature":0.7}`)
		return []byte(s.String())
	}
	for _, h := range []struct{ name, members string }{
		{"sdk", `,"refusal":null,"annotations":[],"audio":null,"function_call":null,"tool_calls":null`},
		{"plain", ``},
	} {
		b.Run(h.name, func(b *testing.B) {
			body := history(h.members)
			t := &target{}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := t.adaptMessages(body, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRefusalAfterThinkingAsText: an assistant message whose content is
// Mistral's thinking blocks beside a refusal reaches a provider that takes
// no thinking block with the refusal as its content, as any other does:
// thinkingAsText leaves the text parts ("" for none), and a refusal beside
// an empty content would reach DeepSeek as the message it answers 400
// "Invalid assistant message: content or tool_calls must be set", and
// beside text would be a member its model does not read.
func TestRefusalAfterThinkingAsText(t *testing.T) {
	const thinking = `{"type":"thinking","thinking":[{"type":"text","text":"The user wants a plan."}]}`
	for _, tc := range []struct{ in, want string }{
		{`{"role":"assistant","content":[` + thinking + `],"refusal":"Which plan?"}`, `{"role":"assistant","content":"Which plan?"}`},
		{`{"role":"assistant","content":[` + thinking + `,{"type":"text","text":"On it."}],"refusal":"Which plan?"}`, `{"role":"assistant","content":"On it.\n\nWhich plan?"}`},
	} {
		for _, tg := range []*target{{}, {deepseek: true}} {
			body := `{"messages":[{"role":"user","content":"buy"},` + tc.in + `,{"role":"user","content":"premium"}]}`
			got, err := tg.adaptMessages([]byte(body), 0)
			if err != nil {
				t.Fatal(err)
			}
			if m := gjson.GetBytes(got, "messages.1").Raw; m != tc.want {
				t.Errorf("deepseek %v: adaptMessages(%s) sent %s; want %s", tg.deepseek, tc.in, m, tc.want)
			}
		}
	}
}

// TestAdaptMessagesPrefixStable: a history sent again with the next turn
// after it is adapted to the same bytes, for every family, so that a
// provider's prompt cache, which matches the request's leading bytes,
// still holds the earlier turn's: each message is adapted by what it
// holds, not by where it stands or what follows it. The history has a
// refusal alone and after text (refusalAsContent), thinking blocks
// beside a refusal (thinkingAsText), a payment round with a call id that
// is not Mistral's shape (mistralToolCallIDs) and no reasoning_content
// (deepseekReasoning), and OpenAI's "refusal": null members.
func TestAdaptMessagesPrefixStable(t *testing.T) {
	history := []string{`{"role":"system","content":"You sell plans."}`, `{"role":"user","content":"buy"}`,
		`{"role":"assistant","content":null,"refusal":"Which plan?","parsed":null}`, `{"role":"user","content":"premium"}`,
		`{"role":"assistant","content":"On it.","refusal":"Which \"plan\" <b>&?","annotations":[]}`, `{"role":"user","content":"monthly"}`,
		`{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"call_abc","type":"function","function":{"name":"query_order","arguments":"{}"}}]}`,
		`{"role":"tool","tool_call_id":"call_abc","content":"none"}`,
		`{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"t"}]}],"refusal":"Sorry?"}`,
		`{"role":"user","content":"yes"}`, `{"role":"assistant","content":"Done.","refusal":null}`, `{"role":"user","content":"thanks"}`}
	for _, tg := range []*target{{}, {deepseek: true}, {mistral: true}, {mistral: true, mistralAPI: true}} {
		var prev []byte
		for n := 2; n <= len(history); n++ {
			body := []byte(`{"model":"m","messages":[` + strings.Join(history[:n], ",") + `],"stream":true}`)
			out, err := tg.adaptMessages(body, 0)
			if err != nil {
				t.Fatal(err)
			}
			sent := out[:bytes.LastIndex(out, []byte(`],"stream"`))]
			if !bytes.HasPrefix(sent, prev) {
				t.Errorf("mistral %v, deepseek %v: %d messages went out as\n%s\nnot after the bytes %d messages went out as\n%s", tg.mistral, tg.deepseek, n, sent, n-1, prev)
			}
			prev = sent
		}
	}
}
