package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/sse"
)

// fixtureEvents reads a recorded provider stream from interceptors/testdata.
func fixtureEvents(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "interceptors", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r := sse.NewReader(strings.NewReader(string(b)))
	defer r.Release()
	var out []string
	for {
		ev, err := r.Next()
		if err != nil {
			return out
		}
		out = append(out, string(ev.Data))
	}
}

var paymentTool = map[string]bool{"create_order": true, "query_order": true, "request_refund": true}

// TestProviderFixturesThroughBinary replays each provider's recorded tool
// round through the binary's handler, followed by a continuation round, with
// go-openai as the client. The capture's own correctness against hand-written
// expectations is in interceptors/capture_test.go; this proves the turn
// relays it faithfully: payment calls executed once and never shown, one id,
// client calls intact and renumbered 0..n-1.
func TestProviderFixturesThroughBinary(t *testing.T) {
	tests := []struct{ round1, round2 string }{
		{"openai_parallel_mixed.sse", "openai_continuation.sse"},
		{"azure_tool.sse", "openai_continuation.sse"},
		{"deepseek_reasoning.sse", "openai_continuation.sse"},
		{"gemini_tool_stop.sse", "gemini_continuation.sse"},
		{"gemini_parallel.sse", "gemini_continuation.sse"},
		{"interleaved_mixed.sse", "qwen_continuation.sse"},
		{"mistral_tool.sse", "openai_continuation.sse"},
		{"openrouter_tool.sse", "openai_continuation.sse"},
		{"qwen_tool.sse", "qwen_continuation.sse"},
		{"split_unicode.sse", "openai_continuation.sse"},
	}
	for _, tc := range tests {
		t.Run(tc.round1, func(t *testing.T) {
			r1, r2 := fixtureEvents(t, tc.round1), fixtureEvents(t, tc.round2)
			// What the client must see of round 1: the capture's view of it.
			capture := interceptors.NewCapture(func(n string) bool { return paymentTool[n] })
			capture.StartRound(0, "", 0)
			var wantText strings.Builder // as an SDK decodes the returned chunks one by one
			for _, e := range r1 {
				out, _ := capture.Process([]byte(e))
				if out != nil {
					var c openai.ChatCompletionStreamResponse
					if json.Unmarshal(out, &c) == nil && len(c.Choices) > 0 {
						wantText.WriteString(c.Choices[0].Delta.Content)
					}
				}
			}
			want := capture.EndRound()
			if len(want.PaymentCalls) == 0 {
				t.Fatalf("fixture %s has no payment call", tc.round1)
			}

			var n atomic.Int32
			var round2Body atomic.Value
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				events := r1
				if n.Add(1) > 1 {
					events = r2
					round2Body.Store(string(b))
				}
				w.Header().Set("Content-Type", "text/event-stream")
				for _, e := range events {
					_, _ = io.WriteString(w, "data: "+e+"\n\n")
				}
				_, _ = io.WriteString(w, "data: [DONE]\n\n")
			}))
			defer up.Close()
			url, _ := paymentApp(t, up.URL, "")

			stream, err := userClient(url).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
				Model: "gpt-4o", Stream: true,
				Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "buy"}},
				Tools: []openai.Tool{
					{Type: "function", Function: &openai.FunctionDefinition{Name: "get_weather"}},
					{Type: "function", Function: &openai.FunctionDefinition{Name: "send_coupon"}},
					{Type: "function", Function: &openai.FunctionDefinition{Name: "lookup"}},
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Close()
			ids := map[string]bool{}
			calls := map[int]*interceptors.ToolCall{}
			var text strings.Builder
			for {
				c, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("Recv: %v", err)
				}
				ids[c.ID] = true
				if len(c.Choices) == 0 {
					continue
				}
				text.WriteString(c.Choices[0].Delta.Content)
				for _, tcall := range c.Choices[0].Delta.ToolCalls {
					if paymentTool[tcall.Function.Name] {
						t.Errorf("payment call %s reached the client", tcall.Function.Name)
					}
					if tcall.Index == nil {
						t.Fatalf("client tool call without index: %+v", tcall)
					}
					cl := calls[*tcall.Index]
					if cl == nil {
						cl = &interceptors.ToolCall{Index: *tcall.Index}
						calls[*tcall.Index] = cl
					}
					if cl.ID == "" {
						cl.ID = tcall.ID
					}
					if cl.Name == "" {
						cl.Name = tcall.Function.Name
					}
					cl.Arguments += tcall.Function.Arguments
				}
			}
			if len(ids) != 1 {
				t.Errorf("client saw ids %v; want one", ids)
			}
			if len(calls) != len(want.ClientCalls) {
				t.Fatalf("client got %d calls; want %d", len(calls), len(want.ClientCalls))
			}
			for i, w := range want.ClientCalls {
				got := calls[i]
				if got == nil || got.ID != w.ID || got.Name != w.Name || got.Arguments != w.Arguments {
					t.Errorf("client call %d: got %+v; want %+v (renumbered 0..n-1)", i, got, w)
				}
			}
			if !strings.HasPrefix(text.String(), wantText.String()) {
				t.Errorf("client text %q does not start with round 1's %q", text.String(), wantText.String())
			}
			if len(want.ClientCalls) > 0 {
				if n.Load() != 1 {
					t.Errorf("a mixed round must end the turn: %d upstream rounds", n.Load())
				}
				return
			}
			body, _ := round2Body.Load().(string)
			if n.Load() != 2 || body == "" {
				t.Fatalf("upstream rounds %d; want the continuation round", n.Load())
			}
			for i, p := range want.PaymentCalls {
				// Under paygate's id (round 1's i-th payment call), but
				// Kimi's, which keep their form.
				id := "call_pg_1_" + strconv.Itoa(i)
				if strings.HasPrefix(p.ID, "functions.") {
					id = p.ID
				}
				results := gjson.Get(body, `messages.#(tool_call_id=="`+id+`")#`).Array()
				if len(results) != 1 {
					t.Errorf("payment call %s has %d tool results in round 2 under %s; want exactly 1", p.ID, len(results), id)
				}
			}
		})
	}
}
