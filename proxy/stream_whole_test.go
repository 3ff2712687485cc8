package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

// TestEventStreamAnswersANonStreamRequest: a provider that ignores
// "stream": false answers each round with chat.completion.chunk events.
// The bot, asking with go-openai for a whole completion, gets one: the
// second round's text and usage. The payment call streamed in the first
// round's events (its arguments in fragments) is run once, as in any
// non-stream answer, and never reaches the bot. Failed over as no JSON
// object, the turn ended in an error, though the provider had answered
// (and billed) every round.
func TestEventStreamAnswersANonStreamRequest(t *testing.T) {
	chunk := func(id, choice string) string {
		return "data: " + `{"id":"` + id + `","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[` + choice + `]}` + "\n\n"
	}
	call := chunk("c1", `{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":""}}]},"finish_reason":null}`) +
		chunk("c1", `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"sku\":"}}]},"finish_reason":null}`) +
		chunk("c1", `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"premium-monthly\"}"}}]},"finish_reason":null}`) +
		chunk("c1", `{"index":0,"delta":{},"finish_reason":"tool_calls"}`) +
		`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}` + "\n\n" +
		"data: [DONE]\n\n"
	text := chunk("c2", `{"index":0,"delta":{"role":"assistant","content":"Your order X1 "},"finish_reason":null}`) +
		chunk("c2", `{"index":0,"delta":{"content":"is ready to pay."},"finish_reason":null}`) +
		chunk("c2", `{"index":0,"delta":{},"finish_reason":"stop"}`) +
		`data: {"id":"c2","object":"chat.completion.chunk","created":2,"model":"vendor/upstream-model","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":8,"total_tokens":28}}` + "\n\n" +
		"data: [DONE]\n\n"
	client, tools, rounds := twoRoundClient(t, false, "text/event-stream", call, text)
	resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "buy premium"}},
	})
	if err != nil {
		t.Fatalf("chat completion: %v", err)
	}
	if len(resp.Choices) != 1 {
		t.Fatalf("choices %+v; want one", resp.Choices)
	}
	msg := resp.Choices[0].Message
	if msg.Content != "Your order X1 is ready to pay." || resp.Choices[0].FinishReason != openai.FinishReasonStop {
		t.Errorf("the bot got %q, finish %q; want the second round's text, finish stop", msg.Content, resp.Choices[0].FinishReason)
	}
	if len(msg.ToolCalls) > 0 || strings.Contains(msg.Content, "create_order") {
		t.Errorf("the bot was sent paygate's payment call: %+v", msg)
	}
	if resp.Object != "chat.completion" || resp.ID == "" {
		t.Errorf("completion object %q id %q; want a chat.completion with an id", resp.Object, resp.ID)
	}
	if resp.Usage.TotalTokens == 0 {
		t.Errorf("usage %+v; want the rounds' usage", resp.Usage)
	}
	if n := tools.executed.Load(); n != 1 {
		t.Errorf("payment call run %d times; want once", n)
	}
	if n := rounds.Load(); n != 2 {
		t.Errorf("provider asked %d times; want 2 (the call's round, the answer's)", n)
	}
}

// TestEventStreamPaymentCallTheCaptureRefusesIsNotRun: a payment call an
// event stream answering a non-stream request names only at its top, or
// names twice, is refused as the stream capture refuses it, never run:
// assembled with the name gjson found first, or the top's, it was a clean
// call in the whole completion and the payment ran.
func TestEventStreamPaymentCallTheCaptureRefusesIsNotRun(t *testing.T) {
	chunk := func(id, choice string) string {
		return "data: " + `{"id":"` + id + `","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[` + choice + `]}` + "\n\n"
	}
	text := chunk("c2", `{"index":0,"delta":{"role":"assistant","content":"Sorry."},"finish_reason":null}`) +
		chunk("c2", `{"index":0,"delta":{},"finish_reason":"stop"}`) + "data: [DONE]\n\n"
	for _, tc := range []struct{ name, entry string }{
		{"name at the top", `{"index":0,"id":"call_1","type":"function","name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}`},
		{"name twice", `{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","name":"lookup","arguments":"{\"sku\":\"premium-monthly\"}"}}`},
		{"function twice", `{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"},"function":{"name":"lookup"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := chunk("c1", `{"index":0,"delta":{"role":"assistant","tool_calls":[`+tc.entry+`]},"finish_reason":null}`) +
				chunk("c1", `{"index":0,"delta":{},"finish_reason":"tool_calls"}`) + "data: [DONE]\n\n"
			var rounds atomic.Int32
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				if rounds.Add(1) == 1 {
					_, _ = io.WriteString(w, call)
					return
				}
				_, _ = io.WriteString(w, text)
			})
			tools := &countingTools{}
			s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, tools)
			defer ledger.Close()
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			c := openai.DefaultConfig(testClientKey)
			c.BaseURL = srv.URL + "/v1"
			c.HTTPClient = &http.Client{Transport: withOpenID{"o-user-1"}}
			resp, err := openai.NewClientWithConfig(c).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
				Model:    "gpt-test",
				Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "buy premium"}},
			})
			if n := tools.executed.Load(); n != 0 {
				t.Errorf("payment call run %d times; want none (answer %+v, err %v)", n, resp, err)
			}
			if err == nil {
				for _, call := range resp.Choices[0].Message.ToolCalls {
					if call.Function.Name == "create_order" {
						t.Errorf("the bot was sent the payment call: %+v", call)
					}
				}
			}
		})
	}
}
