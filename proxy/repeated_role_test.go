package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"
)

// TestRepeatedRoleOneDelta: OpenRouter, Gemini's OpenAI endpoint and GLM put
// "role":"assistant" in the delta of every chunk: text, a call of the bot's
// own tool, the finish and the usage chunk. openai-python's stream helper
// (client.chat.completions.stream, whose lib/streaming/_deltas.py
// accumulate_delta joins every string member of the deltas) then gave the
// bot a message whose role is "assistantassistant…", as BerriAI/litellm#9986
// reports of LiteLLM's stream. paygate promises one role delta (SPEC 3.6):
// a later round's repeats were removed, round 0's passed as sent. The bot
// now reads exactly one role, with go-openai and with an accumulator that
// joins strings as openai-python's does, and every chunk relayed is the
// provider's byte for byte but for its role member (a role-only delta left
// {}).
func TestRepeatedRoleOneDelta(t *testing.T) {
	const head = `data: {"id":"gen-1","provider":"Google","model":"google/gemini-2.5-pro","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":`
	ev := func(delta, finish, after string) string {
		return head + delta + `,"finish_reason":` + finish + `,"native_finish_reason":null,"logprobs":null}]` + after + `,"x_trace":{"k":[1,2]}}` + "\n\n"
	}
	arg := func(a string) string {
		return ev(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"function":{"arguments":"`+a+`"}}]}`, `null`, ``)
	}
	relayed := []string{
		ev(`{"role":"assistant","content":"Let me","reasoning":null,"reasoning_details":[]}`, `null`, ``),
		ev(`{"role":"assistant","content":" check.","reasoning":null,"reasoning_details":[]}`, `null`, ``),
		ev(`{"role":"assistant"}`, `null`, ``),
		ev(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":""}}]}`, `null`, ``),
		arg(`{\"city\":`), arg(`\"Hangzhou\"`), arg(`}`),
	}
	events := append(append([]string(nil), relayed...),
		ev(`{"role":"assistant","content":""}`, `"tool_calls"`, ``),
		ev(`{"role":"assistant","content":""}`, `null`, `,"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}`),
		"data: [DONE]\n\n")
	fp := newFakeProvider(t, sseHandler(events...))
	url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
	body := chatBodyWith(true, weatherTool+`"stream_options":{"include_usage":true},`, `{"role":"user","content":"weather in Hangzhou"}`)

	resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
	got := dataOf(readAll(t, resp.Body))
	if len(got) < len(relayed) {
		t.Fatalf("the bot got %d events; want the %d relayed first:\n%s", len(got), len(relayed), strings.Join(got, "\n"))
	}
	for i, e := range relayed {
		want := strings.TrimSuffix(strings.TrimPrefix(e, "data: "), "\n\n")
		if i > 0 { // the first role goes out; each later one is removed
			want = strings.Replace(want, `{"role":"assistant"}`, `{}`, 1)
			want = strings.Replace(want, `"role":"assistant",`, ``, 1)
		}
		if got[i] != want {
			t.Errorf("event %d:\n got %s\nwant %s", i, got[i], want)
		}
	}
	roles := 0
	for _, d := range got {
		gjson.Get(d, "choices.#.delta").ForEach(func(_, delta gjson.Result) bool {
			if delta.Get("role").Exists() {
				roles++
			}
			return true
		})
	}
	if roles != 1 {
		t.Errorf("the stream carries %d role members; want 1:\n%s", roles, strings.Join(got, "\n"))
	}

	// openai-python's stream helper, as the bot reads the stream; and the
	// same helper on the provider's own stream, which repeats the role.
	msg := pyAccumulate(t, got)
	if msg["role"] != "assistant" || msg["content"] != "Let me check." {
		t.Errorf("openai-python's accumulator read role %q, content %q; want assistant, Let me check.", msg["role"], msg["content"])
	}
	if a := gjson.Get(mustJSON(t, msg), "tool_calls.0.function.arguments").String(); a != `{"city":"Hangzhou"}` {
		t.Errorf("openai-python's accumulator read the arguments %q", a)
	}
	if direct := pyAccumulate(t, dataOf(strings.Join(events, ""))); direct["role"] != strings.Repeat("assistant", 9) {
		t.Errorf("the accumulator joins no strings (it read the provider's role as %q): it is not openai-python's", direct["role"])
	}

	// go-openai reads one chunk with a role.
	c := openai.DefaultConfig(testClientKey)
	c.BaseURL = url + "/v1"
	c.HTTPClient = &http.Client{Transport: withOpenID{"o-user-1"}}
	s, err := openai.NewClientWithConfig(c).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model:         "gpt-test",
		Messages:      []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "weather in Hangzhou"}},
		Tools:         []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{Name: "get_weather", Parameters: map[string]any{"type": "object"}}}},
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var sdkRoles []string
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range r.Choices {
			if ch.Delta.Role != "" {
				sdkRoles = append(sdkRoles, ch.Delta.Role)
			}
		}
	}
	if len(sdkRoles) != 1 || sdkRoles[0] != "assistant" {
		t.Errorf("go-openai read the roles %q; want one, assistant", sdkRoles)
	}
}

// dataOf is the data of each event of an SSE stream, [DONE] left out.
func dataOf(stream string) []string {
	var out []string
	for _, line := range strings.Split(stream, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && d != "[DONE]" {
			out = append(out, d)
		}
	}
	return out
}

// pyAccumulate is openai-python's ChatCompletionStreamState for choice 0:
// the first delta is the message, each later one merged into it by
// accumulate_delta (lib/streaming/_deltas.py).
func pyAccumulate(t *testing.T, chunks []string) map[string]any {
	t.Helper()
	var msg map[string]any
	for _, d := range chunks {
		var ch struct {
			Choices []struct {
				Index int            `json:"index"`
				Delta map[string]any `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(d), &ch); err != nil {
			t.Fatalf("%v: %s", err, d)
		}
		for _, c := range ch.Choices {
			if c.Index != 0 {
				continue
			}
			if msg == nil {
				msg = c.Delta
				continue
			}
			msg = accumulateDelta(msg, c.Delta)
		}
	}
	return msg
}

// accumulateDelta merges delta into acc as openai-python's accumulate_delta
// does: strings joined, numbers added, objects merged, lists of objects
// merged by their "index", "index" and "type" replaced; a null takes
// nothing away.
func accumulateDelta(acc, delta map[string]any) map[string]any {
	for k, dv := range delta {
		av, ok := acc[k]
		if !ok || av == nil || k == "index" || k == "type" {
			acc[k] = dv
			continue
		}
		switch a := av.(type) {
		case string:
			if d, ok := dv.(string); ok {
				acc[k] = a + d
			}
		case float64:
			if d, ok := dv.(float64); ok {
				acc[k] = a + d
			}
		case map[string]any:
			if d, ok := dv.(map[string]any); ok {
				acc[k] = accumulateDelta(a, d)
			}
		case []any:
			d, ok := dv.([]any)
			if !ok {
				continue
			}
			for _, e := range d {
				em, isObj := e.(map[string]any)
				ix, hasIx := em["index"].(float64)
				if !isObj || !hasIx {
					a = append(a, e) // a list of plain values only grows
					continue
				}
				if i := int(ix); i < len(a) {
					if am, ok := a[i].(map[string]any); ok {
						a[i] = accumulateDelta(am, em)
					}
				} else {
					a = append(a, em)
				}
			}
			acc[k] = a
		}
	}
	return acc
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
