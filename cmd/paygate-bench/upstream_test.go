package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/proxy/h1/h1test"
	openai "github.com/sashabaranov/go-openai"
)

func newTestUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	u, err := newFakeUpstream(upstreamConfig{SlowInterval: time.Millisecond, SlowChunks: 5})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	return srv
}

// TestFakeUpstreamSpeaksOpenAI reads the fake upstream, directly and through
// the Go floor, with the go-openai client: the wire format must be what real
// clients parse.
func TestFakeUpstreamSpeaksOpenAI(t *testing.T) {
	up := newTestUpstream(t)
	target, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	floor := httptest.NewServer(newGoFloor(target))
	t.Cleanup(floor.Close)
	stack := h1test.NewServer(newStackFloor(target))
	t.Cleanup(stack.Close)
	want := strings.Join(answerWords, "")
	for _, base := range []struct{ name, url string }{{"direct", up.URL}, {"go-floor", floor.URL}, {"stack-floor", stack.URL}} {
		cfg := openai.DefaultConfig("sk-test")
		cfg.BaseURL = base.url + "/v1"
		c := openai.NewClientWithConfig(cfg)
		ctx := context.Background()
		msgs := []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "plans?"}}
		tests := []struct {
			name   string
			model  string
			stream bool
			usage  bool
		}{
			{name: "non-stream", model: benchModel},
			{name: "stream", model: benchModel, stream: true},
			{name: "stream with usage", model: benchModel, stream: true, usage: true},
			{name: "slow stream", model: slowModel, stream: true},
		}
		for _, tt := range tests {
			t.Run(base.name+"/"+tt.name, func(t *testing.T) {
				req := openai.ChatCompletionRequest{Model: tt.model, Messages: msgs}
				if !tt.stream {
					resp, err := c.CreateChatCompletion(ctx, req)
					if err != nil {
						t.Fatal(err)
					}
					if got := resp.Choices[0].Message.Content; got != want {
						t.Errorf("got %q; want %q", got, want)
					}
					if resp.Usage.TotalTokens != answerPrompt+len(answerWords) {
						t.Errorf("got %d total tokens; want %d", resp.Usage.TotalTokens, answerPrompt+len(answerWords))
					}
					return
				}
				if tt.usage {
					req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
				}
				s, err := c.CreateChatCompletionStream(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				var text strings.Builder
				var finish openai.FinishReason
				var usage *openai.Usage
				for {
					r, err := s.Recv()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if r.Usage != nil {
						usage = r.Usage
					}
					for _, ch := range r.Choices {
						text.WriteString(ch.Delta.Content)
						if ch.FinishReason != "" {
							finish = ch.FinishReason
						}
					}
				}
				wantText := want
				if tt.model == slowModel {
					wantText = strings.Join(answerWords[:5], "")
				}
				if text.String() != wantText {
					t.Errorf("got %q; want %q", text.String(), wantText)
				}
				if finish != openai.FinishReasonStop {
					t.Errorf("got finish reason %q; want stop", finish)
				}
				if tt.usage != (usage != nil) {
					t.Errorf("got usage %v; want usage present=%v", usage, tt.usage)
				}
			})
		}
	}
}

func TestFakeUpstreamUnknownModel(t *testing.T) {
	up := newTestUpstream(t)
	resp, err := http.Post(up.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"gpt-nope","messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "model_not_found") {
		t.Errorf("got %d %s; want 404 model_not_found", resp.StatusCode, body)
	}
}

// TestFakeUpstreamUsageNullWithIncludeUsage: asked for include_usage, the
// fake upstream streams as OpenAI does, "usage":null in every chunk but the
// usage chunk; not asked, no chunk names usage. paygate always asks, so a
// relay that scanned every such chunk would show in the load run.
func TestFakeUpstreamUsageNullWithIncludeUsage(t *testing.T) {
	up := newTestUpstream(t)
	for _, include := range []bool{false, true} {
		body := `{"model":"` + benchModel + `","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		if include {
			body = `{"model":"` + benchModel + `","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
		}
		resp, err := http.Post(up.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var chunks, nulls, counts int
		for _, ev := range strings.Split(strings.TrimSpace(string(raw)), "\n\n") {
			data, ok := strings.CutPrefix(ev, "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			chunks++
			switch {
			case strings.Contains(data, `"usage":null`):
				nulls++
			case strings.Contains(data, `"usage":{`):
				counts++
			}
		}
		want, wantCounts := 0, 0
		if include {
			want, wantCounts = chunks-1, 1
		}
		if nulls != want || counts != wantCounts {
			t.Errorf("include_usage %v: %d of %d chunks with \"usage\":null, %d with counts; want %d and %d", include, nulls, chunks, counts, want, wantCounts)
		}
	}
}
