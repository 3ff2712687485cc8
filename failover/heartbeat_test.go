package failover

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/tidwall/gjson"
)

// TestEmptyDataHeartbeatsAreNotMalformed: some servers and relays keep a
// quiet stream alive with events whose data is empty ("data:" or
// "data: " and a blank line) rather than comments. They were counted as
// malformed events, so the third such heartbeat of a model that thought
// for a while ended a healthy answer: before its first token as a
// malformed answer (the provider's work thrown away and the next target
// asked and billed), after it as a cut.
func TestEmptyDataHeartbeatsAreNotMalformed(t *testing.T) {
	heartbeats := strings.Repeat("data:\n\ndata: \n\ndata:  \r\n\r\n", 2) // 6 of them, more than maxMalformed
	tests := []struct {
		name   string
		script func(c *fconn, n int)
	}{
		{"before the first token", func(c *fconn, n int) {
			c.sse()
			c.event(roleChunk())
			c.chunk(heartbeats)
			c.event(contentChunk("Hello"))
			c.event(finishChunk())
			c.done()
		}},
		{"after the first token", func(c *fconn, n int) {
			c.sse()
			c.event(roleChunk())
			c.event(contentChunk("Hello"))
			c.chunk(heartbeats)
			c.event(finishChunk())
			c.done()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": tc.script,
				"b": func(c *fconn, n int) { okStream(c, "other") },
			}, []string{"a", "b"}, nil)
			resp, err := e.r.Open(context.Background(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions",
				Body: chatBody(true), Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer resp.Close()
			if resp.Provider != "a" {
				t.Fatalf("answered by %q; want a, whose heartbeats are no malformed events", resp.Provider)
			}
			var text strings.Builder
			for {
				resp.Buffered()
				ev, err := resp.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("Next: %v (text so far %q)", err, text.String())
				}
				text.WriteString(gjson.GetBytes(ev.Data, "choices.0.delta.content").Str)
			}
			if text.String() != "Hello" {
				t.Errorf("text %q; want %q", text.String(), "Hello")
			}
		})
	}

	// Error events with no data are no heartbeats: the first ends the
	// stream as the provider's error (scanMalformed), as one with text
	// does.
	t.Run("error events without data", func(t *testing.T) {
		e := newEnv(t, map[string]func(c *fconn, n int){
			"a": func(c *fconn, n int) {
				c.sse()
				c.event(roleChunk())
				c.event(contentChunk("Hello"))
				c.chunk("event: error\ndata:\n\n")
				c.event(finishChunk())
				c.done()
			},
		}, []string{"a"}, nil)
		resp, err := e.r.Open(context.Background(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions",
			Body: chatBody(true), Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer resp.Close()
		for {
			_, err := resp.Next()
			if err == nil {
				continue
			}
			var se *StreamError
			if !errors.As(err, &se) || se.Cause != CauseStreamError {
				t.Fatalf("stream ended with %v; want it ended by the error event", err)
			}
			return
		}
	})
}

// TestEmptyDataHeartbeatsDoNotExtendTheIdleWait: an empty-data heartbeat
// is skipped as a comment is, and like a comment it does not count as the
// event the idle timeout waits for; a provider that sends nothing else
// after its first token is cut at the idle timeout, not held until the
// total one.
func TestEmptyDataHeartbeatsDoNotExtendTheIdleWait(t *testing.T) {
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": func(c *fconn, n int) {
			c.sse()
			c.event(roleChunk())
			c.event(contentChunk("Hello"))
			for !c.dead {
				c.chunk("data:\n\n")
				c.pause(50 * time.Millisecond)
			}
		},
	}, []string{"a"}, func(cfg *config.Config) {
		cfg.Providers[0].Timeouts.Idle = config.Duration(2 * time.Second)
		cfg.Providers[0].Timeouts.Total = config.Duration(20 * time.Second)
	})
	resp, err := e.r.Open(context.Background(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions",
		Body: chatBody(true), Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer resp.Close()
	for {
		_, err := resp.Next()
		if err == nil {
			continue
		}
		var se *StreamError
		if !errors.As(err, &se) || se.Cause != CauseIdleTimeout {
			t.Fatalf("stream ended with %v; want a cut by the idle timeout", err)
		}
		return
	}
}
