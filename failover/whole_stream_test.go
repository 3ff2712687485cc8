package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// wholeToolCall is a whole chat completion with text, a tool call and
// usage: what a provider that ignores "stream": true answers.
const wholeToolCall = `{"id":"chatcmpl-w","object":"chat.completion","created":1700000000,"model":"m-1","system_fingerprint":"fp",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Ordering.","tool_calls":[{"id":"call_1","type":"function",` +
	`"function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"quantity\":1}"}}]},"finish_reason":"tool_calls"}],` +
	`"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`

// TestWholeCompletionToAStream: a stream request answered with a whole
// chat completion (application/json) is the answer, from the provider that
// gave it, in the events a stream of it would have had: the message as a
// delta (its tool calls numbered), its finish, its usage, the end. Failed
// over as malformed, the answer was asked for again, of this provider and
// the next, each billed. A JSON body that is no whole completion still
// fails over, as does one that names a member paygate reads twice. It is
// known by its first byte, not by its label: one labelled
// text/event-stream (a relay that labels the answer by the request's
// "stream") was read as events, found none and failed over as a cut
// stream, asked again and of the next target, each billed.
func TestWholeCompletionToAStream(t *testing.T) {
	const asEvents = "Content-Type: text/event-stream"
	tests := []struct {
		name     string
		body     string
		provider string
		header   string
	}{
		{"labelled text/event-stream", wholeToolCall, "a", asEvents},
		{"labelled text/event-stream, blank lines and a byte order mark before it", "\ufeff\n\n" + wholeToolCall + "\n", "a", asEvents},
		{"labelled text/event-stream, after keep-alive comments", ": PROCESSING\n\n: PROCESSING\n\n" + wholeToolCall, "a", asEvents},
		{"labelled text/event-stream, its framing cut after it", wholeToolCall, "a", "cut"},
		{"labelled text/event-stream, its connection reset after it", wholeToolCall, "a", "reset"},
		{"labelled text/event-stream, silent after it", wholeToolCall, "a", "hang"},
		{"labelled text/event-stream, reset within it", wholeToolCall[:len(wholeToolCall)-9], "b", "reset"},
		{"its connection reset after it", wholeToolCall, "a", "json reset"},
		{"silent after it", wholeToolCall, "a", "json hang"},
		{"reset within it", wholeToolCall[:len(wholeToolCall)-9], "b", "json reset"},
		{"labelled text/event-stream, cut within it", wholeToolCall[:len(wholeToolCall)-9], "b", "cut"},
		{"labelled text/event-stream, gzip-encoded", wholeToolCall, "a", asEvents + "\r\nContent-Encoding: gzip"},
		{"labelled text/event-stream, tool_calls twice", `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[],` +
			`"tool_calls":[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`, "b", asEvents},
		{"labelled text/event-stream, no whole completion", `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"}}]}`, "b", asEvents},
		{"whole completion", wholeToolCall, "a", ""},
		// Indented (valid JSON; a Python server's json.dumps(indent=2)):
		// its line breaks are whitespace, which an event's data line
		// cannot hold.
		{"whole completion, indented", indented(t, wholeToolCall), "a", ""},
		{"labelled text/event-stream, indented", indented(t, wholeToolCall), "a", asEvents},
		{"no finish_reason", `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"}}]}`, "b", ""},
		{"no choices", `{"id":"c","choices":[]}`, "b", ""},
		{"not a completion", `{"code":50001,"msg":"busy"}`, "b", ""},
		// Named two ways, it is read two ways (ambiguousMember), streamed
		// or not: failed over, not streamed as paygate's first copy.
		{"tool_calls twice", `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[],` +
			`"tool_calls":[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`, "b", ""},
		{"a usage count twice", `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],` +
			`"usage":{"prompt_tokens":10,"completion_tokens":5,"completion_tokens":500,"total_tokens":15}}`, "b", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": func(c *fconn, _ int) {
					body := tc.body
					if how, json := strings.CutPrefix(tc.header, "json "); how == "cut" || how == "reset" || how == "hang" {
						if json {
							_, _ = io.WriteString(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
							c.chunked = true
						} else {
							c.sse()
						}
						c.chunk(body)
						map[string]func(){"cut": c.cut, "reset": c.reset, "hang": c.hang}[how]()
						return
					}
					if strings.Contains(tc.header, "gzip") {
						body = encode(t, "gzip", body)
					}
					if tc.header == "" {
						c.status(200, body)
					} else {
						c.status(200, body, tc.header)
					}
				},
			}, []string{"a", "b"}, nil)
			got := e.open(context.Background(), true)
			if got.openErr != nil {
				t.Fatal(got.openErr)
			}
			if got.provider != tc.provider {
				t.Fatalf("answered by %q after %d attempts; want %q", got.provider, got.attempts, tc.provider)
			}
			if !errors.Is(got.end, io.EOF) {
				t.Fatalf("stream ended with %v; want io.EOF", got.end)
			}
			if tc.provider != "a" {
				return
			}
			if got.attempts != 1 || len(e.fakes["b"].hits()) != 0 {
				t.Errorf("%d attempts, b asked %d times; want the one attempt, of a", got.attempts, len(e.fakes["b"].hits()))
			}
			if len(got.events) != 3 {
				t.Fatalf("events %q; want the message, its finish and the usage", got.events)
			}
			for i, ev := range got.events {
				r := gjson.GetMany(ev, "object", "id", "model", "created", "system_fingerprint")
				if r[0].Str != "chat.completion.chunk" || r[1].Str != "chatcmpl-w" || r[2].Str != "m-1" || r[3].Int() != 1700000000 || r[4].Str != "fp" {
					t.Errorf("event %d %s: want a chunk with the completion's id, model, created and fingerprint", i, ev)
				}
			}
			delta := gjson.Get(got.events[0], "choices.0.delta")
			call := delta.Get("tool_calls.0")
			if got.text != "Ordering." || delta.Get("role").Str != "assistant" || call.Get("index").Raw != "0" || call.Get("id").Str != "call_1" ||
				call.Get("function.name").Str != "create_order" || call.Get("function.arguments").Str != `{"sku":"premium-monthly","quantity":1}` {
				t.Errorf("first event %s: want the message as a delta, its tool call at index 0", got.events[0])
			}
			if fr := gjson.Get(got.events[1], "choices.0.finish_reason"); fr.Str != "tool_calls" {
				t.Errorf("second event %s: want finish_reason tool_calls", got.events[1])
			}
			if u := gjson.Get(got.events[2], "usage.total_tokens"); u.Int() != 15 || gjson.Get(got.events[2], "choices.#").Int() != 0 {
				t.Errorf("third event %s: want the usage alone", got.events[2])
			}
		})
	}
}

// indented is the JSON s indented as a pretty-printing server sends it,
// with CRLF line ends.
func indented(t *testing.T, s string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(b.String(), "\n", "\r\n")
}

// TestWholeCompletionAfterKeepAlivesAnyLabelToAStream: a whole chat
// completion after keep-alive comments answering a stream request is the
// answer whatever its label and size, up to the limit a chat completion
// has: labelled application/json, text/plain or nothing, it was read as
// events labelled otherwise (its first byte is the comment's), whose
// object was kept only up to an error body's 64 KiB, so a larger one was
// taken for a stream that ended before its first token: asked again and
// of the next target, each billed, where the same labelled
// text/event-stream was taken.
func TestWholeCompletionAfterKeepAlivesAnyLabelToAStream(t *testing.T) {
	content := strings.Repeat("x", 100<<10)
	body := ": PROCESSING\n\n: PROCESSING\n\n" + strings.Replace(wholeToolCall, `"content":"Ordering."`, `"content":"`+content+`"`, 1)
	for _, label := range []string{"application/json", "text/plain; charset=utf-8", "text/event-stream"} {
		t.Run(label, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": func(c *fconn, _ int) { c.status(200, body, "Content-Type: "+label) },
				"b": func(c *fconn, _ int) { okJSON(c, "from b") },
			}, []string{"a", "b"}, nil)
			got := e.open(context.Background(), true)
			if got.openErr != nil || got.provider != "a" || got.attempts != 1 {
				t.Fatalf("answered by %q after %d attempts (%v); want a's answer, asked once", got.provider, got.attempts, got.openErr)
			}
			if got.text != content || !errors.Is(got.end, io.EOF) || len(got.events) != 3 {
				t.Errorf("text of %d bytes, %d events, end %v; want a's %d bytes, its finish and usage, whole", len(got.text), len(got.events), got.end, len(content))
			}
			if fr := gjson.Get(got.events[1], "choices.0.finish_reason"); fr.Str != "tool_calls" {
				t.Errorf("second event %s: want finish_reason tool_calls", got.events[1])
			}
		})
	}
}

// TestEventStreamLabelledOtherwiseToAStream: a stream request answered with
// chat.completion.chunk events labelled as something else
// (application/json, text/plain, no Content-Type: relays that set the
// label once for every answer) is the answer, known by its first byte as
// a non-stream request's events are (eventsBody): read whole as a JSON
// body, it was no JSON object and failed over as malformed, asked again
// and of the next target, each billed. Events cut before their finish
// end as a stream so cut does (recovered by the turn, not taken whole).
func TestEventStreamLabelledOtherwiseToAStream(t *testing.T) {
	events := ": keep-alive\n\n" +
		"data: " + choicesChunk(`{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}`) + "\n\n" +
		"data: " + choicesChunk(`{"index":0,"delta":{"content":"lo"},"finish_reason":null}`) + "\n\n" +
		"data: " + choicesChunk(`{"index":0,"delta":{},"finish_reason":"stop"}`) + "\n\n"
	for _, tc := range []struct {
		name, body, header, provider string
		cut                          bool
	}{
		{"labelled application/json", events + "data: [DONE]\n\n", "", "a", false},
		{"labelled text/plain", events + "data: [DONE]\n\n", "Content-Type: text/plain; charset=utf-8", "a", false},
		{"labelled application/json, gzip-encoded", events + "data: [DONE]\n\n", "Content-Encoding: gzip", "a", false},
		{"labelled application/json, cut before the finish", events[:strings.LastIndex(events, "data:")], "", "a", true},
		{"labelled application/json, its connection cut after the finish", events, "cut", "a", false},
		{"labelled application/json, its connection cut before the finish", events[:strings.LastIndex(events, "data:")], "cut", "a", true},
		{"labelled application/json, its connection reset after the finish", events, "reset", "a", false},
		{"labelled application/json, silent past idle after the finish", events, "hang", "a", false},
		{"labelled application/json, its connection reset before the finish", events[:strings.LastIndex(events, "data:")], "reset", "a", true},
		{"labelled application/json, silent past idle before the finish", events[:strings.LastIndex(events, "data:")], "hang", "a", true},
		{"labelled application/json, an error event", "data: " + errBody("server_error", "overloaded", "try again") + "\n\n", "", "b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": func(c *fconn, _ int) {
					body := tc.body
					switch {
					case tc.header == "cut" || tc.header == "reset" || tc.header == "hang":
						_, _ = io.WriteString(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
						c.chunked = true
						c.chunk(body)
						map[string]func(){"cut": c.cut, "reset": c.reset, "hang": c.hang}[tc.header]()
						return
					case strings.Contains(tc.header, "gzip"):
						body = encode(t, "gzip", body)
					}
					if tc.header == "" {
						c.status(200, body)
					} else {
						c.status(200, body, tc.header)
					}
				},
				"b": func(c *fconn, _ int) { okJSON(c, "from b") },
			}, []string{"a", "b"}, nil)
			got := e.open(context.Background(), true)
			if got.openErr != nil {
				t.Fatal(got.openErr)
			}
			if got.provider != tc.provider {
				t.Fatalf("answered by %q after %d attempts; want %q", got.provider, got.attempts, tc.provider)
			}
			if tc.provider != "a" {
				return
			}
			if tc.cut {
				if got.text != "Hello" || got.end == nil || errors.Is(got.end, io.EOF) {
					t.Errorf("text %q, end %v; want Hello, then the stream cut", got.text, got.end)
				}
				return
			}
			if got.attempts != 1 || got.text != "Hello" || !errors.Is(got.end, io.EOF) {
				t.Errorf("%d attempts, text %q, end %v; want a's one answer, Hello, whole", got.attempts, got.text, got.end)
			}
		})
	}
}
