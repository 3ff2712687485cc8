package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// twoTargetApp serves the binary's handler with model gpt-4o → primary, then
// fallback, with short timeouts so a silent primary costs little.
func twoTargetApp(t *testing.T, primary, fallback string) string {
	t.Helper()
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "p.db") + `"}
providers:
  - {name: primary, base_url: "` + primary + `/v1", api_key: k1, timeouts: {connect: 1s, first_byte: 300ms, first_token: 300ms, idle: 300ms, total: 10s}}
  - {name: fallback, base_url: "` + fallback + `/v1", api_key: k2}
models:
  - {name: gpt-4o, targets: [{provider: primary, model: p-model}, {provider: fallback, model: f-model}]}
failover: {retry_after_max_wait: 1s}
`
	cfg, err := config.Parse([]byte(src), "t.yaml", func(string) (string, bool) { return "", false })
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

// resettingServer accepts connections and closes them before any header.
func resettingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST, not FIN
			}
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

// streamText streams one chat turn with client c and returns the text it
// got; a tool call reaching the client is an error of the test.
func streamText(t *testing.T, c *openai.Client, userText string) (string, error) {
	t.Helper()
	stream, err := c.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Stream: true,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: userText}},
	})
	if err != nil {
		return "", err
	}
	defer stream.Close()
	var b strings.Builder
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		if len(c.Choices) > 0 {
			if len(c.Choices[0].Delta.ToolCalls) > 0 {
				t.Errorf("tool call reached the client: %+v", c.Choices[0].Delta.ToolCalls)
			}
			b.WriteString(c.Choices[0].Delta.Content)
		}
	}
}

// TestGoOpenAIThroughFailover: whatever fails before the first byte reached
// the client is invisible to a go-openai streaming client when a fallback
// exists; so is a cut after it, which is recovered (recovery_e2e_test.go has
// the cases that cannot be).
func TestGoOpenAIThroughFailover(t *testing.T) {
	fallback := fakeOpenAI(t).URL
	block := make(chan struct{})
	status := func(code int, hdr map[string]string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range hdr {
				w.Header().Set(k, v)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"error":{"message":"primary says no","type":"server_error"}}`)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(silent.Close)
	// Cleanups run last-in first-out: release the silent handler before
	// silent.Close waits for it.
	t.Cleanup(func() { close(block) })
	errorEvent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"error":{"message":"Rate limit exceeded","code":429}}`+"\n\n")
	}))
	t.Cleanup(errorEvent.Close)
	cutAfterFirstByte := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`+"\n\n")
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(cutAfterFirstByte.Close)

	tests := []struct {
		name    string
		primary string
		wantErr string // "" means the whole answer, no error
	}{
		{"500 then fallback", status(500, nil), ""},
		{"502 then fallback", status(502, nil), ""},
		{"429 with long Retry-After", status(429, map[string]string{"Retry-After": "3600"}), ""},
		{"503 without Retry-After", status(503, nil), ""},
		{"401 misconfigured provider", status(401, nil), ""},
		{"404 model", status(404, nil), ""},
		{"reset before headers", resettingServer(t), ""},
		{"silent provider", silent.URL, ""},
		{"error object as first event", errorEvent.URL, ""},
		// Recovered (SPEC 5 after the first byte): the fallback's fresh
		// answer begins with the "Hel" already sent, which is skipped.
		{"cut after the first byte", cutAfterFirstByte.URL, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := twoTargetApp(t, tc.primary, fallback)
			text, err := streamText(t, goClient(url), "hi")
			if tc.wantErr == "" {
				if err != nil || text != "Hello from upstream" {
					t.Errorf("got %q, %v; want the fallback's whole answer and no error", text, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %q, %v; want an error naming %s", text, err, tc.wantErr)
			}
		})
	}
}
