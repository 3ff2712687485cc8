package failover

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is the Router's clock in tests: Sleep advances it at once, so
// waits of seconds cost nothing and their lengths are exact.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	return nil
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// seen is one request as a fake provider received it.
type seen struct {
	at     time.Time // on the fake clock
	header http.Header
	path   string
	body   string
}

// fakeProvider is an upstream that speaks HTTP/1.1 by hand on a raw
// listener, so a script can fail the way real providers fail at the TCP
// level: reset before headers, cut a body, stay silent, stall a token.
type fakeProvider struct {
	t      testing.TB
	ln     net.Listener
	clock  *fakeClock
	script func(c *fconn, n int) // n: 0-based index of the request
	url    string

	mu       sync.Mutex
	reqs     []seen
	conns    map[net.Conn]bool
	accepted int
	wg       sync.WaitGroup
}

func newFakeProvider(t testing.TB, clock *fakeClock, script func(c *fconn, n int)) *fakeProvider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeProvider{t: t, ln: ln, clock: clock, script: script, url: "http://" + ln.Addr().String() + "/v1", conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *fakeProvider) close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeProvider) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[c] = true
		f.accepted++
		f.mu.Unlock()
		f.wg.Add(1)
		go f.handle(c)
	}
}

func (f *fakeProvider) handle(nc net.Conn) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, nc)
		f.mu.Unlock()
		_ = nc.Close()
	}()
	br := bufio.NewReader(nc)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		var at time.Time
		if f.clock != nil {
			at = f.clock.Now()
		}
		f.mu.Lock()
		n := len(f.reqs)
		f.reqs = append(f.reqs, seen{at: at, header: req.Header, path: req.URL.RequestURI(), body: string(body)})
		f.mu.Unlock()
		c := &fconn{c: nc, br: br, lastBody: string(body)}
		f.script(c, n)
		if c.dead {
			return
		}
	}
}

// hits returns the requests seen so far.
func (f *fakeProvider) hits() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// gaps returns the fake-clock time between consecutive requests.
func (f *fakeProvider) gaps() []time.Duration {
	h := f.hits()
	var out []time.Duration
	for i := 1; i < len(h); i++ {
		out = append(out, h[i].at.Sub(h[i-1].at))
	}
	return out
}

// fconn writes one scripted response on a raw connection.
type fconn struct {
	c        net.Conn
	br       *bufio.Reader
	chunked  bool
	dead     bool
	lastBody string // the request body being answered
}

// status answers with a whole response. extra holds "Key: value" lines.
func (c *fconn) status(code int, body string, extra ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	ct := "application/json"
	for _, h := range extra {
		if strings.HasPrefix(strings.ToLower(h), "content-type:") {
			ct = ""
		}
		b.WriteString(h + "\r\n")
	}
	if ct != "" {
		b.WriteString("Content-Type: " + ct + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	_, _ = io.WriteString(c.c, b.String())
}

// sse starts a chunked text/event-stream response.
func (c *fconn) sse(extra ...string) {
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	_, _ = io.WriteString(c.c, b.String())
	c.chunked = true
}

func (c *fconn) chunk(s string) {
	_, _ = fmt.Fprintf(c.c, "%x\r\n%s\r\n", len(s), s)
}

// event writes one SSE event carrying data.
func (c *fconn) event(data string) { c.chunk("data: " + data + "\n\n") }

// comment writes an SSE comment line.
func (c *fconn) comment(s string) { c.chunk(": " + s + "\n\n") }

// done writes [DONE] and ends the body properly.
func (c *fconn) done() {
	c.event("[DONE]")
	c.end()
}

// end terminates the chunked body; the connection stays reusable.
func (c *fconn) end() { _, _ = io.WriteString(c.c, "0\r\n\r\n") }

// cut closes the connection mid-response (FIN, no terminating chunk).
func (c *fconn) cut() {
	c.dead = true
	_ = c.c.Close()
}

// reset aborts the connection with a TCP RST.
func (c *fconn) reset() {
	c.dead = true
	if tc, ok := c.c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.c.Close()
}

// hang keeps the socket open and silent until the client gives up (or the
// fake shuts down).
func (c *fconn) hang() {
	c.dead = true
	_, _ = io.Copy(io.Discard, c.br)
}

// pause stalls the response for d of real time (a slow model), returning
// early if the client leaves.
func (c *fconn) pause(d time.Duration) {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c.br)
	_ = c.c.SetReadDeadline(time.Time{})
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		c.dead = true // the client closed the connection
	}
}

// Chunks in OpenAI's shape.
func roleChunk() string {
	return `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`
}

func contentChunk(s string) string {
	return `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"` + s + `"},"finish_reason":null}]}`
}

func reasoningChunk(s string) string {
	return `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"reasoning_content":"` + s + `"},"finish_reason":null}]}`
}

func finishChunk() string {
	return `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
}

func usageChunk() string {
	return `{"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`
}

// okStream answers a whole healthy stream whose text is text.
func okStream(c *fconn, text string) {
	c.sse()
	c.event(roleChunk())
	c.event(contentChunk(text))
	c.event(finishChunk())
	c.event(usageChunk())
	c.done()
}

func okJSON(c *fconn, text string) {
	c.status(200, `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`+text+`"},"finish_reason":"stop"}],"usage":{"total_tokens":5}}`)
}

func errBody(typ, code, msg string) string {
	return fmt.Sprintf(`{"error":{"message":%q,"type":%q,"code":%q}}`, msg, typ, code)
}
