package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSSEKeepaliveBetweenRounds: with server.sse_keepalive set, the client
// hears keep-alive comments while paygate executes a payment call and waits
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
	comments, gotReady := 0, false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ": keep-alive") {
			if comments == 0 {
				close(sawComment)
			}
			comments++
		}
		if strings.Contains(line, "Ready.") {
			gotReady = true
		}
	}
	if comments == 0 || !gotReady {
		t.Errorf("comments %d, continuation %v; want keep-alives between rounds and the whole answer", comments, gotReady)
	}
}
