package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// TestSSEKeepaliveBetweenRounds: with server.sse_keepalive set, the client
// hears keep-alives (blank lines) while paygate executes a payment call and waits
// for the next round. The upstream's second round answers only once the
// client has seen a comment (a channel handshake), so without keep-alives
// the test fails at its deadline instead of passing by timing.
func TestSSEKeepaliveBetweenRounds(t *testing.T) {
	sawComment := make(chan struct{})
	var round atomic.Int32
	head := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if round.Add(1) == 1 {
			_, _ = io.WriteString(w, "data: "+head+`{"index":0,"delta":{"role":"assistant","content":"One moment. "},"finish_reason":null}]}`+"\n\n"+
				"data: "+head+`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}]}`+"\n\ndata: [DONE]\n\n")
			return
		}
		select {
		case <-sawComment:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			return // the test fails below: no comment came
		}
		_, _ = io.WriteString(w, "data: "+head+`{"index":0,"delta":{"content":"Ready."},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	url, _ := paymentApp(t, up.URL, "server: {sse_keepalive: 1s}\n")

	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"buy"}]}`)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	comments, gotReady, blank := 0, false, false
	for sc.Scan() {
		line := sc.Text()
		if line == "" && blank { // a blank line after an event's end
			if comments == 0 {
				close(sawComment)
			}
			comments++
		}
		blank = line == ""
		if strings.Contains(line, "Ready.") {
			gotReady = true
		}
	}
	if comments == 0 || !gotReady {
		t.Errorf("comments %d, continuation %v; want keep-alives between rounds and the whole answer", comments, gotReady)
	}
}

// keepAliveSeen wraps a client's transport and closes seen once an answer's
// body has carried a keep-alive: a blank line after an event's end.
type keepAliveSeen struct {
	next http.RoundTripper
	seen chan struct{}
	once sync.Once
}

func (k *keepAliveSeen) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := k.next.RoundTrip(r)
	if err == nil {
		resp.Body = &keepAliveBody{ReadCloser: resp.Body, k: k}
	}
	return resp, err
}

type keepAliveBody struct {
	io.ReadCloser
	k    *keepAliveSeen
	tail []byte
}

func (b *keepAliveBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.tail = append(b.tail, p[:n]...)
	if bytes.Contains(b.tail, []byte("\n\n\n")) {
		b.k.once.Do(func() { close(b.k.seen) })
	}
	if len(b.tail) > 2 {
		b.tail = b.tail[len(b.tail)-2:]
	}
	return n, err
}

// TestSSEKeepaliveThenErrorWithGoOpenAI: keep-alives are blank lines, not
// ": keep-alive" comments. go-openai gathers every line of a stream that is
// not data into the text it parses when an error event comes, so after a
// comment an error event mid-turn (the round after a payment call failed)
// reached the bot as a JSON syntax error, not as the *openai.APIError it
// handles; a blank line adds nothing there, and every SSE reader ignores
// it. The upstream's second round fails only once the client has received
// a keep-alive (a channel handshake).
func TestSSEKeepaliveThenErrorWithGoOpenAI(t *testing.T) {
	k := &keepAliveSeen{next: headerTransport{"X-WeChat-OpenID": testOpenID}, seen: make(chan struct{})}
	var round atomic.Int32
	head := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if round.Add(1) == 1 {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: "+head+`{"index":0,"delta":{"role":"assistant","content":"One moment. "},"finish_reason":null}]}`+"\n\n"+
				"data: "+head+`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}]}`+"\n\ndata: [DONE]\n\n")
			return
		}
		select {
		case <-k.seen:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest) // not retried on another target
		_, _ = io.WriteString(w, `{"error":{"message":"the continuation was refused","type":"invalid_request_error","code":"bad_continuation"}}`)
	}))
	defer up.Close()
	url, _ := paymentApp(t, up.URL, "server: {sse_keepalive: 1s}\n")
	c := openai.DefaultConfig(e2eClientKey)
	c.BaseURL = url + "/v1"
	c.HTTPClient = &http.Client{Transport: k}
	stream, err := openai.NewClientWithConfig(c).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "buy"}}})
	if err != nil {
		t.Fatalf("open the stream: %v", err)
	}
	defer stream.Close()
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	select {
	case <-k.seen:
	default:
		t.Fatalf("no keep-alive reached the client before the stream ended (%v)", err)
	}
	var ae *openai.APIError
	if !errors.As(err, &ae) {
		t.Errorf("go-openai ended the stream with %T %v; want *openai.APIError", err, err)
	}
}
