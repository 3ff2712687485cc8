package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

const e2eClientKey = "sk-paygate-e2e"

// e2eApp runs the binary's own application (newApp: the handler `serve`
// serves) against the given fake provider.
func e2eApp(t *testing.T, providerURL string) string {
	t.Helper()
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:
  - {name: fake, base_url: "` + providerURL + `/v1", api_key: sk-upstream}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
`
	cfg, err := config.Parse([]byte(src), "e2e.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, io.Discard, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	srv := h1test.NewServer(a.server.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// fakeOpenAI answers like OpenAI: a chat.completion, a text stream, or a
// stream of parallel tool calls with id and name only in each call's first
// delta and the arguments split across deltas.
func fakeOpenAI(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b := string(body)
		if !strings.Contains(b, `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"chatcmpl-e2e","object":"chat.completion","created":1700000000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_e2e","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from upstream"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		head := `{"id":"chatcmpl-e2e","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_e2e","choices":[`
		var events []string
		if strings.Contains(b, `"tools"`) {
			events = []string{
				`{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]}`,
				`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"logprobs":null,"finish_reason":null}]}`,
				`{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}]},"logprobs":null,"finish_reason":null}]}`,
				`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"logprobs":null,"finish_reason":null}]}`,
				`{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":\"CET\"}"}}]},"logprobs":null,"finish_reason":null}]}`,
				`{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}`,
			}
		} else {
			events = []string{
				`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}`,
				`{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}`,
				`{"index":0,"delta":{"content":" from"},"logprobs":null,"finish_reason":null}]}`,
				`{"index":0,"delta":{"content":" upstream"},"logprobs":null,"finish_reason":null}]}`,
				`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
			}
		}
		_, _ = io.WriteString(w, ": keep-alive\n\n")
		for _, e := range events {
			_, _ = io.WriteString(w, "data: "+head+e+"\n\n")
			w.(http.Flusher).Flush()
		}
		if strings.Contains(b, `"include_usage":true`) {
			_, _ = io.WriteString(w, `data: {"id":"chatcmpl-e2e","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`+"\n\n")
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func goClient(url string) *openai.Client {
	c := openai.DefaultConfig(e2eClientKey)
	c.BaseURL = url + "/v1"
	return openai.NewClientWithConfig(c)
}

func TestGoOpenAINonStream(t *testing.T) {
	url := e2eApp(t, fakeOpenAI(t).URL)
	resp, err := goClient(url).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "Say hello"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "Hello from upstream" {
		t.Errorf("content %q", got)
	}
	if resp.Model != "gpt-4o-2024-08-06" || resp.Usage.TotalTokens != 12 || resp.SystemFingerprint != "fp_e2e" {
		t.Errorf("model %q usage %+v fingerprint %q: want the upstream's", resp.Model, resp.Usage, resp.SystemFingerprint)
	}
}

func TestGoOpenAIStream(t *testing.T) {
	url := e2eApp(t, fakeOpenAI(t).URL)
	stream, err := goClient(url).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "Say hello"}},
		Stream:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var text strings.Builder
	var finish openai.FinishReason
	n := 0
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		n++
		if len(chunk.Choices) == 0 {
			t.Errorf("a chunk with no choices reached a client that did not ask for usage: %+v", chunk)
			continue
		}
		text.WriteString(chunk.Choices[0].Delta.Content)
		if chunk.Choices[0].FinishReason != "" {
			finish = chunk.Choices[0].FinishReason
		}
	}
	if text.String() != "Hello from upstream" || finish != openai.FinishReasonStop || n != 5 {
		t.Errorf("got %q finish %q in %d chunks; want the whole answer in 5", text.String(), finish, n)
	}
}

func TestGoOpenAIStreamToolCalls(t *testing.T) {
	url := e2eApp(t, fakeOpenAI(t).URL)
	stream, err := goClient(url).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "Weather and time in Paris?"}},
		Tools: []openai.Tool{
			{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object"}`)}},
			{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{Name: "get_time", Parameters: json.RawMessage(`{"type":"object"}`)}},
		},
		Stream: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	type call struct{ id, name, args string }
	calls := map[int]*call{}
	var finish openai.FinishReason
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		for _, tc := range chunk.Choices[0].Delta.ToolCalls {
			c := calls[*tc.Index]
			if c == nil {
				c = &call{}
				calls[*tc.Index] = c
			}
			if tc.ID != "" {
				c.id = tc.ID
			}
			if tc.Function.Name != "" {
				c.name = tc.Function.Name
			}
			c.args += tc.Function.Arguments
		}
		if chunk.Choices[0].FinishReason != "" {
			finish = chunk.Choices[0].FinishReason
		}
	}
	want := map[int]call{0: {"call_a", "get_weather", `{"city":"Paris"}`}, 1: {"call_b", "get_time", `{"tz":"CET"}`}}
	if len(calls) != 2 {
		t.Fatalf("got %d calls; want 2", len(calls))
	}
	for i, w := range want {
		if *calls[i] != w {
			t.Errorf("call %d: got %+v; want %+v", i, *calls[i], w)
		}
	}
	if finish != openai.FinishReasonToolCalls {
		t.Errorf("finish %q", finish)
	}
}

// TestNodeOpenAI drives the proxy with the official Node SDK from npm
// (test/node; `npm ci --prefix test/node` installs it, .ci/run does so).
func TestNodeOpenAI(t *testing.T) {
	dir, _ := filepath.Abs("../../test/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the Node openai package is missing (%v): run `npm ci --prefix test/node`", err)
		}
		t.Skip("Node openai package not installed: run `npm ci --prefix test/node`")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for this test: %v", err)
	}
	url := e2eApp(t, fakeOpenAI(t).URL)
	run := func(mode string) map[string]any {
		cmd := exec.Command(node, "chat.mjs", mode)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PAYGATE_URL="+url+"/v1", "PAYGATE_KEY="+e2eClientKey, "PAYGATE_MODEL=gpt-4o")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node %s: %v\n%s", mode, err, out)
		}
		var res map[string]any
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("node output %q: %v", out, err)
		}
		return res
	}
	ns := run("nonstream")
	if ns["content"] != "Hello from upstream" || ns["finish"] != "stop" || ns["extra"] != "fp_e2e" {
		t.Errorf("non-stream: %v", ns)
	}
	st := run("stream")
	if st["content"] != "Hello from upstream" || st["finish"] != "stop" || st["roles"] != float64(1) {
		t.Errorf("stream: %v", st)
	}
	if ids, _ := st["ids"].([]any); len(ids) != 1 {
		t.Errorf("stream ids %v; want one id", st["ids"])
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
