package proxy

import (
	"context"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"
)

// TestStreamedUsageCountedTwiceKeepsTheAnswer: a payment turn's last
// chunk that carries the answer's last words (or the bot's own tool call)
// with its finish and a usage that names a count twice (Gemini and others
// send all three in one chunk) reaches the bot whole: only its usage is
// read two ways, so only the usage may change. The chunk was skipped as
// ambiguous, and the bot got the answer cut short, or a "tool_calls"
// finish without its call, under a finish paygate made up, with no error.
// The bot's usage is then the counts paygate booked (the first copy),
// rendered by paygate, not the provider's object whose last copy its
// parser would read.
func TestStreamedUsageCountedTwiceKeepsTheAnswer(t *testing.T) {
	const head = `data: {"id":"u1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	const usage = `"usage":{"prompt_tokens":10,"completion_tokens":2,"completion_tokens":900,"total_tokens":12}}` + "\n\n"
	tests := []struct {
		name, last string
		tools      string
		want       func(body string) bool
	}{
		{"text", head + `[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}],` + usage, "",
			func(body string) bool { return strings.Contains(body, `" world"`) }},
		{"a choice's usage (Moonshot)", head + `[{"index":0,"delta":{"content":" world"},"finish_reason":"stop",` + strings.TrimSuffix(usage, "}\n\n") + "}]}\n\n", "",
			func(body string) bool { return strings.Contains(body, `" world"`) }},
		{"the bot's own call", head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],` + usage, weatherTool,
			func(body string) bool { return strings.Contains(body, `get_weather`) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, rawPieces(
				head+`[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`+"\n\n",
				tc.last, "data: [DONE]\n\n"))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(true, tc.tools+`"stream_options":{"include_usage":true},`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if !tc.want(body) {
				t.Fatalf("stream %s; want the last chunk's words or call", body)
			}
			var u gjson.Result
			for _, line := range strings.Split(body, "\n") {
				if d, ok := strings.CutPrefix(line, "data: "); ok && gjson.Get(d, "usage").IsObject() {
					u = gjson.Get(d, "usage")
				}
			}
			if strings.Count(u.Raw, "completion_tokens") != 1 || u.Get("completion_tokens").Int() != 2 {
				t.Errorf("usage %s; want the counts paygate read (completion_tokens 2), named once", u.Raw)
			}
		})
	}
}

// TestEventsUsageCountedTwiceKeepTheAnswer: the same chunks answering a
// non-stream request (a provider that ignores "stream": false) make the
// same answer: the chunk is read, as the capture reads it, and the bot's
// usage is the counts paygate booked, named once. The assembler skipped
// it: the text lost its last words, and an answer ending in the bot's own
// call lost its finish and was asked again.
func TestEventsUsageCountedTwiceKeepTheAnswer(t *testing.T) {
	const head = `data: {"id":"u1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	const usage = `"usage":{"prompt_tokens":10,"completion_tokens":2,"completion_tokens":900,"total_tokens":12}}` + "\n\n"
	tests := []struct {
		name, last string
		tools      string
		want       map[string]string
	}{
		{"text", head + `[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}],` + usage, "",
			map[string]string{"choices.0.message.content": "Hello world", "choices.0.finish_reason": "stop"}},
		{"the bot's own call", head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],` + usage, weatherTool,
			map[string]string{"choices.0.message.tool_calls.0.function.name": "get_weather", "choices.0.finish_reason": "tool_calls"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, rawPieces(
				head+`[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`+"\n\n",
				tc.last, "data: [DONE]\n\n"))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(false, tc.tools), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, body %s; want 200", resp.StatusCode, body)
			}
			for path, v := range tc.want {
				if g := gjson.Get(body, path).String(); g != v {
					t.Errorf("%s = %q; want %q (body %s)", path, g, v, body)
				}
			}
			if u := gjson.Get(body, "usage"); strings.Count(u.Raw, "completion_tokens") != 1 || u.Get("completion_tokens").Int() != 2 {
				t.Errorf("usage %s; want the counts paygate read (completion_tokens 2), named once", u.Raw)
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("provider asked %d times; want once", n)
			}
		})
	}
}

// TestEventsUsageCountedTwiceRunThePaymentCallOnce: a turn whose provider
// ignores "stream": false and ends its payment call's round with a chunk
// carrying the call's last piece, the finish and a usage naming a count
// twice runs the call once, with its whole arguments, and the bot's usage
// sums the counts paygate read (the first copy). The chunk was skipped: the
// round had no finish, was asked again, and the call never ran.
func TestEventsUsageCountedTwiceRunThePaymentCallOnce(t *testing.T) {
	const head = `data: {"id":"u1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":`
	first := head + `[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":"}}]},"finish_reason":null}]}` + "\n\n" +
		head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}],` +
		`"usage":{"prompt_tokens":10,"completion_tokens":5,"completion_tokens":500,"total_tokens":15}}` + "\n\n" + "data: [DONE]\n\n"
	second := head + `[{"index":0,"delta":{"role":"assistant","content":"Your order X1 is ready to pay."},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":20,"completion_tokens":8,"total_tokens":28}}` + "\n\n" + "data: [DONE]\n\n"
	client, tools, rounds := twoRoundClient(t, false, "text/event-stream", first, second)
	resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "buy premium"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := tools.executed.Load(); n != 1 {
		t.Errorf("payment call run %d times; want once", n)
	}
	if n := rounds.Load(); n != 2 {
		t.Errorf("provider asked %d times; want 2 (the call's round, the answer's)", n)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "Your order X1 is ready to pay." {
		t.Errorf("the bot got %+v; want the second round's text", resp.Choices)
	}
	if resp.Usage.CompletionTokens != 13 || resp.Usage.PromptTokens != 30 {
		t.Errorf("usage %+v; want the rounds' counts summed, the first copy of the count named twice (13 completion, 30 prompt)", resp.Usage)
	}
}
