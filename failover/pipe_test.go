package failover

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/config"
)

// testMaxResponse is the Router's MaxResponseBytes and MaxJSONResponseBytes
// in these tests (setTestLimits): small, so that "larger than a chat
// completion may be" costs no memory.
const testMaxResponse = 1 << 10

// setTestLimits caps a chat completion at testMaxResponse and a JSON
// passthrough answer at jsonMax (testMaxResponse when 0).
func setTestLimits(r *Router, jsonMax int64) {
	r.opts.MaxResponseBytes = testMaxResponse
	r.opts.MaxJSONResponseBytes = cmp.Or(jsonMax, testMaxResponse)
}

// TestPassthroughAnswerIsPiped: a passthrough answer used to be read whole
// before Open returned, capped at MaxResponseBytes (32 MiB). A larger one (a
// batch output file) was a malformed answer: fetched twice, counted as a
// breaker failure each time, so that three downloads opened the breaker and
// every chat completion of every bot got 503 for the cool-down. A 2xx
// passthrough answer that is not JSON is now returned at its head and its
// body read as it arrives, whatever its size. A JSON one is read whole, as
// a chat completion is: a 2xx error object or a CDN's page still fails
// over, and the proxy can drop an upstream's forged "paygate" member from
// the whole object (piping a long one let it through).
func TestPassthroughAnswerIsPiped(t *testing.T) {
	t.Parallel()
	big := func(line string) string { return strings.Repeat(line, 4*testMaxResponse/len(line)+1) }
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		wantPiped   bool
		wantFrom    string // "b": a's answer was refused
	}{
		{"file content larger than a chat completion may be", "/files/f1/content", "application/octet-stream", big(`{"id":"batch_req_1","response":{}}` + "\n"), true, "a"},
		{"JSON Lines larger than a chat completion may be", "/files/f1/content", "application/jsonl", big(`{"id":"batch_req_1","response":{}}` + "\n"), true, "a"},
		{"speech larger than a chat completion may be", "/audio/speech", "audio/mpeg", big("ID3\x04\x00\xff\xfb"), true, "a"},
		{"an event stream", "/audio/speech", "text/event-stream", big(`data: {"type":"speech.audio.delta","audio":"AAAA"}` + "\n\n"), true, "a"},
		{"JSON, read whole", "/embeddings", "application/json", `{"object":"list","data":[]}`, false, "a"},
		{"+json, read whole", "/files/f1", "application/vnd.api+json", `{"id":"f1","object":"file"}`, false, "a"},
		{"a page sent as JSON", "/embeddings", "application/json", "<html><p>Just a moment...</p></html>", false, "b"},
		{"a 2xx error object", "/embeddings", "application/json", `{"error":{"code":502,"message":"upstream failed"}}`, false, "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){
				"a": always(statusFn(200, tc.body, "Content-Type: "+tc.contentType)),
				"b": always(statusFn(200, `{"object":"list","data":[],"model":"from b"}`)),
			}, []string{"a", "b"}, nil)
			setTestLimits(e.r, 0)
			resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: "GET", Path: tc.path})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer resp.Close()
			if resp.Provider != tc.wantFrom || resp.Piped() != tc.wantPiped {
				t.Fatalf("answered by %s, piped %v; want %s, piped %v", resp.Provider, resp.Piped(), tc.wantFrom, tc.wantPiped)
			}
			if tc.wantFrom != "a" {
				return
			}
			body := resp.Body
			if resp.Piped() {
				if resp.Body != nil {
					t.Errorf("a piped answer has a Body of %d bytes", len(resp.Body))
				}
				if body, err = io.ReadAll(resp); err != nil {
					t.Fatalf("reading the body: %v", err)
				}
				if resp.ContentLength() != int64(len(tc.body)) {
					t.Errorf("ContentLength %d; want %d", resp.ContentLength(), len(tc.body))
				}
			}
			if string(body) != tc.body {
				t.Errorf("body of %d bytes; want a's %d as sent", len(body), len(tc.body))
			}
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != [2]int{1, 0} {
				t.Errorf("providers saw a=%d b=%d; want a once, b never", h[0], h[1])
			}
		})
	}
}

// TestForwardedObjectWithErrorIsAnAnswer: OpenAI answers 200 with objects
// that carry an "error" member as part of what they describe: a failed
// background Response (GET /v1/responses/{id}: "object":"response",
// "status":"failed", "error":{code, message}), a failed fine-tuning job.
// paygate took each for a provider failure: it asked again and the next
// target, answered 502, and counted every poll against the provider's
// breaker, so that three polls opened it and every bot's chat completions
// on that provider got 503. On a forwarded path a 2xx body is an error
// only when it is an error envelope: an "error" and no "object" or "id"
// naming a resource (OpenRouter's {"error":{code, message}, "user_id"},
// sent with 200 once the model has started). A chat completion's body is
// read as before.
func TestForwardedObjectWithErrorIsAnAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		path     string
		body     string
		wantFrom string // "b": a's answer was taken for an error
	}{
		{"a failed background response", "/responses/resp_1",
			`{"id":"resp_1","object":"response","status":"failed","background":true,"error":{"code":"server_error","message":"The model failed to generate a response."},"output":[],"usage":null}`, "a"},
		{"a failed fine-tuning job", "/fine_tuning/jobs/ftjob-1",
			`{"object":"fine_tuning.job","id":"ftjob-1","model":"gpt-4o-mini","status":"failed","error":{"code":"invalid_training_file","message":"The file is not valid JSONL.","param":"training_file"}}`, "a"},
		{"a resource named by its id alone", "/things/t1", `{"id":"t1","status":"failed","error":{"message":"x"}}`, "a"},
		{"a null error", "/responses/resp_1", `{"id":"resp_1","object":"response","status":"completed","error":null}`, "a"},
		{"an error envelope", "/embeddings", `{"error":{"code":502,"message":"upstream failed"}}`, "b"},
		{"OpenRouter's envelope", "/completions", `{"error":{"code":502,"message":"Provider returned error","metadata":{"provider_name":"x"}},"user_id":"user_1"}`, "b"},
		{"an error as text", "/embeddings", `{"error":"upstream failed"}`, "b"},
		{"a choice's error in a completion", "/completions",
			`{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"","finish_reason":"error","error":{"code":502,"message":"Upstream melted"}}]}`, "b"},
		{"a chat completion, as before", "/chat/completions",
			`{"id":"c1","object":"chat.completion","error":{"code":502,"message":"upstream failed"},"choices":[]}`, "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){
				"a": always(statusFn(200, tc.body)),
				"b": always(statusFn(200, `{"id":"b1","object":"chat.completion","model":"from b","choices":[{"index":0,"message":{"role":"assistant","content":"b"},"finish_reason":"stop"}]}`)),
			}, []string{"a", "b"}, nil)
			req := &Request{Model: "gpt", Method: "GET", Path: tc.path}
			if tc.path == "/chat/completions" {
				req.Method, req.Body = "POST", chatBody(false)
			}
			resp, err := e.r.Open(t.Context(), req)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer resp.Close()
			if resp.Provider != tc.wantFrom {
				t.Fatalf("answered by %s; want %s", resp.Provider, tc.wantFrom)
			}
			if tc.wantFrom != "a" {
				return
			}
			if string(resp.Body) != tc.body {
				t.Errorf("body %s; want a's as sent", resp.Body)
			}
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != [2]int{1, 0} {
				t.Errorf("providers saw a=%d b=%d; want a once, b never", h[0], h[1])
			}
		})
	}
}

// TestHTMLPageIsNoAnswer: a 2xx text/html answer (a CDN's browser
// challenge, a web app's index.html where the base_url points at a
// site) was piped to the bot as the answer on a forwarded path, and the
// provider's breaker counted it a success. No OpenAI endpoint answers
// HTML: on every path such a page is a malformed answer, asked once more
// and then the next target, as it already was for a chat completion. But
// a stored file's content (GET …/content: a file, a code interpreter
// container's output) is whatever was stored, an HTML file too, which its
// provider may well label text/html: refused, it could never be
// downloaded, and each try counted against the provider's breaker.
func TestHTMLPageIsNoAnswer(t *testing.T) {
	t.Parallel()
	const page = "<!doctype html><html><body>Checking your browser\u2026</body></html>"
	tests := []struct {
		name, method, path, body, contentType string
		download                              bool // the page is the answer: a's, piped as sent
	}{
		{name: "embeddings", method: "POST", path: "/embeddings", body: `{"model":"gpt","input":"hi"}`, contentType: "text/html; charset=utf-8"},
		{name: "a file's object", method: "GET", path: "/files/f1", contentType: "text/html"},
		{name: "speech", method: "POST", path: "/audio/speech", body: `{"model":"gpt","input":"hi"}`, contentType: "TEXT/HTML"},
		{name: "a chat completion, as before", method: "POST", path: "/chat/completions", body: string(chatBody(false)), contentType: "text/html"},
		{name: "a file's content", method: "GET", path: "/files/f1/content", contentType: "text/html", download: true},
		{name: "a container file's content", method: "GET", path: "/containers/cntr_1/files/cfile_1/content?x=1", contentType: "text/html; charset=utf-8", download: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){
				"a": always(statusFn(200, page, "Content-Type: "+tc.contentType)),
			}, []string{"a", "b"}, nil)
			resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: tc.method, Path: tc.path, Body: []byte(tc.body)})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer resp.Close()
			if tc.download {
				body, err := io.ReadAll(resp)
				if resp.Provider != "a" || len(resp.Tried) != 1 || err != nil || string(body) != page {
					t.Errorf("answered by %s after %+v: %q (%v); want a's file as sent", resp.Provider, resp.Tried, body, err)
				}
				return
			}
			if resp.Provider != "b" {
				t.Fatalf("answered by %s; want b", resp.Provider)
			}
			if len(resp.Tried) != 3 || resp.Tried[0].Cause != CauseMalformed || resp.Tried[1].Cause != CauseMalformed {
				t.Errorf("attempts %+v; want a's page malformed twice, then b", resp.Tried)
			}
		})
	}
}

// TestStoredJSONFileIsTheAnswer: a stored file's content (GET …/content)
// is whatever was stored, and a provider that labels a file by its type
// answers a .json file as application/json: a code interpreter's exported
// table (a top-level array), a JSON Lines file, a stored log whose object
// has an "error" member. Read as an API answer, the array and the lines
// were "not a JSON object", asked twice and then of the next target (a
// 502 for a file only a's account holds), each try held against a's
// breaker; the log was taken for a 2xx error envelope. Such a file is
// piped as sent, as an HTML file already was.
func TestStoredJSONFileIsTheAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, path, file string }{
		{"a table exported as an array", "/files/f1/content", `[{"sku":"A1","qty":2},{"sku":"B7","qty":1}]`},
		{"JSON Lines", "/files/f1/content", "{\"custom_id\":\"r1\"}\n{\"custom_id\":\"r2\"}\n"},
		{"a stored log with an error member", "/containers/cntr_1/files/cfile_1/content", `{"error":{"message":"quota exceeded","type":"insufficient_quota"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){
				"a": always(statusFn(200, tc.file, "Content-Type: application/json")),
			}, []string{"a", "b"}, nil)
			resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: "GET", Path: tc.path})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer resp.Close()
			if !resp.Piped() {
				t.Fatalf("answered by %s after %+v, not piped; want a's file piped as sent", resp.Provider, resp.Tried)
			}
			body, err := io.ReadAll(resp)
			if resp.Provider != "a" || len(resp.Tried) != 1 || err != nil || string(body) != tc.file {
				t.Errorf("answered by %s after %+v: %q (%v); want a's file as sent", resp.Provider, resp.Tried, body, err)
			}
		})
	}
}

// TestForwardedStreamFirstEvent: a forwarded call's event stream (a
// streamed Responses call, a legacy completion) was piped at its head, so
// an error as its first event (a rate limit, a Responses "error" event or
// response.failed) reached the bot as a 200 stream instead of failing
// over as SPEC 5 says, and first_token did not bound the wait for it.
// Such a stream is now held until its first data event, classified as a
// chat stream's first event is, and only then piped: the bytes held (its
// comments, names and line ends too) and the rest, exactly as they came.
// The first event's wait counts from the head, not the attempt's start:
// a head that came after first_token (its wait is the total timeout) was
// failed at once as a first-token timeout, and the call sent to the next
// target, billed twice.
func TestForwardedStreamFirstEvent(t *testing.T) {
	t.Parallel()
	const (
		created   = `{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","error":null,"usage":null}}`
		completed = `{"type":"response.completed","sequence_number":1,"response":{"id":"resp_1","object":"response","status":"completed","error":null,"usage":{"input_tokens":3,"output_tokens":2}}}`
	)
	// raw is a healthy stream as a provider may write it: a comment, event
	// names, CRLF line ends, the first event split across writes.
	raw := []string{": OPENROUTER PROCESSING\r\n\r\n", "event: response.created\r\ndata: " + created[:40], created[40:] + "\r\n\r\n",
		"event: response.completed\r\ndata: " + completed + "\r\n\r\n"}
	bigEvent := "data: {\"type\":\"image_generation.partial_image\",\"b64_json\":\"" + strings.Repeat("A", maxHeld+1) + "\"}\n\n"
	events := func(evs ...string) func(c *fconn) {
		return func(c *fconn) {
			c.sse()
			for _, ev := range evs {
				c.chunk(ev)
			}
			c.end()
		}
	}
	tests := []struct {
		name      string
		a         func(c *fconn)
		wantFrom  string
		wantBody  string // a's answer as the caller reads it
		wantCause string // a's first attempt's
		wantHitsA int
		minTook   time.Duration
		slowFirst bool // a megabyte takes a while under -race: first_token is not what is tested
	}{
		{name: "an error object as the first event: a rate limit",
			a:        events(`data: {"error":{"message":"Rate limit reached","type":"rate_limit_error","code":"rate_limit_exceeded"}}` + "\n\n"),
			wantFrom: "b", wantCause: CauseRateLimited, wantHitsA: 2},
		{name: "a Responses error event",
			a:        events("event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"The server had an error\",\"param\":null,\"sequence_number\":0}\n\n"),
			wantFrom: "b", wantCause: CauseServerError, wantHitsA: 2},
		// An event named "error" is an error whatever its data: plain
		// words, or none (no keep-alive, as blankData says).
		{name: "an error event in plain words", a: events("event: error\ndata: Internal Server Error\n\n"),
			wantFrom: "b", wantCause: CauseServerError, wantHitsA: 2},
		{name: "an error event without data", a: events("event: error\ndata:\n\n"),
			wantFrom: "b", wantCause: CauseServerError, wantHitsA: 2},
		{name: "response.failed as the first event",
			a:        events("event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":\"failed\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\"}}}\n\n"),
			wantFrom: "b", wantCause: CauseRateLimited, wantHitsA: 2},
		{name: "response.failed without a code",
			a:        events("event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"resp_1\",\"status\":\"failed\",\"error\":null}}\n\n"),
			wantFrom: "b", wantCause: CauseServerError, wantHitsA: 2},
		{name: "[DONE] as the first event", a: events("data: [DONE]\n\n"), wantFrom: "b", wantCause: CauseEmptyStream, wantHitsA: 2},
		// An error written without "data:" after the event stream's head
		// (see bareError).
		{name: "a bare error object as the body",
			a:        events(`{"error":{"message":"Rate limit reached","type":"rate_limit_error","code":"rate_limit_exceeded"}}` + "\n"),
			wantFrom: "b", wantCause: CauseRateLimited, wantHitsA: 2},
		// An event with empty data is a keep-alive, as a comment is: the
		// first event is the one after it.
		{name: "an error object after empty-data keep-alives",
			a:        events("data:\n\n", "data: \n\n", `data: {"error":{"message":"Rate limit reached","type":"rate_limit_error","code":"rate_limit_exceeded"}}`+"\n\n"),
			wantFrom: "b", wantCause: CauseRateLimited, wantHitsA: 2},
		{name: "the stream ends before any event", a: events(": keep-alive\n\n"), wantFrom: "b", wantCause: CauseConnectionLost, wantHitsA: 2},
		// The connection closed without the chunked terminator (the
		// client reads io.ErrUnexpectedEOF) inside the first event, or
		// before its blank line: the provider had not answered, and the
		// caller has nothing yet. The cut line was piped to the caller as
		// the stream's first event, and the stream then aborted.
		{name: "the connection cut inside the first event's data line", a: func(c *fconn) {
			c.sse()
			c.chunk("event: response.created\ndata: " + created[:40])
			c.cut()
		}, wantFrom: "b", wantCause: CauseConnectionLost, wantHitsA: 2},
		{name: "the connection cut before the first event's blank line", a: func(c *fconn) {
			c.sse()
			c.chunk("event: response.created\ndata: " + created + "\n")
			c.cut()
		}, wantFrom: "b", wantCause: CauseConnectionLost, wantHitsA: 2},
		// An error written whole before such a cut still says why.
		{name: "an error object as the first event, then the connection cut", a: func(c *fconn) {
			c.sse()
			c.chunk(`data: {"error":{"message":"Rate limit reached","type":"rate_limit_error","code":"rate_limit_exceeded"}}` + "\n")
			c.cut()
		}, wantFrom: "b", wantCause: CauseRateLimited, wantHitsA: 2},
		{name: "no first event before first_token", a: func(c *fconn) {
			c.sse()
			c.comment("OPENROUTER PROCESSING")
			c.pause(10 * tFirstToken)
			c.chunk("data: " + created + "\n\n")
			c.end()
		}, wantFrom: "b", wantCause: CauseFirstTokenTimeout, wantHitsA: 1, minTook: tFirstToken},
		{name: "a healthy stream, its bytes exact", a: events(raw...), wantFrom: "a", wantBody: strings.Join(raw, "")},
		// A forwarded call's head may come late (a large upload, a queue:
		// its wait is timeouts.total): first_token counts from the head.
		{name: "a head after first_token, its first event soon after", a: func(c *fconn) {
			c.pause(2 * tFirstToken)
			events(raw...)(c)
		}, wantFrom: "a", wantBody: strings.Join(raw, "")},
		{name: "a late head, then no first event within first_token of it", a: func(c *fconn) {
			c.pause(2 * tFirstToken)
			c.sse()
			c.pause(10 * tFirstToken)
			c.end()
		}, wantFrom: "b", wantCause: CauseFirstTokenTimeout, wantHitsA: 1, minTook: 3 * tFirstToken},
		{name: "a gzip-coded stream, decoded", a: func(c *fconn) {
			c.sse("Content-Encoding: gzip")
			c.chunk(encode(t, "gzip", strings.Join(raw, "")))
			c.end()
		}, wantFrom: "a", wantBody: strings.Join(raw, "")},
		{name: "a first event larger than what is held is piped unread", a: events(bigEvent, "data: "+completed+"\n\n"),
			slowFirst: true, wantFrom: "a", wantBody: bigEvent + "data: " + completed + "\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": always(tc.a)}, []string{"a", "b"}, func(c *config.Config) {
				if tc.slowFirst {
					c.Providers[0].Timeouts.FirstToken = config.Duration(tTotal)
				}
			})
			start := time.Now()
			resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/responses", ContentType: "application/json",
				Body: []byte(`{"model":"gpt","input":"hi","stream":true}`)})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer resp.Close()
			took := time.Since(start)
			if resp.Provider != tc.wantFrom || !resp.Piped() {
				t.Fatalf("answered by %s, piped %v (attempts %+v); want %s, piped", resp.Provider, resp.Piped(), resp.Tried, tc.wantFrom)
			}
			if n := len(e.fakes["a"].hits()); n != tc.wantHitsA && tc.wantFrom == "b" {
				t.Errorf("a saw %d requests; want %d", n, tc.wantHitsA)
			}
			if tc.wantCause != "" && resp.Tried[0].Cause != tc.wantCause {
				t.Errorf("a's attempt failed with %q; want %q", resp.Tried[0].Cause, tc.wantCause)
			}
			if took < tc.minTook || tc.minTook > 0 && took > tc.minTook+slack {
				t.Errorf("the round took %v; want about %v", took, tc.minTook)
			}
			body, err := io.ReadAll(resp)
			if err != nil {
				t.Fatalf("reading the body: %v", err)
			}
			if tc.wantFrom != "a" {
				return
			}
			if string(body) != tc.wantBody {
				t.Errorf("body %d bytes %.200q; want %d bytes %.200q", len(body), body, len(tc.wantBody), tc.wantBody)
			}
			if ce := resp.Header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding %q on a decoded body", ce)
			}
		})
	}
}

// TestPipedBodyArrivesAsSent: a piped body reaches the caller as the
// provider sends it (speech played while it is spoken), not when it ends.
// The provider sends the rest only once the caller has read the first part.
func TestPipedBodyArrivesAsSent(t *testing.T) {
	t.Parallel()
	firstRead := make(chan struct{})
	e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, _ int) {
		_, _ = io.WriteString(c.c, "HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
		c.chunk("first part;")
		<-firstRead
		c.chunk("second part")
		c.end()
	}}, []string{"a"}, nil)
	resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/audio/speech", Body: []byte(`{"model":"gpt","input":"hi"}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	buf := make([]byte, 64)
	n, err := resp.Read(buf)
	if err != nil || string(buf[:n]) != "first part;" {
		t.Fatalf("first Read: %q, %v; want the first part", buf[:n], err)
	}
	close(firstRead)
	rest, err := io.ReadAll(resp)
	if err != nil || string(rest) != "second part" {
		t.Fatalf("rest: %q, %v; want the second part", rest, err)
	}
}

// TestPipedBodyEnd: once a passthrough answer's head is handed over,
// nothing fails over any more, so how its body ends is the only word on
// the provider's health. A body the provider cuts (or stalls past the idle
// timeout) ends Read with a *StreamError naming the cause, never with
// io.EOF, which would pass a truncated file off as whole. Such a cut used
// to be counted nowhere, so a provider that cut every download never
// tripped its breaker and showed in no metric: it now counts as a stream
// cut after its first token does, a breaker failure and an end in
// paygate_upstream_stream_ends_total under its cause. A whole body is a
// success. The caller's cancellation, and a Close before the end (the
// bot left, or stopped reading and its write timed out), are not the
// provider's doing: neutral.
func TestPipedBodyEnd(t *testing.T) {
	t.Parallel()
	const head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
	tests := []struct {
		name   string
		script func(c *fconn)
		// caller ends the read early: "cancel" its context after the first
		// part, or "close" the Response then.
		caller      string
		wantCause   string // "": the body whole
		wantOutcome string
		wantBreaker string
	}{
		{name: "whole", script: func(c *fconn) {
			_, _ = io.WriteString(c.c, head+"Content-Length: 10\r\n\r\nfirst part")
		}, wantOutcome: "complete", wantBreaker: "closed"},
		{name: "connection cut", script: func(c *fconn) {
			_, _ = io.WriteString(c.c, head+"Content-Length: 100\r\n\r\nfirst part")
			c.cut()
		}, wantCause: CauseConnectionLost, wantOutcome: CauseConnectionLost, wantBreaker: "open"},
		{name: "chunked body cut", script: func(c *fconn) {
			_, _ = io.WriteString(c.c, head+"Transfer-Encoding: chunked\r\n\r\n")
			c.chunk("first part")
			c.cut()
		}, wantCause: CauseConnectionLost, wantOutcome: CauseConnectionLost, wantBreaker: "open"},
		{name: "stalled past the idle timeout", script: func(c *fconn) {
			_, _ = io.WriteString(c.c, head+"Content-Length: 100\r\n\r\nfirst part")
			c.hang()
		}, wantCause: CauseIdleTimeout, wantOutcome: CauseIdleTimeout, wantBreaker: "open"},
		{name: "the caller cancels", script: func(c *fconn) {
			_, _ = io.WriteString(c.c, head+"Content-Length: 100\r\n\r\nfirst part")
			c.hang()
		}, caller: "cancel", wantCause: CauseCanceled, wantOutcome: CauseCanceled, wantBreaker: "closed"},
		{name: "the caller closes early", script: func(c *fconn) {
			_, _ = io.WriteString(c.c, head+"Content-Length: 100\r\n\r\nfirst part")
			c.hang()
		}, caller: "close", wantOutcome: "closed_early", wantBreaker: "closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": always(tc.script)}, []string{"a", "b"}, func(c *config.Config) {
				c.Failover.Breaker = config.Breaker{Failures: 1, Cooldown: config.Duration(time.Hour)}
			})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			resp, err := e.r.Open(ctx, &Request{Model: "gpt", Method: "GET", Path: "/files/f1/content"})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			first := make([]byte, len("first part"))
			if _, err := io.ReadFull(resp, first); err != nil || string(first) != "first part" {
				t.Fatalf("first part %q, %v", first, err)
			}
			var end error
			switch tc.caller {
			case "cancel":
				cancel()
				_, end = io.ReadAll(resp)
			case "close":
			default:
				var rest []byte
				rest, end = io.ReadAll(resp)
				if len(rest) != 0 {
					t.Errorf("%q after the first part; want nothing", rest)
				}
			}
			resp.Close()
			var se *StreamError
			switch {
			case tc.caller == "close":
			case tc.wantCause == "" && end != nil:
				t.Errorf("body ended with %v; want it whole", end)
			case tc.wantCause != "" && (!errors.As(end, &se) || se.Cause != tc.wantCause || se.Provider != "a"):
				t.Errorf("body ended with %v; want a *StreamError from a with cause %s", end, tc.wantCause)
			}
			if n := len(e.fakes["b"].hits()); n != 0 {
				t.Errorf("b saw %d requests; want none after the head", n)
			}
			if st := statusOf(e.r, "a"); st.Breaker != tc.wantBreaker {
				t.Errorf("a's breaker %s after the body's end; want %s", st.Breaker, tc.wantBreaker)
			}
			if n := testutil.ToFloat64(e.r.m.streams.WithLabelValues("a", tc.wantOutcome)); n != 1 {
				t.Errorf("%v ends of a's answers counted as %q; want 1", n, tc.wantOutcome)
			}
		})
	}
}

// TestProviderCuttingEveryDownloadIsPassedOver: a provider that resets
// every download after its head used to get every download, each one cut,
// though another target served the file: a piped body's cut counted
// nowhere, so the breaker never opened. Cuts now count as breaker
// failures, and once the breaker opens the downloads go to b, whole.
func TestProviderCuttingEveryDownloadIsPassedOver(t *testing.T) {
	t.Parallel()
	cutter := func(c *fconn, _ int) {
		_, _ = io.WriteString(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\npartial")
		c.reset()
	}
	const failures = 3
	e := newEnv(t, map[string]func(*fconn, int){
		"a": cutter,
		"b": always(statusFn(200, "the whole file", "Content-Type: application/octet-stream")),
	}, []string{"a", "b"}, func(c *config.Config) {
		c.Failover.Breaker = config.Breaker{Failures: failures, Cooldown: config.Duration(time.Hour)}
	})
	for i := range failures + 3 {
		got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "GET", Path: "/files/f1/content"})
		if got.openErr != nil {
			t.Fatalf("download %d: %v", i, got.openErr)
		}
		want := "a"
		if i >= failures {
			want = "b"
		}
		if got.provider != want || got.complete() != (want == "b") {
			t.Errorf("download %d from %s, whole %v (%v); want it from %s", i, got.provider, got.complete(), got.end, want)
		}
	}
}

// TestJSONAnswerOverLimit: a non-stream chat completion, and a JSON
// passthrough answer (embeddings, a file's object), is read whole before
// Open returns, capped at MaxResponseBytes and MaxJSONResponseBytes
// respectively. An answer over its cap used to be a malformed one: asked
// again, then of the next target, each attempt billed and counted against
// the breaker. The size is the request's doing, not the provider's: the
// round ends at once with 502 upstream_response_too_large, naming the cap
// of the answer's path, and the breaker does not count it. A JSON answer
// between the two caps is served: only a chat completion can be streamed
// instead (TestLargestEmbeddingsBatchIsServed).
func TestJSONAnswerOverLimit(t *testing.T) {
	t.Parallel()
	const jsonMax = 4 * testMaxResponse
	chat := `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		strings.Repeat("x", 2*testMaxResponse) + `"},"finish_reason":"stop"}]}`
	embeddings := func(n int) string {
		return `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[` +
			strings.TrimSuffix(strings.Repeat("0.0123,", n/len("0.0123,")), ",") + `]}]}`
	}
	embeddingsReq := &Request{Model: "gpt", Path: "/embeddings", Body: []byte(`{"model":"gpt","input":"hi"}`), ContentType: "application/json"}
	tests := []struct {
		name        string
		req         *Request
		body        string
		limit       int64  // the cap named; 0: the answer is served
		wantMessage string // what the message tells the client to do
	}{
		{"chat completion over MaxResponseBytes", &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"},
			chat, testMaxResponse, "stream it"},
		{"embeddings over MaxJSONResponseBytes", embeddingsReq, embeddings(2 * jsonMax), jsonMax, "JSON answer"},
		{"embeddings over MaxResponseBytes, within MaxJSONResponseBytes", embeddingsReq, embeddings(2 * testMaxResponse), 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const rounds = 3
			e := newEnv(t, map[string]func(*fconn, int){"a": always(statusFn(200, tc.body))}, []string{"a", "b"}, func(c *config.Config) {
				c.Failover.Breaker = config.Breaker{Failures: rounds - 1, Cooldown: config.Duration(time.Hour)}
			})
			setTestLimits(e.r, jsonMax)
			for i := range rounds {
				got := e.openReq(t.Context(), tc.req)
				if tc.limit == 0 {
					if got.openErr != nil || got.provider != "a" || got.body != tc.body {
						t.Fatalf("round %d: %v, %d bytes from %q; want a's %d bytes", i, got.openErr, len(got.body), got.provider, len(tc.body))
					}
					continue
				}
				var ue *UpstreamError
				if !errors.As(got.openErr, &ue) || ue.Status != 502 || ue.Code != CauseResponseTooLarge || ue.Attempts != 1 {
					t.Fatalf("round %d: %v; want 502 %s after one attempt", i, got.openErr, CauseResponseTooLarge)
				}
				if want := fmt.Sprint(tc.limit); !strings.Contains(ue.Message, want) || !strings.Contains(ue.Message, tc.wantMessage) {
					t.Errorf("message %q; want it to name the limit, %s bytes, and say %q", ue.Message, want, tc.wantMessage)
				}
			}
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != [2]int{rounds, 0} {
				t.Errorf("providers saw a=%d b=%d; want a once per round, b never", h[0], h[1])
			}
			if st := statusOf(e.r, "a"); st.Breaker != "closed" {
				t.Errorf("a's breaker %s after %d large answers; want closed", st.Breaker, rounds)
			}
		})
	}
}

// TestLargestEmbeddingsBatchIsServed: e3d66dd read every JSON passthrough
// answer whole, capped at the chat completion's 32 MiB. The largest batch
// OpenAI serves, 2048 inputs to text-embedding-3-large (3072 float32 each)
// in the SDKs' default base64 encoding, answers about 33.7 MB: it became a
// 502 upstream_response_too_large, retried nowhere, for an answer the
// provider had billed (with encoding_format "float", about 63 MB, the bound
// was some 550 inputs). The default MaxJSONResponseBytes, 128 MiB, holds
// either. The Router's defaults are the ones tested; the answer is written
// and compared without copies, the test's memory about twice its size.
func TestLargestEmbeddingsBatchIsServed(t *testing.T) {
	const inputs, vec = 2048, 16384 // base64 of 3072 float32
	answer := make([]byte, 0, inputs*(vec+64)+128)
	answer = append(answer, `{"object":"list","data":[`...)
	for i := range inputs {
		if i > 0 {
			answer = append(answer, ',')
		}
		answer = fmt.Appendf(answer, `{"object":"embedding","index":%d,"embedding":"`, i)
		for range vec / 4 {
			answer = append(answer, "AAAA"...)
		}
		answer = append(answer, `"}`...)
	}
	answer = append(answer, `],"model":"text-embedding-3-large","usage":{"prompt_tokens":4096,"total_tokens":4096}}`...)
	e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, _ int) {
		_, _ = fmt.Fprintf(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(answer))
		_, _ = c.c.Write(answer)
	}}, []string{"a", "b"}, func(cfg *config.Config) {
		// 33 MB under -race on two busy cores: a gap between two reads can
		// pass the suite's 300 ms idle limit, and this test is about the
		// size caps, not timeouts.
		for i := range cfg.Providers {
			cfg.Providers[i].Timeouts.Idle = config.Duration(30 * time.Second)
			cfg.Providers[i].Timeouts.Total = config.Duration(60 * time.Second)
		}
	})
	if int64(len(answer)) <= e.r.opts.MaxResponseBytes || int64(len(answer)) > e.r.opts.MaxJSONResponseBytes {
		t.Fatalf("the answer's %d bytes are not between the default caps, %d and %d", len(answer), e.r.opts.MaxResponseBytes, e.r.opts.MaxJSONResponseBytes)
	}
	resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/embeddings", ContentType: "application/json",
		Body: []byte(`{"model":"gpt","input":["hi"],"encoding_format":"base64"}`)})
	if err != nil {
		t.Fatalf("a %d-byte embeddings answer (%d inputs, 3072 dimensions, base64): %v", len(answer), inputs, err)
	}
	defer resp.Close()
	if resp.Provider != "a" || resp.Piped() || !bytes.Equal(resp.Body, answer) {
		t.Fatalf("answered by %s, piped %v, %d bytes; want a's %d bytes, read whole", resp.Provider, resp.Piped(), len(resp.Body), len(answer))
	}
}

// TestJSONAnswerContentEncoding: paygate asks no provider for an encoding,
// yet a provider's server or CDN may gzip an answer all the same. A JSON
// answer is read whole (an error object fails over; the proxy drops a
// forged "paygate" member), so its bytes must be read as what they
// encode: gzip and deflate (zlib, or raw DEFLATE as many servers send it)
// are decoded, the limit bounding the decoded
// size (a small gzip of a huge answer is still too large), and Body is the
// content, its Content-Encoding gone from Header. A coding paygate does not
// decode, or bytes that are not what their coding says, make a malformed
// answer, which the next target replaces. A piped answer is never decoded:
// its bytes go on with their Content-Encoding (the proxy's test).
func TestJSONAnswerContentEncoding(t *testing.T) {
	t.Parallel()
	const answer = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}]}`
	gz := func(s string) string { return encode(t, "gzip", s) }
	huge := `{"object":"list","data":[],"pad":"` + strings.Repeat(" ", 8*testMaxResponse) + `"}`
	tests := []struct {
		name     string
		body     string
		encoding string
		wantFrom string // "b": a's answer was refused
		wantCode string // the round's error
	}{
		{"gzip", gz(answer), "gzip", "a", ""},
		{"x-gzip", gz(answer), "x-gzip", "a", ""},
		{"deflate", encode(t, "deflate", answer), "deflate", "a", ""},
		{"deflate sent raw, without the zlib wrapper", encode(t, "raw deflate", answer), "deflate", "a", ""},
		{"deflate of an answer over the limit", encode(t, "raw deflate", huge), "deflate", "", CauseResponseTooLarge},
		{"deflate cut short", encode(t, "raw deflate", answer)[:20], "deflate", "b", ""},
		{"deflate of one byte", "x", "deflate", "b", ""},
		{"identity", answer, "identity", "a", ""},
		{"gzip of an answer over the limit", gz(huge), "gzip", "", CauseResponseTooLarge},
		{"a coding paygate does not decode", answer, "br", "b", ""},
		{"not gzip at all", answer, "gzip", "b", ""},
		{"gzip cut short", gz(answer)[:20], "gzip", "b", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){
				"a": always(statusFn(200, tc.body, "Content-Encoding: "+tc.encoding)),
				"b": always(statusFn(200, `{"object":"list","data":[],"model":"from b"}`)),
			}, []string{"a", "b"}, nil)
			setTestLimits(e.r, 0)
			resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/embeddings", Body: []byte(`{"model":"gpt","input":"hi"}`)})
			if tc.wantCode != "" {
				var ue *UpstreamError
				if !errors.As(err, &ue) || ue.Code != tc.wantCode || len(e.fakes["b"].hits()) != 0 {
					t.Fatalf("Open: %v; want %s, b never asked", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer resp.Close()
			if resp.Provider != tc.wantFrom || resp.Piped() {
				t.Fatalf("answered by %s, piped %v; want %s, read whole", resp.Provider, resp.Piped(), tc.wantFrom)
			}
			if tc.wantFrom != "a" {
				return
			}
			if string(resp.Body) != answer || resp.Header.Get("Content-Encoding") != "" && tc.encoding != "identity" {
				t.Errorf("Body %q, Content-Encoding %q; want the decoded answer and no coding", resp.Body, resp.Header.Get("Content-Encoding"))
			}
		})
	}
}
