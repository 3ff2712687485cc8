package failover

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestNextReturnsOnlyValidJSON: every event Next returns is valid JSON as
// gjson.Valid reads it, however it reached Next (held from before the
// first token, the first token itself, read ahead by Buffered in a burst,
// or read by Next alone, the provider holding it back until Buffered has
// said that nothing is at hand), because the relay hands each such event to
// interceptors.Capture.ProcessValid, which does not check it again: a
// text scanEvent let through and gjson refused would reach the capture's
// slow path unchecked. Each text here that validJSON refuses (the
// scanEvent cases) is sent where each path reads it, between chunks that
// must all arrive.
func TestNextReturnsOnlyValidJSON(t *testing.T) {
	var bad []string
	for _, s := range append(append([]string(nil), scanEventCases...), scanEventJSONCases...) {
		if !validJSON(s) && strings.TrimSpace(s) != "" && s != "[DONE]" && !strings.ContainsAny(s, "\r\n") {
			bad = append(bad, s)
		}
	}
	type stream struct {
		x       string
		release chan struct{} // nil: x before the first token and in a burst; else x alone once closed
	}
	next := make(chan stream, 1)
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": func(c *fconn, n int) {
			st := <-next
			c.sse()
			c.event(roleChunk()) // held: no token
			if st.release == nil {
				c.event(st.x) // before the first token
			}
			c.event(contentChunk("a"))
			if st.release == nil {
				// A burst: Buffered reads x ahead of the chunk after it.
				c.chunk("data: " + contentChunk("b") + "\n\ndata: " + st.x + "\n\ndata: " + contentChunk("c") + "\n\n")
			} else {
				<-st.release
				c.event(st.x)
				c.chunk("data: " + contentChunk("b") + "\n\ndata: " + contentChunk("c") + "\n\n")
			}
			c.event(finishChunk())
			c.done()
		},
	}, []string{"a"}, nil)
	var streams []stream
	for _, x := range bad {
		streams = append(streams, stream{x: x}, stream{x: x, release: make(chan struct{})})
	}
	if len(bad) < 60 {
		t.Fatalf("%d texts validJSON refuses; want the scanEvent cases' 60 or more", len(bad))
	}
	for _, st := range streams {
		x := st.x
		next <- st
		resp, err := e.r.Open(context.Background(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions",
			Body: chatBody(true), Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
		if err != nil {
			t.Fatalf("%q: %v", x, err)
		}
		var text strings.Builder
		for {
			// As the relay asks before each wait (flushBeforeWait).
			if !resp.Buffered() && st.release != nil && text.String() == "a" {
				close(st.release)
			}
			ev, err := resp.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%q: Next: %v (text so far %q)", x, err, text.String())
			}
			if !gjson.ValidBytes(ev.Data) {
				t.Fatalf("Next returned %q, which gjson.Valid refuses (sent %q)", ev.Data, x)
			}
			text.WriteString(gjson.GetBytes(ev.Data, "choices.0.delta.content").Str)
		}
		resp.Close()
		if text.String() != "abc" {
			t.Fatalf("%q: text %q; want \"abc\"", x, text.String())
		}
	}
}
