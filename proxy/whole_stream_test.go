package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"
)

// withOpenID signs a go-openai client's requests in as a WeChat user.
type withOpenID struct{ openID string }

func (w withOpenID) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-WeChat-OpenID", w.openID)
	return http.DefaultTransport.RoundTrip(r)
}

// TestWholeCompletionAnswersAStream: a provider that ignores "stream": true
// answers each round with a whole chat completion (application/json). The
// bot, streaming with go-openai, gets the answer as a stream it parses to
// its end ([DONE]); the payment call in the first round's completion is run
// once, as in a streamed answer, and the bot hears the second round's text.
// Failed over as malformed, the turn ended in an error, though the
// provider had answered (and billed) every round. So is one labelled
// text/event-stream (a relay labelling the answer by the request's
// "stream"), known by its first byte.
func TestWholeCompletionAnswersAStream(t *testing.T) {
	for _, ct := range []string{"application/json", "text/event-stream"} {
		t.Run(ct, func(t *testing.T) { wholeCompletionAnswersAStream(t, ct) })
	}
}

func wholeCompletionAnswersAStream(t *testing.T, contentType string) {
	const call = `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"create_order",` +
		`"arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`
	const text = `{"id":"c2","object":"chat.completion","created":2,"model":"vendor/upstream-model","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":"Your order X1 is ready to pay."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":8,"total_tokens":28}}`
	client, tools, rounds := twoRoundClient(t, true, contentType, call, text)
	stream, err := client.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-test", Stream: true,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "buy premium"}},
	})
	if err != nil {
		t.Fatalf("opening the stream: %v", err)
	}
	defer stream.Close()
	var got strings.Builder
	finish := openai.FinishReason("")
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv after %q: %v", got.String(), err)
		}
		for _, ch := range chunk.Choices {
			got.WriteString(ch.Delta.Content)
			if len(ch.Delta.ToolCalls) > 0 {
				t.Errorf("the bot was sent paygate's payment call: %+v", ch.Delta.ToolCalls)
			}
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
	}
	if got.String() != "Your order X1 is ready to pay." || finish != openai.FinishReasonStop {
		t.Errorf("the bot heard %q, finish %q; want the second round's text, finish stop", got.String(), finish)
	}
	if n := tools.executed.Load(); n != 1 {
		t.Errorf("payment call run %d times; want once", n)
	}
	if n := rounds.Load(); n != 2 {
		t.Errorf("provider asked %d times; want 2 (the call's round, the answer's)", n)
	}
}

// twoRoundClient is a go-openai client of a paygate whose one provider
// answers a turn's first request with first and every later one with
// second, as contentType, and refuses a request whose "stream" is not
// wantStream; the payment tools that count the calls run; and the count
// of requests the provider had.
func twoRoundClient(t *testing.T, wantStream bool, contentType, first, second string) (*openai.Client, *countingTools, *atomic.Int32) {
	t.Helper()
	rounds := new(atomic.Int32)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if gjson.GetBytes(body, "stream").Bool() != wantStream {
			t.Errorf("upstream request with stream %v; want %v: %s", !wantStream, wantStream, body)
		}
		w.Header().Set("Content-Type", contentType)
		if rounds.Add(1) == 1 {
			_, _ = io.WriteString(w, first)
			return
		}
		_, _ = io.WriteString(w, second)
	})
	tools := &countingTools{}
	s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, tools)
	t.Cleanup(ledger.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c := openai.DefaultConfig(testClientKey)
	c.BaseURL = srv.URL + "/v1"
	c.HTTPClient = &http.Client{Transport: withOpenID{"o-user-1"}}
	return openai.NewClientWithConfig(c), tools, rounds
}

// TestEventsLabelledOtherwiseAnswerAStream: a provider that labels its
// event stream as something else (application/json, text/plain) answers
// a streaming bot's turn all the same: the payment call in the first
// round's events runs once and the bot hears the second round's text.
// Read as a JSON body, each round failed over as malformed, and the turn
// ended in an error though the provider had answered (and billed) it.
func TestEventsLabelledOtherwiseAnswerAStream(t *testing.T) {
	const head = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":`
	first := head + `[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":"}}]},"finish_reason":null}]}` + "\n\n" +
		head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}]}` + "\n\ndata: [DONE]\n\n"
	second := head + `[{"index":0,"delta":{"role":"assistant","content":"Your order X1 "},"finish_reason":null}]}` + "\n\n" +
		head + `[{"index":0,"delta":{"content":"is ready to pay."},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
	for _, ct := range []string{"application/json", "text/plain; charset=utf-8"} {
		t.Run(ct, func(t *testing.T) {
			client, tools, rounds := twoRoundClient(t, true, ct, first, second)
			stream, err := client.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
				Model: "gpt-test", Stream: true,
				Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "buy premium"}},
			})
			if err != nil {
				t.Fatalf("opening the stream: %v", err)
			}
			defer stream.Close()
			var got strings.Builder
			for {
				chunk, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("Recv after %q: %v", got.String(), err)
				}
				for _, ch := range chunk.Choices {
					got.WriteString(ch.Delta.Content)
				}
			}
			if got.String() != "Your order X1 is ready to pay." {
				t.Errorf("the bot heard %q; want the second round's text", got.String())
			}
			if n := tools.executed.Load(); n != 1 {
				t.Errorf("payment call run %d times; want once", n)
			}
			if n := rounds.Load(); n != 2 {
				t.Errorf("provider asked %d times; want 2", n)
			}
		})
	}
}
