package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

// TestCallPieceSkippedAfterAnEarlyFinish: a relay that puts finish_reason
// on every chunk of a call (LiteLLM's Gemini, before its fix) streams the
// call's later pieces after a finish. An event among them that is skipped
// unread (malformed) may hold a piece of the arguments, and what is left
// can still be arguments the model did not write: {"sku":…} without its
// `,"quantity":3`. Such a call is never run (the round is lost, its
// payment calls Damaged), as it is when the piece is lost before the
// finish; the same stream whole runs the call once, with quantity 3. A
// malformed event after the finish with no call piece after it takes
// nothing from the calls, which run.
func TestCallPieceSkippedAfterAnEarlyFinish(t *testing.T) {
	const c = `data: {"id":"g1","object":"chat.completion.chunk","created":1,"model":"gemini","choices":`
	first := c + `[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\""}}]},"finish_reason":"tool_calls"}]}` + "\n\n"
	middle := c + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":",\"quantity\":3"}}]},"finish_reason":"tool_calls"}]}` + "\n\n"
	last := c + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]},"finish_reason":"tool_calls"}]}` + "\n\n"
	const want = `create_order {"sku":"premium-monthly","quantity":3}`
	for _, tc := range []struct {
		name   string
		events []string
		want   []string // the calls run
	}{
		{"whole", []string{first, middle, last}, []string{want}},
		{"a piece skipped", []string{first, strings.TrimSuffix(middle, "}\n\n") + "\n\n", last}, nil},
		{"garbage after the whole call", []string{first, middle, last, "data: {bad\n\n"}, []string{want}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(sseHandler(append(tc.events, "data: [DONE]\n\n")...), textRound(true, "done")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			oc := openai.DefaultConfig(testClientKey)
			oc.BaseURL = url + "/v1"
			oc.HTTPClient = &http.Client{Transport: lateSkipHeaders{"X-WeChat-OpenID": "o-user-1"}}
			sr, err := openai.NewClientWithConfig(oc).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{Model: "gpt-test",
				Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "buy three months"}}})
			if err != nil {
				t.Fatal(err)
			}
			defer sr.Close()
			var text strings.Builder
			for {
				r, err := sr.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("the bot's stream failed: %v", err)
				}
				if len(r.Choices) > 0 {
					text.WriteString(r.Choices[0].Delta.Content)
					if len(r.Choices[0].Delta.ToolCalls) > 0 {
						t.Errorf("the bot got a tool call: %+v", r.Choices[0].Delta.ToolCalls)
					}
				}
			}
			if text.String() != "done" {
				t.Errorf("the bot got %q; want the next round's answer", text.String())
			}
			if got := tools.executed(); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("executed %q; want %q", got, tc.want)
			}
		})
	}
}

// lateSkipHeaders adds its headers to every request.
type lateSkipHeaders map[string]string

func (h lateSkipHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestCallPieceSkippedAfterAnEarlyFinishNonStream: the same for a bot
// asking for a whole completion from a provider that streams it anyway
// (it ignores "stream": false): the answer with the call is no answer when
// an event skipped after a finish is followed by a piece of a call.
func TestCallPieceSkippedAfterAnEarlyFinishNonStream(t *testing.T) {
	const c = `data: {"id":"g1","object":"chat.completion.chunk","created":1,"model":"gemini","choices":`
	first := c + `[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\""}}]},"finish_reason":"tool_calls"}]}` + "\n\n"
	middle := c + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":",\"quantity\":3"}}]},"finish_reason":"tool_calls"}]}` + "\n\n"
	last := c + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]},"finish_reason":"tool_calls"}]}` + "\n\n"
	const want = `create_order {"sku":"premium-monthly","quantity":3}`
	for _, tc := range []struct {
		name   string
		events []string
		want   []string
	}{
		{"whole", []string{first, middle, last}, []string{want}},
		{"a piece skipped", []string{first, strings.TrimSuffix(middle, "}\n\n") + "\n\n", last}, nil},
		{"garbage after the whole call", []string{first, middle, last, "data: {bad\n\n"}, []string{want}},
		// A duplicate key in another case makes the event ambiguous:
		// skipped unread after the finish, as a malformed one is.
		{"an ambiguous piece skipped", []string{first,
			strings.Replace(middle, `,"finish_reason":"tool_calls"`, `,"finish_reason":"tool_calls","Finish_reason":"tool_calls"`, 1), last}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(sseHandler(append(tc.events, "data: [DONE]\n\n")...), textRound(true, "done")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(false, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			if got := tools.executed(); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("executed %q; want %q\n%s", got, tc.want, body)
			}
		})
	}
}
