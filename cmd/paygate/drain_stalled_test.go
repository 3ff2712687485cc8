package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDrainDeadlineHoldsWithStalledReaders: SIGTERM while bots that stopped
// reading their streams (connections open, sockets full) hold paygate's
// writes: the listener's write stall bound (60 s) is far past
// server.shutdown_timeout, and the drain must not wait for it. serve
// returns once the deadline has cut them (Close), and each bot's
// provider exchange is closed. The 30 s are a guard against a hang, not a
// measure.
func TestDrainDeadlineHoldsWithStalledReaders(t *testing.T) {
	ev := "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"u\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
		strings.Repeat("x", 1000) + "\"},\"finish_reason\":null}]}\n\n"
	ended := make(chan struct{}, 16)
	base, _, stop, done := drainCutWith(t, func(w http.ResponseWriter) {
		defer func() { ended <- struct{}{} }()
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			if _, err := io.WriteString(w, ev); err != nil {
				return
			}
		}
	})
	const bots = 5
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	var conns []net.Conn
	for range bots {
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
		_, _ = io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+e2eClientKey+
			"\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		if _, err := c.Read(make([]byte, 1024)); err != nil { // the head, then nothing
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	stop() // SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the drain still waits on the stalled bots")
	}
	for i := range bots {
		select {
		case <-ended:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d provider exchanges still open after the drain", bots-i, bots)
		}
	}
	_ = conns // held open to the end: the bots never read again
}
