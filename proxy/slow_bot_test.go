package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// bigStreamRound streams n chunks of piece as one answer, then its finish
// and [DONE], as fast as the connection takes them.
func bigStreamRound(piece string, n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		ev := roundChunk + `[{"index":0,"delta":{"content":"` + piece + `"},"finish_reason":null}]}` + "\n\n"
		bw := bufio.NewWriterSize(w, 64<<10)
		_, _ = io.WriteString(bw, roundChunk+`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n")
		for range n {
			if _, err := io.WriteString(bw, ev); err != nil {
				return
			}
		}
		_, _ = io.WriteString(bw, roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n"+"data: [DONE]\n\n")
		_ = bw.Flush()
	}
}

// slowBotConn dials url with a small receive buffer (no window
// autotuning: the bot's link is slow), when rcvbuf is above 0, and sends
// body as a chat request.
func slowBotConn(t *testing.T, url, body string, rcvbuf int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if rcvbuf > 0 {
		if err := conn.(*net.TCPConn).SetReadBuffer(rcvbuf); err != nil {
			t.Fatal(err)
		}
	}
	_, err = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testClientKey+
		"\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestSlowBotGetsWholeChatStream: a bot that reads its stream slower than
// the provider writes it (a slow mobile link behind it, a busy event loop)
// holds paygate's writes, and paygate, which reads the provider only as
// fast as the bot takes the answer, holds the provider's. The provider's
// total timeout counted that time as the provider's: a long answer to a
// slow bot was cut at timeouts.total, long after the provider had written
// all of it, ended with an error event (or asked another provider for the
// rest, billed twice) and counted against the provider's breaker. The
// total timeout bounds the provider, not the bot's pace: a bot that keeps
// reading gets the whole answer from the one provider, however long it
// pauses short of the server's write stall bound (proxy/h1's, which cuts a
// bot that stopped reading). The bot's pause is its pace, not a
// synchronisation; the time that counts is paygate's reading of the
// provider, a few milliseconds.
func TestSlowBotGetsWholeChatStream(t *testing.T) {
	const total = time.Second
	piece := strings.Repeat("x", 8000)
	const n = 512 // 4 MB of text: far above what the sockets between hold while the bot pauses (0.6 MB)
	fp := newFakeProvider(t, bigStreamRound(piece, n))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
		c.Providers[0].Timeouts.Total = config.Duration(total)
	}))
	conn := slowBotConn(t, url, `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"write a lot"}]}`, 0)
	br := bufio.NewReaderSize(conn, 4<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * total) // the bot's pace: it takes longer than the total timeout over the answer
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the stream broke after %d bytes: %v", len(head)+len(rest), err)
	}
	body := string(head) + string(rest)
	if strings.Contains(body, `"error"`) {
		i := strings.Index(body, `"error"`)
		t.Errorf("the stream holds an error event: %.300s", body[max(0, i-20):])
	}
	if !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("the stream does not end with [DONE]: …%q", body[max(0, len(body)-200):])
	}
	if got := len(streamText(body)); got != n*len(piece) {
		t.Errorf("%d bytes of text; want the provider's %d", got, n*len(piece))
	}
	if k := len(fp.requests()); k != 1 {
		t.Errorf("%d upstream requests; want the one answer", k)
	}
}
