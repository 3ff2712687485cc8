package proxy

import (
	"bufio"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// abruptClose answers with events in chunked encoding and then closes the
// connection without the chunked body's terminator, as a server process
// that exits, or a proxy that drops the connection, right after its last
// write: the client's body read ends with io.ErrUnexpectedEOF, not io.EOF.
func abruptClose(events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		bw := bufio.NewWriter(conn)
		_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		for _, e := range events {
			_, _ = fmt.Fprintf(bw, "%x\r\n%s\r\n", len(e), e)
		}
		_ = bw.Flush()
	}
}

// TestStreamFinishBeforeAbruptCloseIsWhole: a provider whose last event, its
// finish chunk, arrived whole but without the blank line that dispatches it
// (or without even its line end), and whose connection then closed without
// the chunked terminator, had answered: the round is complete, as it is when
// the same connection closes cleanly (SPEC 5: a stream that ends after its
// finish reason is complete). The finish chunk was dropped with the read
// error, the round taken for cut, and the user got upstream_connection_lost
// in place of the order the model had asked for.
func TestStreamFinishBeforeAbruptCloseIsWhole(t *testing.T) {
	const head = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	call := head + `[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}` + "\n\n"
	finish := head + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`
	for _, tail := range []string{"\n\n", "\n", ""} {
		t.Run(fmt.Sprintf("finish chunk ending %q", tail), func(t *testing.T) {
			tools := &recordingTools{}
			fp := newFakeProvider(t, roundByRound(abruptClose(call, finish+tail), textRound(true, "Your order is ready.")))
			url := toolsProxy(t, fp.URL, tools, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if got := tools.executed(); !slices.Equal(got, []string{`create_order {"sku":"premium-monthly"}`}) {
				t.Errorf("executed %q; want the call run once", got)
			}
			if strings.Contains(body, `"error"`) || !strings.Contains(body, "Your order is ready.") || !strings.HasSuffix(body, "data: [DONE]\n\n") {
				t.Errorf("stream %s; want the next round's answer and [DONE], no error", body)
			}
		})
	}
}
