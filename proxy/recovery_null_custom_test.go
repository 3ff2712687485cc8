package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/paygate/paygate/config"
)

// TestRecoveryWithNullCustomBesideFunction: a stream from a relay that
// serializes unset fields as null ("custom":null beside a call's
// "function") is cut after the bot received part of its get_weather call,
// and a fresh answer (continuation: none) from another provider repeats
// the call and finishes it. The null names nothing, as in the stream
// capture: the bot's call was recorded as a nameless custom call (plain
// path) and no fresh answer could repeat it, and a fresh answer with the
// null beside its repeated call was taken for another tool's (plain path
// and payment turn): either way the stream ended "not recovered: the new
// answer diverges". A null beside an object of the same name in another
// case ("Custom") still names the call twice: no recovery.
func TestRecoveryWithNullCustomBesideFunction(t *testing.T) {
	const cut = `data: {"id":"p1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	const fresh = `data: {"id":"f1","object":"chat.completion.chunk","created":2,"model":"m","choices":`
	chunk := func(head, delta string) string {
		return head + `[{"index":0,"delta":` + delta + `,"finish_reason":null}]}` + "\n\n"
	}
	// call is the first entry of the bot's call, with extra members.
	call := func(extra string) string {
		return `{"index":0,"id":"call_w","type":"function"` + extra + `,"function":{"name":"get_weather","arguments":"{\"city\":"}}`
	}
	const null, clash = `,"custom":null`, `,"custom":null,"Custom":{"name":"get_weather"}`
	for _, tc := range []struct {
		name        string
		sent, again string // the cut entry's and the fresh one's extra members
		paths       []string
		recovered   bool
	}{
		{"null sent", null, "", []string{"plain", "turn"}, true},
		{"null again", "", null, []string{"plain", "turn"}, true},
		{"null sent and again", null, null, []string{"plain", "turn"}, true},
		{"named twice again", "", clash, []string{"plain", "turn"}, false},
		// The capture holds a call named twice from the bot in a payment
		// turn; on the plain path the bot received it.
		{"named twice sent", clash, "", []string{"plain"}, false},
	} {
		for _, path := range tc.paths {
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				first := newFakeProvider(t, sseHandler(
					chunk(cut, `{"role":"assistant","content":"Checking. "}`),
					chunk(cut, `{"tool_calls":[`+call(tc.sent)+`]}`)))
				other := newFakeProvider(t, sseHandler(
					chunk(fresh, `{"role":"assistant","content":"Checking. "}`),
					chunk(fresh, `{"tool_calls":[`+call(tc.again)+`]}`),
					chunk(fresh, `{"tool_calls":[{"index":0`+tc.again+`,"function":{"arguments":"\"Paris\"}"}}]}`),
					fresh+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n", "data: [DONE]\n\n"))
				mutate := func(cfg *config.Config) {
					withSecondProvider(other.URL)(cfg)
					cfg.Providers[1].Continuation = "none"
				}
				var url string
				oc := openai.DefaultConfig(testClientKey)
				if path == "plain" {
					url, _ = newTestProxy(t, testConfig(t, first.URL, mutate))
				} else {
					url = toolsProxy(t, first.URL, &recordingTools{}, mutate)
					oc.HTTPClient = &http.Client{Transport: lateSkipHeaders{"X-WeChat-OpenID": "o-user-1"}}
				}
				oc.BaseURL = url + "/v1"
				text, calls, err := nullCustomStream(t, openai.NewClientWithConfig(oc))
				if !tc.recovered {
					if err == nil || !strings.Contains(err.Error(), "diverges") {
						t.Fatalf("the stream ended with %v; want not recovered, diverging (the bot got %q, %q)", err, text, calls)
					}
					return
				}
				if err != nil {
					t.Fatalf("the recovered stream failed: %v (the bot got %q, %q)", err, text, calls)
				}
				if text != "Checking. " {
					t.Errorf("the bot's text is %q; want %q", text, "Checking. ")
				}
				if want := []string{`call_w get_weather {"city":"Paris"}`}; !slices.Equal(calls, want) {
					t.Errorf("the bot got the calls %q; want %q", calls, want)
				}
				if n := len(other.requests()); n != 1 {
					t.Errorf("the other provider was asked %d times; want 1", n)
				}
			})
		}
	}
}

// nullCustomStream reads a go-openai stream of a weather question: the
// text, the calls ("id name arguments"), and the error it ended with.
func nullCustomStream(t *testing.T, c *openai.Client) (string, []string, error) {
	t.Helper()
	s, err := c.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "weather in Paris"}},
		Tools: []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
			Name: "get_weather", Parameters: map[string]any{"type": "object"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var text strings.Builder
	var calls []openai.ToolCall
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return text.String(), nil, err
		}
		for _, ch := range r.Choices {
			text.WriteString(ch.Delta.Content)
			for _, d := range ch.Delta.ToolCalls {
				if d.Index == nil {
					t.Fatalf("a tool-call delta without an index: %+v", d)
				}
				for len(calls) <= *d.Index {
					calls = append(calls, openai.ToolCall{})
				}
				c := &calls[*d.Index]
				c.ID += d.ID
				c.Function.Name += d.Function.Name
				c.Function.Arguments += d.Function.Arguments
			}
		}
	}
	var out []string
	for _, c := range calls {
		out = append(out, c.ID+" "+c.Function.Name+" "+c.Function.Arguments)
	}
	return text.String(), out, nil
}
