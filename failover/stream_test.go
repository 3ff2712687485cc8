package failover

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestStreamAfterFirstByte covers failures once the first event reached the
// caller: no failover any more; the stream ends complete (io.EOF) or with a
// StreamError naming the cause, never silently.
func TestStreamAfterFirstByte(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		a         func(c *fconn)
		mutate    func(*config.Config)
		wantText  string
		wantCause string // "" : complete
		wantLog   string
		minTook   time.Duration
		maxTook   time.Duration
	}{
		{
			name: "body cut mid-stream",
			a: func(c *fconn) {
				c.sse()
				c.event(roleChunk())
				c.event(contentChunk("par"))
				c.cut()
			},
			wantText: "par", wantCause: CauseConnectionLost,
		},
		{
			// A relay that ends its upstream's broken stream with [DONE]:
			// the round never finished, whatever the relay says.
			name: "[DONE] before any finish_reason",
			a: func(c *fconn) {
				c.sse()
				c.event(roleChunk())
				c.event(contentChunk("par"))
				c.done()
			},
			wantText: "par", wantCause: CauseConnectionLost,
		},
		{
			name: "reset mid-stream",
			a: func(c *fconn) {
				c.sse()
				c.event(contentChunk("par"))
				c.reset()
			},
			wantText: "par", wantCause: CauseConnectionLost,
		},
		{
			name: "invalid JSON in one event is skipped and logged",
			a: func(c *fconn) {
				c.sse()
				c.event(contentChunk("one "))
				c.event(`{"choices":[{"delta":{"content":"bro`)
				c.event(contentChunk("two"))
				c.event(finishChunk())
				c.done()
			},
			wantText: "one two", wantLog: "malformed event skipped",
		},
		{
			name: "three malformed events end the stream",
			a: func(c *fconn) {
				c.sse()
				c.event(contentChunk("one"))
				c.event(`{bad`)
				c.event(`{bad`)
				c.event(`{bad`)
				c.event(contentChunk("two"))
				c.done()
			},
			wantText: "one", wantCause: CauseMalformed,
		},
		{
			name: "no [DONE]: finish reason then a clean end is complete",
			a: func(c *fconn) {
				c.sse()
				c.event(contentChunk("all"))
				c.event(finishChunk())
				c.end()
			},
			wantText: "all",
		},
		{
			name: "no [DONE]: finish reason then a cut is complete",
			a: func(c *fconn) {
				c.sse()
				c.event(contentChunk("all"))
				c.event(finishChunk())
				c.event(usageChunk())
				c.cut()
			},
			wantText: "all",
		},
		{
			name: "finish reason then an open, silent connection: complete after the idle timeout",
			a: func(c *fconn) {
				c.sse()
				c.event(contentChunk("all"))
				c.event(finishChunk())
				c.hang()
			},
			wantText: "all", minTook: tIdle, maxTook: tIdle + slack,
		},
		{
			name: "clean end without finish reason or [DONE] is a cut",
			a: func(c *fconn) {
				c.sse()
				c.event(contentChunk("half"))
				c.end()
			},
			wantText: "half", wantCause: CauseConnectionLost,
		},
		{
			name: "idle gap longer than the idle timeout",
			a: func(c *fconn) {
				c.sse()
				c.event(contentChunk("slow"))
				c.hang()
			},
			wantText: "slow", wantCause: CauseIdleTimeout, minTook: tIdle, maxTook: tIdle + slack,
		},
		{
			name: "an error object mid-stream",
			a: func(c *fconn) {
				c.sse()
				c.event(contentChunk("oops"))
				c.event(`{"error":{"code":502,"message":"provider died"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`)
				c.done()
			},
			wantText: "oops", wantCause: CauseStreamError,
		},
		{
			name: "comment lines are never returned",
			a: func(c *fconn) {
				c.sse()
				c.comment("OPENROUTER PROCESSING")
				c.event(contentChunk("a"))
				c.comment("keep-alive")
				c.event(contentChunk("b"))
				c.event(finishChunk())
				c.done()
			},
			wantText: "ab",
		},
		{
			name: "total timeout over a steady trickle",
			a: func(c *fconn) {
				c.sse()
				for !c.dead {
					c.event(contentChunk("."))
					c.pause(50 * time.Millisecond)
				}
			},
			// Idle at 2s, not 300ms: the trickle's 50ms gaps are not
			// what is tested, and a stall of 250ms on a loaded CI
			// machine under -race ended the stream as idle instead.
			mutate: func(cfg *config.Config) {
				cfg.Providers[0].Timeouts.Total = config.Duration(400 * time.Millisecond)
				cfg.Providers[0].Timeouts.Idle = config.Duration(2 * time.Second)
			},
			wantCause: CauseTotalTimeout, minTook: 400 * time.Millisecond, maxTook: 400*time.Millisecond + slack,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			script := func(c *fconn, _ int) { tc.a(c) }
			e := newEnv(t, map[string]func(*fconn, int){"a": script}, []string{"a", "b"}, tc.mutate)
			got := e.open(t.Context(), true)
			if got.openErr != nil {
				t.Fatalf("Open: %v", got.openErr)
			}
			if tc.wantText != "" && got.text != tc.wantText {
				t.Errorf("text %q; want %q", got.text, tc.wantText)
			}
			if tc.wantCause == "" {
				if !got.complete() {
					t.Errorf("ended with %v; want complete (io.EOF)", got.end)
				}
			} else {
				var se *StreamError
				if !errors.As(got.end, &se) || se.Cause != tc.wantCause || se.Provider != "a" {
					t.Errorf("ended with %v; want StreamError from a with cause %s", got.end, tc.wantCause)
				} else if !strings.Contains(se.Error(), "a") || !strings.Contains(se.Error(), tc.wantCause) {
					t.Errorf("Error() %q does not name the provider and cause", se.Error())
				}
			}
			for _, ev := range got.events {
				if strings.HasPrefix(ev, ":") || ev == "[DONE]" {
					t.Errorf("Next returned %q", ev)
				}
			}
			if n := len(e.fakes["b"].hits()); n != 0 {
				t.Errorf("b saw %d requests; want none after the first byte", n)
			}
			if tc.wantLog != "" && !strings.Contains(e.logs.String(), tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, e.logs.String())
			}
			if tc.minTook > 0 && got.took < tc.minTook {
				t.Errorf("took %v; want at least %v", got.took, tc.minTook)
			}
			if tc.maxTook > 0 && got.took > tc.maxTook {
				t.Errorf("took %v; want at most %v", got.took, tc.maxTook)
			}
		})
	}
}

// TestNextAfterEndIsSticky: once a stream ended, Next keeps returning the
// same result and Close is safe.
func TestNextAfterEndIsSticky(t *testing.T) {
	e := newEnv(t, nil, []string{"a"}, nil)
	resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = resp.Next(); err != nil {
			break
		}
	}
	for range 2 {
		if _, err2 := resp.Next(); !errors.Is(err2, io.EOF) {
			t.Errorf("Next after the end: %v; want io.EOF", err2)
		}
	}
	resp.Close()
	resp.Close()
}

// TestIsEventStream: the fast path for the usual Content-Type values
// answers as mime.ParseMediaType does for every value.
func TestIsEventStream(t *testing.T) {
	for _, ct := range []string{
		"text/event-stream", "TEXT/Event-Stream", "text/event-stream; charset=utf-8",
		"text/event-stream; charset=UTF-8", "text/event-stream;charset=utf-8", "text/event-stream; charset",
		"text/event-stream;", "application/json", "", "text/event-streamx", " text/event-stream",
	} {
		mt, _, err := mime.ParseMediaType(ct)
		want := err == nil && mt == "text/event-stream"
		if got := isEventStream(http.Header{"Content-Type": {ct}}); got != want {
			t.Errorf("isEventStream(%q) = %v; mime.ParseMediaType says %v", ct, got, want)
		}
	}
}

// TestBufferedSkipsAMalformedEvent: Buffered must not say the next event is
// at hand when what is buffered is a malformed event Next would skip: the
// relay then leaves the text before it unflushed while Next waits for the
// provider (for as long as the model thinks, or until the idle timeout).
// The provider here sends text chunks and a malformed event in one write
// and then says nothing until the test sees Buffered report false.
func TestBufferedSkipsAMalformedEvent(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": func(c *fconn, n int) {
			c.sse()
			c.chunk("data: " + roleChunk() + "\n\ndata: " + contentChunk("Hello") + "\n\ndata: " + contentChunk(" world") +
				"\n\ndata: {\"truncated\":\n\n")
			<-release
			c.event(contentChunk("!"))
			c.event(finishChunk())
			c.done()
		},
	}, []string{"a"}, nil)
	released := false
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // before the fake provider's own cleanup waits for the script
	resp, err := e.r.Open(context.Background(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions",
		Body: chatBody(true), Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	var text strings.Builder
	for {
		buffered := resp.Buffered()
		if !buffered && !released {
			releaseOnce()
			released = true
		}
		type result struct {
			content string
			err     error
		}
		got := make(chan result, 1)
		go func() {
			ev, err := resp.Next()
			got <- result{gjson.GetBytes(ev.Data, "choices.0.delta.content").Str, err}
		}()
		var r result
		select {
		case r = <-got:
		case <-time.After(10 * time.Second):
			releaseOnce() // let Next return before the test ends
			<-got
			t.Fatalf("Next after Buffered() = %v was still waiting for the provider after 10s (text so far %q)", buffered, text.String())
		}
		if errors.Is(r.err, io.EOF) {
			break
		}
		if r.err != nil {
			t.Fatalf("Next after Buffered() = %v: %v (text so far %q)", buffered, r.err, text.String())
		}
		text.WriteString(r.content)
	}
	if !released || text.String() != "Hello world!" {
		t.Errorf("text %q, released %v; want \"Hello world!\" with the provider released only once Buffered said false", text.String(), released)
	}
}

// audioChunk is a delta of a chat stream with audio output (modalities
// ["text","audio"]: gpt-4o-audio-preview), which carries the answer in
// delta.audio, never in delta.content.
func audioChunk(transcript, data string) string {
	return `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":null,"audio":{"id":"audio_1","transcript":"` +
		transcript + `","data":"` + data + `"}},"finish_reason":null}]}`
}

// TestAudioOutputStreamIsTokens: an audio-output stream's delta.audio
// events were not taken for tokens, so the stream was held until its
// finish reason, and one that spoke longer than first_token was failed
// over as having no first token: the provider's steady answer thrown away
// (and billed), the next target asked. Its transcript and audio are the
// answer begun. The provider here paces its audio chunks far below the
// idle timeout (raised to 10s, so a scheduling stall on a loaded CI machine
// is not taken for silence: 300ms was once too little, and 2s once on a
// slow host under -race) and finishes only after first_token.
func TestAudioOutputStreamIsTokens(t *testing.T) {
	t.Parallel()
	const chunks = 4
	e := newEnv(t, map[string]func(*fconn, int){
		"a": always(func(c *fconn) {
			c.sse()
			c.event(`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null,"refusal":null},"finish_reason":null}]}`)
			for range chunks { // each gap well within idle, all of them together longer than first_token
				c.event(audioChunk("word ", "UklGRiQAAABXQVZF"))
				if c.pause(tFirstToken / 2); c.dead {
					return
				}
			}
			c.event(finishChunk())
			c.done()
		}),
	}, []string{"a", "b"}, func(cfg *config.Config) {
		cfg.Providers[0].Timeouts.Idle = config.Duration(10 * time.Second)
	})
	got := e.open(t.Context(), true)
	if got.openErr != nil || got.provider != "a" || !got.complete() {
		t.Fatalf("answered by %q, err %v, end %v; want a's whole audio stream", got.provider, got.openErr, got.end)
	}
	var transcript string
	for _, ev := range got.events {
		transcript += gjson.Get(ev, "choices.0.delta.audio.transcript").Str
	}
	if want := strings.Repeat("word ", chunks); transcript != want {
		t.Errorf("transcript %q; want %q", transcript, want)
	}
	if n := len(e.fakes["b"].hits()); n != 0 {
		t.Errorf("b saw %d requests; want none", n)
	}
}

// TestEventMayHoldError: EventMayHoldError is false only for an event with
// no `"error"` in its data (scanEvent's markErrorTail, found on the pass
// that validated it), which a relay then need not search for an empty
// error member; it is true for every event that has one, a key or a value,
// and for the events Next returns without that scan (held before the first
// token, the first token itself). The events come both as Next reads them
// and as Buffered peeks them.
func TestEventMayHoldError(t *testing.T) {
	const c = `{"id":"c1","object":"chat.completion.chunk",`
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": always(func(fc *fconn) {
			fc.sse()
			fc.event(roleChunk())
			fc.event(contentChunk("Hello"))
			fc.event(c + `"error":{},"choices":[{"index":0,"delta":{"content":" a"},"finish_reason":null}]}`)
			fc.event(contentChunk(`\"error\"`))
			fc.event(contentChunk("terror"))
			fc.event(c + `"choices":[{"index":0,"delta":{"content":"error"},"finish_reason":null}]}`)
			fc.event(contentChunk(" world"))
			fc.event(finishChunk())
			fc.done()
		}),
	}, []string{"a"}, nil)
	for _, peek := range []bool{false, true} {
		resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true})
		if err != nil {
			t.Fatal(err)
		}
		clean := 0
		for i := 0; ; i++ {
			if peek {
				resp.Buffered()
			}
			ev, err := resp.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("peek %v: %v", peek, err)
				}
				break
			}
			may := resp.EventMayHoldError()
			if bytes.Contains(ev.Data, []byte(`"error"`)) && !may {
				t.Errorf("peek %v: event %d %s: EventMayHoldError false", peek, i, ev.Data)
			}
			if !may {
				clean++
			}
		}
		resp.Close()
		// The role chunk is held and Hello is the first token: neither
		// is known clean. Of the others, the escaped \"error\", " world"
		// and the finish are; "terror" (its `rror"`) is not.
		if clean != 3 {
			t.Errorf("peek %v: %d events known without an error; want 3 (\\\"error\\\", world, the finish)", peek, clean)
		}
	}
}

// TestEventMarksAfterEnd: a Next that returns an error leaves no event, and
// EventMayHoldError (true) and EventOneLine (false) say nothing is known of
// one, as their docs say, also when the stream had ended before that call
// (the caller's Close, Buffered's read of its end) and Next returned its
// end at once: the last event's marks were left standing.
func TestEventMarksAfterEnd(t *testing.T) {
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": always(func(fc *fconn) {
			fc.sse()
			fc.event(contentChunk("Hello"))
			fc.event(contentChunk(" world"))
			fc.hang()
		}),
	}, []string{"a"}, nil)
	resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the first token, then " world", read and scanned
		if _, err := resp.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if resp.EventMayHoldError() || !resp.EventOneLine() {
		t.Fatalf("after \" world\": EventMayHoldError %v, EventOneLine %v; want false, true", resp.EventMayHoldError(), resp.EventOneLine())
	}
	resp.Close()
	if _, err := resp.Next(); err == nil {
		t.Fatal("Next after Close returned an event")
	}
	if !resp.EventMayHoldError() || resp.EventOneLine() {
		t.Errorf("after a Next that returned an error: EventMayHoldError %v, EventOneLine %v; want true, false", resp.EventMayHoldError(), resp.EventOneLine())
	}
}
