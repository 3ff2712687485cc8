package main

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

// rawChunk builds one chat.completion.chunk of choice 0.
func rawChunk(delta, finish string) string {
	return rawChoiceChunk("0", delta, finish)
}

// rawChoiceChunk builds one chat.completion.chunk of choice i.
func rawChoiceChunk(i, delta, finish string) string {
	f := "null"
	if finish != "" {
		f = `"` + finish + `"`
	}
	return `{"id":"chatcmpl-raw","object":"chat.completion.chunk","created":1700000000,"model":"m-1","choices":[{"index":` + i + `,"delta":` + delta + `,"finish_reason":` + f + `}]}`
}

// rawStreamProvider answers every request with the event-stream text raw,
// written in pieces of split bytes, each flushed: every framing a provider
// may use, cut at every place a TCP read may cut it.
func rawStreamProvider(t *testing.T, raw string, split int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := 0; i < len(raw); i += split {
			_, _ = io.WriteString(w, raw[i:min(i+split, len(raw))])
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// streamTextFinish reads a stream through go-openai to its end: the text of
// choice 0 and its finish reason.
func streamTextFinish(t *testing.T, c *openai.Client) (string, openai.FinishReason) {
	t.Helper()
	stream, err := c.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Stream: true,
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
	})
	if err != nil {
		t.Fatalf("stream open: %v", err)
	}
	defer stream.Close()
	var text strings.Builder
	var finish openai.FinishReason
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return text.String(), finish
		}
		if err != nil {
			t.Fatalf("Recv after %d bytes of text: %v", text.Len(), err)
		}
		if len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
			if c.Choices[0].FinishReason != "" {
				finish = c.Choices[0].FinishReason
			}
		}
	}
}

// TestStreamFramingGoOpenAI: whatever framing the provider's event stream
// uses, and however its bytes are split across reads, a go-openai bot reads
// the same text through paygate, on the plain relay and on a payment turn.
// A provider's JSON spread over several "data:" lines used to leave paygate
// as several lines again, which go-openai cannot parse ("unexpected end of
// JSON input").
func TestStreamFramingGoOpenAI(t *testing.T) {
	role := rawChunk(`{"role":"assistant","content":""}`, "")
	hello := rawChunk(`{"content":"Héllo 世界 \u0022q\u0022"}`, "")
	fin := rawChunk(`{}`, "stop")
	const want = `Héllo 世界 "q"`
	std := func(sep string, evs ...string) string {
		var b strings.Builder
		for _, e := range evs {
			b.WriteString("data: " + e + sep + sep)
		}
		return b.String()
	}
	big := strings.Repeat("x", 1<<20)
	tests := []struct {
		name  string
		raw   string
		split int
		want  string
	}{
		{"LF", std("\n", role, hello, fin) + "data: [DONE]\n\n", 1, want},
		{"CRLF", std("\r\n", role, hello, fin) + "data: [DONE]\r\n\r\n", 1, want},
		{"CR", std("\r", role, hello, fin) + "data: [DONE]\r\r", 1, want},
		{"BOM", "\ufeff" + std("\n", role, hello, fin) + "data: [DONE]\n\n", 1, want},
		{"BOM and CRLF", "\ufeff" + std("\r\n", role, hello, fin), 1, want},
		{"no space after data:", "data:" + role + "\n\ndata:" + hello + "\n\ndata:" + fin + "\n\ndata:[DONE]\n\n", 1, want},
		{"fields and comments", ": OPENROUTER PROCESSING\n\nid: 1\nretry: 1000\nevent: message\ndata: " + role + "\n\n: c\nid: 2\ndata: " + hello + "\n\n:\n\ndata: " + fin + "\n\n", 1, want},
		{"no trailing blank line", std("\n", role, hello) + "data: " + fin, 1, want},
		{"no trailing blank line, CRLF", std("\r\n", role, hello) + "data: " + fin + "\r\n", 1, want},
		{"one event on two data lines", "data: " + role + "\n\n" +
			"data: {\"id\":\"chatcmpl-raw\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m-1\",\n" +
			"data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo 世界 \\u0022q\\u0022\"},\"finish_reason\":null}]}\n\n" +
			"data: " + fin + "\n\ndata: [DONE]\n\n", 1, want},
		{"one event on two data lines, CRLF", "data: " + role + "\r\n\r\n" +
			"data: {\"id\":\"chatcmpl-raw\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m-1\",\r\n" +
			"data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo 世界 \\u0022q\\u0022\"},\"finish_reason\":null}]}\r\n\r\n" +
			"data: " + fin + "\r\n\r\n", 3, want},
		{"usage before choices", std("\n", role,
			`{"id":"chatcmpl-raw","object":"chat.completion.chunk","created":1700000000,"model":"m-1","usage":null,"choices":[{"index":0,"delta":{"content":"Héllo 世界 \u0022q\u0022"},"finish_reason":null}]}`,
			`{"id":"chatcmpl-raw","object":"chat.completion.chunk","created":1700000000,"model":"m-1","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`), 7, want},
		{"a 1 MB chunk", std("\n", role, rawChunk(`{"content":"`+big+`"}`, ""), fin), 4093, big},
	}
	for _, path := range []string{"plain", "turn"} {
		for _, tc := range tests {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				url := e2eApp(t, rawStreamProvider(t, tc.raw, tc.split).URL)
				c := goClient(url)
				if path == "turn" {
					c = userClient(url)
				}
				got, finish := streamTextFinish(t, c)
				if got != tc.want || finish != "stop" {
					if len(got) > 80 {
						got = got[:40] + "…" + got[len(got)-40:]
					}
					t.Errorf("text %q (%d bytes), finish %q; want %d bytes, stop", got, len(got), finish, len(tc.want))
				}
			})
		}
	}
}

// TestGzipEventStream: a provider (or its CDN) that gzips its event stream
// unasked is read as the stream it is. Read raw, every attempt failed as
// "connection lost" against the provider's breaker, and the bot got a 502.
func TestGzipEventStream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		for _, e := range []string{
			rawChunk(`{"role":"assistant","content":"Hello"}`, ""),
			rawChunk(`{"content":" world"}`, ""),
			rawChunk(`{}`, "stop"),
		} {
			_, _ = io.WriteString(zw, "data: "+e+"\n\n")
			_ = zw.Flush()
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(zw, "data: [DONE]\n\n")
		_ = zw.Close()
	}))
	defer up.Close()
	url := e2eApp(t, up.URL)
	for _, path := range []string{"plain", "turn"} {
		t.Run(path, func(t *testing.T) {
			c := goClient(url)
			if path == "turn" {
				c = userClient(url)
			}
			if got, finish := streamTextFinish(t, c); got != "Hello world" || finish != "stop" {
				t.Errorf("text %q, finish %q; want %q, stop", got, finish, "Hello world")
			}
		})
	}
}

// TestSeveralChoicesCutAfterOneFinished: with n above 1, a stream is whole
// only when every choice it showed has finished. A provider that finished
// choice 0 and then broke off choice 1 used to end with [DONE], a silent
// truncation (SPEC 5); the bot must get an error event instead.
func TestSeveralChoicesCutAfterOneFinished(t *testing.T) {
	ev := func(i, delta, finish string) string { return "data: " + rawChoiceChunk(i, delta, finish) + "\n\n" }
	begin := ev("0", `{"role":"assistant","content":"A"}`, "") +
		ev("1", `{"role":"assistant","content":"B"}`, "") +
		ev("0", `{}`, "stop") +
		ev("1", `{"content":" and more"}`, "")
	tests := []struct {
		name, raw string
		whole     bool
	}{
		{"cut", begin, false},
		{"cut, then [DONE] (a relay)", begin + "data: [DONE]\n\n", false},
		{"both finished", begin + ev("1", `{}`, "length"), true},
		{"both finished, [DONE]", begin + ev("1", `{}`, "stop") + "data: [DONE]\n\n", true},
		// A provider that ignores n sends one choice and [DONE]: whole.
		{"n ignored", ev("0", `{"role":"assistant","content":"A"}`, "") + ev("0", `{}`, "stop") + "data: [DONE]\n\n", true},
		// Choices streamed one after another, cut before the second began:
		// without [DONE], fewer choices than asked for is a cut.
		{"cut before choice 1 began", ev("0", `{"role":"assistant","content":"A"}`, "") + ev("0", `{}`, "stop"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := e2eApp(t, rawStreamProvider(t, tc.raw, 1<<20).URL)
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions",
				strings.NewReader(`{"model":"gpt-4o","stream":true,"n":2,"messages":[{"role":"user","content":"hi"}]}`))
			req.Header.Set("Authorization", "Bearer "+e2eClientKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			body := string(b)
			done := strings.HasSuffix(body, "data: [DONE]\n\n")
			errEvent := strings.Contains(body, `data: {"error":`)
			if tc.whole && (!done || errEvent) {
				t.Errorf("every choice finished; the bot read:\n%s\nwant [DONE] and no error event", body)
			}
			if !tc.whole && (done || !errEvent) {
				t.Errorf("choice 1 was cut; the bot read:\n%s\nwant an error event and no [DONE]", body)
			}
		})
	}
}
