package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedProvider streams the first event of an answer, then waits until the
// bot has read it (the gate) before it sends the rest: a stream a front
// holds back until its end never opens the gate, and the provider notes
// that it went on only because it gave up waiting. A non-streamed request
// it answers at once: a create_order call when the payment tools are
// offered, then "Done.", else "Hello".
type gatedProvider struct {
	*httptest.Server
	mu   sync.Mutex
	gate chan struct{}
	held atomic.Int32 // answers that went on without the bot having read their first event
}

func (g *gatedProvider) arm() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
	return g.gate
}

func newGatedProvider(t *testing.T) *gatedProvider {
	t.Helper()
	g := &gatedProvider{}
	const head = `{"id":"chatcmpl-G","object":"chat.completion.chunk","created":1700000000,"model":"openai/gpt-4o","choices":[`
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body := string(b)
		g.mu.Lock()
		gate := g.gate
		g.mu.Unlock()
		if !strings.Contains(body, `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			msg := `{"role":"assistant","content":"Hello"}`
			switch {
			case strings.Contains(body, `"role":"tool"`):
				msg = `{"role":"assistant","content":"Done."}`
			case strings.Contains(body, `"create_order"`):
				msg = `{"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]}`
			}
			_, _ = io.WriteString(w, `{"id":"chatcmpl-W","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":`+msg+`,"finish_reason":"stop"}]}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(s string) {
			_, _ = io.WriteString(w, s)
			w.(http.Flusher).Flush()
		}
		wait := func() bool {
			switch err := gateWait(r.Context(), gate, 5*time.Second); err {
			case nil:
				return true
			case errNginxHeld:
				g.held.Add(1)
				return true
			default:
				return false
			}
		}
		switch {
		case r.URL.Path == "/v1/responses":
			send("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}\n\n")
			if !wait() {
				return
			}
			send("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"openai/gpt-4o\",\"output\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1,\"total_tokens\":6}}}\n\n")
		case strings.Contains(body, `"role":"tool"`): // a payment turn's second round
			send("data: " + head + `{"index":0,"delta":{"content":"Ready. The end."},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")
		case strings.Contains(body, `"create_order"`): // a payment turn's first round
			send("data: " + head + `{"index":0,"delta":{"role":"assistant","content":"Hello, one moment. "},"finish_reason":null}]}` + "\n\n")
			if !wait() {
				return
			}
			send("data: " + head + `{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}]}` + "\n\ndata: [DONE]\n\n")
		default:
			send("data: " + head + `{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}` + "\n\n")
			if !wait() {
				return
			}
			send("data: " + head + `{"index":0,"delta":{"content":" world. The end."},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")
		}
	}))
	t.Cleanup(g.Close)
	return g
}

// TestFrontStreamsEventByEvent: behind nginx as a user writes it (proxy_pass
// and nothing else: proxy_buffering on), each event of a stream reaches the
// bot when paygate sends it, not when the stream ends: the provider sends
// the rest of its answer only once the bot has read the first event. A
// chat stream, one under a path prefix, a payment turn (whose payment call
// and next round can take a while) and a forwarded event stream (a
// Responses API call).
func TestFrontStreamsEventByEvent(t *testing.T) {
	up := newGatedProvider(t)
	url, _ := paymentApp(t, up.URL, "")
	front := startNginx(t, freeAddr(t), defaultLocations(url, ""))
	tests := []struct {
		name, path, user, body, end string
	}{
		{"chat stream", "/v1/chat/completions", "", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "The end."},
		{"chat stream under a path prefix", "/paygate/v1/chat/completions", "", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "The end."},
		{"payment turn", "/v1/chat/completions", testOpenID, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"buy premium"}]}`, "The end."},
		{"forwarded Responses stream", "/v1/responses", "", `{"model":"gpt-4o","input":"hi","stream":true}`, "response.completed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := up.arm()
			heldBefore := up.held.Load()
			req, _ := http.NewRequest(http.MethodPost, front+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+e2eClientKey)
			req.Header.Set("Content-Type", "application/json")
			if tt.user != "" {
				req.Header.Set("X-WeChat-OpenID", tt.user)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			var all strings.Builder
			opened := false
			br := bufio.NewReader(resp.Body)
			for {
				line, err := br.ReadString('\n')
				all.WriteString(line)
				if !opened && strings.Contains(line, "Hello") {
					close(gate)
					opened = true
				}
				if err != nil {
					break
				}
			}
			if !opened {
				t.Fatalf("the first event never came: %q", all.String())
			}
			if !strings.Contains(all.String(), tt.end) {
				t.Errorf("the stream ended before its end (%q): %q", tt.end, all.String())
			}
			if up.held.Load() != heldBefore {
				t.Errorf("the bot read the first event only when the stream ended: the front held the stream back (nginx buffers an answer unless it says X-Accel-Buffering: no)")
			}
		})
	}
}

// TestFrontKeepAliveOverSilence: a front ends an answer whose upstream (here
// paygate) is silent for its read timeout (nginx's proxy_read_timeout, 60s
// by default; 3s here, with a second round that comes 4s after the first,
// as when WeChat Pay or the next round is slow). With server.sse_keepalive
// below that timeout, as the README advises behind a front, the payment
// turn's stream goes through whole: its keep-alives reach the front as
// bytes that restart its timer. Without them the front cuts the stream
// after its first round (the bot gets neither the order nor [DONE]),
// which the second case shows, so that the first is not passing by a
// timeout that never ran.
func TestFrontKeepAliveOverSilence(t *testing.T) {
	const head = `{"id":"chatcmpl-K","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		if !strings.Contains(string(b), `"role":"tool"`) {
			_, _ = io.WriteString(w, "data: "+head+`{"index":0,"delta":{"role":"assistant","content":"One moment. "},"finish_reason":null}]}`+"\n\n"+
				"data: "+head+`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}]}`+"\n\ndata: [DONE]\n\n")
			return
		}
		select { // the slow second round: longer than the front's read timeout
		case <-time.After(4 * time.Second):
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: "+head+`{"index":0,"delta":{"content":"Ready."},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(up.Close) // after the parallel cases
	for _, tt := range []struct {
		keepalive string
		whole     bool
	}{{"1s", true}, {"0s", false}} {
		t.Run("sse_keepalive "+tt.keepalive, func(t *testing.T) {
			t.Parallel()
			url, _ := paymentApp(t, up.URL, "server: {sse_keepalive: "+tt.keepalive+"}\n")
			front := startNginx(t, freeAddr(t), defaultLocations(url, "proxy_read_timeout 3s;"))
			resp := postAs(t, front, e2eClientKey, testOpenID, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"buy premium"}]}`)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := string(b)
			whole := strings.Contains(got, "Ready.") && strings.Contains(got, `"order_created"`) && strings.HasSuffix(got, "data: [DONE]\n\n")
			if whole != tt.whole {
				t.Errorf("stream whole through the front: %v; want %v: %d %q", whole, tt.whole, resp.StatusCode, got)
			}
		})
	}
}
