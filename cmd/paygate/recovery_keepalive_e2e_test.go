package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// TestStreamRecoveryKeepAlive: with server.sse_keepalive set, a bot whose
// stream was cut hears keep-alives while paygate asks another provider for
// the rest, as it does while paygate works between rounds: the fallback's
// first byte may take its first_byte and first_token timeouts (each 30s
// by default, and a refused prefill asks twice), and a bot or a proxy in
// front of it that drops a stream idle that long lost the answer the
// recovery was saving. The fallback holds its answer until the bot has
// heard a keep-alive (two blank lines in a row: a blank line beyond the
// one that ends an event), and for at most a few seconds, after which the
// bot's stream is complete but the test fails.
func TestStreamRecoveryKeepAlive(t *testing.T) {
	for _, path := range []string{"plain", "turn"} {
		t.Run(path, func(t *testing.T) {
			primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				for _, d := range []string{`{"role":"assistant","content":""}`, `{"content":"Hello"}`} {
					_, _ = io.WriteString(w, "data: "+withID("chatcmpl-P", deltaChunk(d, ""))+"\n\n")
					w.(http.Flusher).Flush()
				}
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close() // cut: no finish reason, no [DONE]
				}
			}))
			t.Cleanup(primary.Close)
			heard := make(chan struct{})
			fallback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				select {
				case <-heard:
				case <-r.Context().Done():
					return
				case <-time.After(4 * time.Second): // the test fails below; the stream still ends
				}
				w.Header().Set("Content-Type", "text/event-stream")
				for _, e := range []string{deltaChunk(`{"role":"assistant","content":""}`, ""), deltaChunk(`{"content":" world"}`, ""), deltaChunk(`{}`, "stop")} {
					_, _ = io.WriteString(w, "data: "+withID("chatcmpl-F", e)+"\n\n")
				}
				_, _ = io.WriteString(w, "data: [DONE]\n\n")
			}))
			t.Cleanup(fallback.Close)
			url, _ := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
server: {sse_keepalive: 1s}
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: primary, base_url: "`+primary.URL+`/v1", api_key: k1}
  - {name: fallback, base_url: "`+fallback.URL+`/v1", api_key: k2, continuation: prefill}
models:
  - {name: gpt-4o, targets: [{provider: primary, model: p-model}, {provider: fallback, model: f-model}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`, io.Discard)
			keepAlive, text, done := readRawStream(t, url, path == "turn", heard)
			if !keepAlive {
				t.Errorf("the bot heard no keep-alive while the recovery asked the fallback (server.sse_keepalive: 1s)")
			}
			if !done || text != "Hello world" {
				t.Errorf("text %q, [DONE] %v; want %q and [DONE]", text, done, "Hello world")
			}
		})
	}
}

// TestStreamRecoveryKeepAliveWhileRepeating: a fallback that cannot
// continue a prefill (continuation: none) answers afresh, and its answer
// repeats what the bot already has before anything new reaches the bot:
// for a long answer that is as long as it took to write it the first time.
// With server.sse_keepalive set the bot hears keep-alives meanwhile. The
// fallback writes the repeated words one by one, at a model's pace, until
// the bot has heard one (for a few seconds at most), then the rest.
func TestStreamRecoveryKeepAliveWhileRepeating(t *testing.T) {
	words := make([]string, 100)
	for i := range words {
		words[i] = "word" + strings.Repeat("x", i%7) + " "
	}
	sent := strings.Join(words, "")
	for _, path := range []string{"plain", "turn"} {
		t.Run(path, func(t *testing.T) {
			primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: "+withID("chatcmpl-P", deltaChunk(`{"role":"assistant","content":""}`, ""))+"\n\n")
				_, _ = io.WriteString(w, "data: "+withID("chatcmpl-P", deltaChunk(`{"content":"`+sent+`"}`, ""))+"\n\n")
				w.(http.Flusher).Flush()
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close() // cut: no finish reason, no [DONE]
				}
			}))
			t.Cleanup(primary.Close)
			heard := make(chan struct{})
			fallback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				send := func(chunk string) {
					_, _ = io.WriteString(w, "data: "+withID("chatcmpl-F", chunk)+"\n\n")
					w.(http.Flusher).Flush()
				}
				send(deltaChunk(`{"role":"assistant","content":""}`, ""))
				pace := time.NewTicker(50 * time.Millisecond)
				defer pace.Stop()
				i := 0
				for ; i < len(words); i++ {
					select {
					case <-heard:
					case <-r.Context().Done():
						return
					case <-pace.C:
					}
					send(deltaChunk(`{"content":"`+words[i]+`"}`, ""))
				}
				send(deltaChunk(`{"content":"done."}`, ""))
				send(deltaChunk(`{}`, "stop"))
				_, _ = io.WriteString(w, "data: [DONE]\n\n")
			}))
			t.Cleanup(fallback.Close)
			url, _ := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
server: {sse_keepalive: 1s}
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: primary, base_url: "`+primary.URL+`/v1", api_key: k1}
  - {name: fallback, base_url: "`+fallback.URL+`/v1", api_key: k2, continuation: none}
models:
  - {name: gpt-4o, targets: [{provider: primary, model: p-model}, {provider: fallback, model: f-model}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`, io.Discard)
			keepAlive, text, done := readRawStream(t, url, path == "turn", heard)
			if !keepAlive {
				t.Errorf("the bot heard no keep-alive while the fallback repeated what it had (server.sse_keepalive: 1s)")
			}
			if want := sent + "done."; !done || text != want {
				t.Errorf("text %q, [DONE] %v; want %q and [DONE]", text, done, want)
			}
		})
	}
}

// readRawStream posts a streamed chat request (as the payment user when
// turn) and reads the raw event stream: whether a keep-alive came (a blank
// line after the one that ends an event: heard is closed then), the text
// of the content deltas, and whether [DONE] came.
func readRawStream(t *testing.T, url string, turn bool, heard chan struct{}) (keepAlive bool, text string, done bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eClientKey)
	req.Header.Set("Content-Type", "application/json")
	if turn {
		req.Header.Set("X-WeChat-OpenID", testOpenID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	blank := false
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if blank && !keepAlive {
				keepAlive = true
				close(heard)
			}
			blank = true
			continue
		}
		blank = false
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Errorf("line %q; want data lines and blank lines only", line)
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		if e := gjson.Get(data, "error"); e.Exists() {
			t.Errorf("error event %s", e.Raw)
		}
		b.WriteString(gjson.Get(data, "choices.0.delta.content").String())
	}
	return keepAlive, b.String(), done
}
