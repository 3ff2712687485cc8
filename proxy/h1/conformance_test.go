//go:build linux

package h1

// Differential conformance tests: every case sends the same raw bytes to a
// reference net/http server and to an h1.Server, both running the same
// handler, and compares what a client can observe on the wire: status codes,
// body bytes, message framing (Content-Length value, chunked, or delimited by
// close), Content-Type, whether the server announced that it closes, and
// whether the connection really stays usable for another request.
//
// The Date header and header order are never compared. Responses that the
// server writes on its own (a request it rejects before any handler runs)
// are compared on status and connection closure only: net/http's error body
// text and its header set on those answers are details, not a contract.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// exchangeTimeout bounds every raw exchange (reads and writes), so a
	// server that hangs fails the case instead of hanging the test.
	exchangeTimeout = 5 * time.Second
	// probePath is answered by the test wrapper, never by a case's handler.
	probePath          = "/__conformance_probe"
	probeRequest       = "GET " + probePath + " HTTP/1.1\r\nHost: probe.test\r\n\r\n"
	testMaxHeaderBytes = 4096
)

// confIgnore selects which observations a case does not compare.
type confIgnore uint

const (
	ignoreFraming confIgnore = 1 << iota // Content-Length / Transfer-Encoding
	ignoreBody                           // body bytes and body read error
	ignoreHeaders                        // Content-Type, Connection: close, the case's extra headers
	ignoreClosure                        // whether the connection survives the exchange

	statusOnly = ignoreFraming | ignoreBody | ignoreHeaders

	// serverGenerated is for answers net/http writes itself before any
	// handler runs (400, 431, 501, 505, 417): their body text and headers
	// are details, only the status and the closure are a contract.
	serverGenerated = statusOnly
)

// rawStep writes send (in the background, so a server that stops reading
// cannot block the test) and then reads read responses, interim 1xx
// responses included. method is the request method the responses answer
// (it matters for HEAD).
type rawStep struct {
	send   string
	read   int
	method string
}

type conformanceCase struct {
	name    string
	handler http.HandlerFunc
	steps   []rawStep
	ignore  confIgnore
	// headers are extra response headers whose values are compared.
	headers []string

	// What net/http is assumed to do; checked on the reference server only,
	// so that a case whose premise is wrong is reported as such rather than
	// silently testing something else. Nil / "" means not checked.
	wantStatus []int
	wantState  string // "open" or "closed"

	// check, if set, runs extra assertions on both servers' exchanges.
	check func(t *testing.T, who string, ex *observed)
}

// oneRequest is the common single-request exchange.
func oneRequest(raw string) []rawStep { return []rawStep{{send: raw, read: 1}} }

// respSummary is what a client can observe about one response.
type respSummary struct {
	proto       string
	status      int
	framing     string
	contentType string
	signalClose bool // resp.Close: Connection: close, or HTTP/1.0 without keep-alive
	headers     map[string]string
	body        []byte
	bodyErr     string
	probe       bool
	untilClose  bool
}

func (r respSummary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d framing=%q content-type=%q signals-close=%v", r.proto, r.status, r.framing, r.contentType, r.signalClose)
	keys := make([]string, 0, len(r.headers))
	for k := range r.headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, r.headers[k])
	}
	fmt.Fprintf(&b, " body(%d)=%s", len(r.body), confQuote(r.body, 120))
	if r.bodyErr != "" {
		fmt.Fprintf(&b, " body-error=%q", r.bodyErr)
	}
	return b.String()
}

// observed is everything observed while running one case against one server.
type observed struct {
	resps []respSummary // the probe's answer is not included
	// state after the case's bytes and a probe request were sent:
	// "open" (the probe was answered on the same connection), "closed"
	// (EOF or reset), "timeout", or "error: ..." for an unparsable answer.
	state     string
	raw       []byte // every byte read from the connection
	writeErrs []string
	calls     int64  // how many times the case's handler ran
	fresh     string // "ok" if a new connection is served afterwards
	log       string // the server's ErrorLog output
}

func (ex *observed) statuses() []int {
	s := make([]int, 0, len(ex.resps))
	for _, r := range ex.resps {
		s = append(s, r.status)
	}
	return s
}

func (ex *observed) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  handler calls: %d\n  connection after exchange: %s\n  fresh connection afterwards: %s\n", ex.calls, ex.state, ex.fresh)
	for i, r := range ex.resps {
		fmt.Fprintf(&b, "  response %d: %s\n", i+1, r)
	}
	if len(ex.resps) == 0 {
		b.WriteString("  (no response)\n")
	}
	if len(ex.writeErrs) > 0 {
		fmt.Fprintf(&b, "  write errors: %q\n", ex.writeErrs)
	}
	fmt.Fprintf(&b, "  raw bytes read (%d): %s\n", len(ex.raw), confQuoteHeadTail(ex.raw, 1200, 300))
	if ex.log != "" {
		fmt.Fprintf(&b, "  server log: %s\n", confQuote([]byte(ex.log), 1500))
	}
	return b.String()
}

// confQuoteHeadTail quotes the first head and last tail bytes of b.
func confQuoteHeadTail(b []byte, head, tail int) string {
	if len(b) <= head+tail {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%s...(%d bytes)...%s", strconv.Quote(string(b[:head])), len(b)-head-tail, strconv.Quote(string(b[len(b)-tail:])))
}

func confQuote(b []byte, n int) string {
	if len(b) <= n {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:n])) + fmt.Sprintf("...(+%d bytes)", len(b)-n)
}

// confErrClass maps an error to the class a client can act on.
func confErrClass(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	default:
		return err.Error()
	}
}

// confConnState maps the error that ended reading to the connection state.
func confConnState(err error) string {
	switch c := confErrClass(err); c {
	case "unexpected EOF", "reset":
		return "closed"
	case "timeout":
		return "timeout"
	default:
		return "error: " + c
	}
}

type confRecordingConn struct {
	net.Conn
	mu  sync.Mutex
	raw bytes.Buffer
}

func (c *confRecordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.raw.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *confRecordingConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.raw.Bytes())
}

// readRawResponse reads one response and its whole body.
func readRawResponse(br *bufio.Reader, method string, extra []string) (respSummary, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return respSummary{}, err
	}
	s := respSummary{
		proto:       resp.Proto,
		status:      resp.StatusCode,
		contentType: strings.Join(resp.Header.Values("Content-Type"), " | "),
		signalClose: resp.Close,
		probe:       resp.Header.Get("X-Probe") == "1",
	}
	bodyless := resp.StatusCode/100 == 1 || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || method == http.MethodHead
	switch {
	case len(resp.TransferEncoding) > 0:
		s.framing = "transfer-encoding: " + strings.Join(resp.TransferEncoding, ", ")
	case len(resp.Header.Values("Content-Length")) > 0:
		s.framing = "content-length: " + strings.Join(resp.Header.Values("Content-Length"), ", ")
	case bodyless:
		s.framing = "none"
	default:
		s.framing = "until close"
		s.untilClose = true
	}
	if len(extra) > 0 {
		s.headers = make(map[string]string)
		for _, k := range extra {
			if v, ok := resp.Header[http.CanonicalHeaderKey(k)]; ok {
				s.headers[k] = strings.Join(v, " | ")
			} else {
				s.headers[k] = "<absent>"
			}
		}
	}
	s.body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		s.bodyErr = confErrClass(err)
		return s, err
	}
	return s, nil
}

// runExchange plays c's steps against addr, then sends a probe request on
// the same connection to learn whether it is still usable.
func runExchange(t *testing.T, addr string, c *conformanceCase) *observed {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	conn.SetDeadline(time.Now().Add(exchangeTimeout))
	rc := &confRecordingConn{Conn: conn}
	br := bufio.NewReader(rc)
	ex := &observed{}

	var (
		wg        sync.WaitGroup
		errMu     sync.Mutex
		writeErrs []string
		lastWrite = make(chan struct{})
	)
	close(lastWrite)
	send := func(s string) {
		prev := lastWrite
		done := make(chan struct{})
		lastWrite = done
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			<-prev // keep writes in order without blocking the reader
			if _, err := io.WriteString(conn, s); err != nil {
				errMu.Lock()
				writeErrs = append(writeErrs, confErrClass(err))
				errMu.Unlock()
			}
		}()
	}
	finish := func(state string) *observed {
		ex.state = state
		conn.Close()
		wg.Wait()
		ex.raw = rc.bytes()
		ex.writeErrs = writeErrs
		return ex
	}

	for _, st := range c.steps {
		send(st.send)
		method := st.method
		if method == "" {
			method = http.MethodGet
		}
		for range st.read {
			r, err := readRawResponse(br, method, c.headers)
			if r.status != 0 {
				ex.resps = append(ex.resps, r)
			}
			if err != nil {
				return finish(confConnState(err))
			}
			if r.untilClose {
				return finish("closed")
			}
		}
	}

	send(probeRequest)
	for {
		r, err := readRawResponse(br, http.MethodGet, c.headers)
		if r.probe && err == nil {
			return finish("open")
		}
		if r.status != 0 {
			ex.resps = append(ex.resps, r)
		}
		if err != nil {
			return finish(confConnState(err))
		}
		if r.untilClose {
			return finish("closed")
		}
		if len(ex.resps) > 16 {
			return finish("error: more than 16 responses")
		}
	}
}

// probeFresh checks that the server still answers on a new connection.
func probeFresh(addr string) string {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(exchangeTimeout))
	if _, err := io.WriteString(conn, probeRequest); err != nil {
		return "write: " + err.Error()
	}
	r, err := readRawResponse(bufio.NewReader(conn), http.MethodGet, nil)
	if err != nil {
		return "read: " + err.Error()
	}
	if !r.probe || r.status != 200 || string(r.body) != "probe" {
		return "unexpected answer: " + r.String()
	}
	return "ok"
}

type confLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *confLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *confLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type confServable interface {
	Serve(net.Listener) error
	Close() error
}

type confServer struct {
	name  string
	addr  string
	calls *atomic.Int64
	log   *confLogBuffer
}

// withProbe answers probePath itself and counts the case handler's calls.
func withProbe(h http.Handler, calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == probePath {
			w.Header().Set("X-Probe", "1")
			io.WriteString(w, "probe")
			return
		}
		calls.Add(1)
		h.ServeHTTP(w, r)
	})
}

// startConfServer runs srv (built by mk from the wrapped handler and an error
// log) on a loopback listener until the test ends, then closes it and
// checks that Serve returns http.ErrServerClosed.
func startConfServer(t *testing.T, name string, h http.Handler, mk func(http.Handler, *log.Logger) confServable) *confServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts := &confServer{name: name, addr: ln.Addr().String(), calls: new(atomic.Int64), log: new(confLogBuffer)}
	srv := mk(withProbe(h, ts.calls), log.New(ts.log, "", 0))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("%s: Serve returned %v after Close, want http.ErrServerClosed", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Serve did not return within 10s of Close", name)
		}
	})
	return ts
}

func startNetHTTP(t *testing.T, h http.Handler) *confServer {
	return startConfServer(t, "net/http", h, func(h http.Handler, l *log.Logger) confServable {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    testMaxHeaderBytes,
			ErrorLog:          l,
		}
	})
}

func startH1(t *testing.T, h http.Handler) *confServer {
	return startConfServer(t, "h1", h, func(h http.Handler, l *log.Logger) confServable {
		return &Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    testMaxHeaderBytes,
			ErrorLog:          l,
		}
	})
}

// ---- handlers ----

func handlerWriting(s string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s) }
}

// echoBody answers with the request body; a body read error gives a 400.
func echoBody(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body read error", http.StatusBadRequest)
		return
	}
	w.Write(b)
}

// dumpRequest answers with what the handler sees of the parsed request,
// so that request parsing is compared too.
func dumpRequest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	fmt.Fprintf(w, "method=%s requestURI=%q url=%q host=%q proto=%s %d.%d\n", r.Method, r.RequestURI, r.URL.String(), r.Host, r.Proto, r.ProtoMajor, r.ProtoMinor)
	fmt.Fprintf(w, "contentLength=%d transferEncoding=%q close=%v tls=%v\n", r.ContentLength, r.TransferEncoding, r.Close, r.TLS != nil)
	fmt.Fprintf(w, "body=%q bodyErr=%v\n", body, err)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "header %s=%q\n", k, r.Header[k])
	}
	tkeys := make([]string, 0, len(r.Trailer))
	for k := range r.Trailer {
		tkeys = append(tkeys, k)
	}
	sort.Strings(tkeys)
	for _, k := range tkeys {
		fmt.Fprintf(w, "trailer %s=%q\n", k, r.Trailer[k])
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	fmt.Fprintf(w, "remoteIP=%s\n", host)
}

func flushOrPanic(w http.ResponseWriter) {
	if err := http.NewResponseController(w).Flush(); err != nil {
		panic(fmt.Sprintf("Flush: %v", err))
	}
}

// patternBytes returns n deterministic bytes, so truncation or reordering shows.
func patternBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = "0123456789abcdefghijklmnopqrstuvwxyz\n"[i%37]
	}
	return b
}

func rawGet(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: example.test\r\n\r\n" }

func rawPost(path, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: example.test\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func conformanceCases() []conformanceCase {
	big := patternBytes(256 << 10)
	return []conformanceCase{
		// 1. Simple GET, small body, keep-alive.
		{
			name:       "get_small_body_keepalive",
			handler:    handlerWriting("hello, world\n"),
			steps:      []rawStep{{send: rawGet("/a"), read: 1}, {send: rawGet("/b"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
		{
			name:       "get_pipelined_in_one_write",
			handler:    func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "path="+r.URL.Path) },
			steps:      []rawStep{{send: rawGet("/first") + rawGet("/second"), read: 2}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
		{
			name:       "handler_writes_nothing",
			handler:    func(w http.ResponseWriter, r *http.Request) {},
			steps:      oneRequest(rawGet("/")),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name: "handler_status_and_headers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Add("X-Multi", "one")
				w.Header().Add("X-Multi", "two")
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, `{"ok":true}`)
			},
			steps:      oneRequest(rawGet("/")),
			headers:    []string{"X-Multi"},
			wantStatus: []int{201}, wantState: "open",
		},
		{
			// What the handler sets after WriteHeader is not sent, though
			// the head goes out only with the body.
			name: "handler_headers_after_writeheader",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Early", "1")
				w.WriteHeader(http.StatusAccepted)
				w.Header().Set("X-Late", "1")
				w.Header().Set("X-Early", "changed")
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, "x")
			},
			steps:      oneRequest(rawGet("/")),
			headers:    []string{"X-Early", "X-Late"},
			wantStatus: []int{202}, wantState: "open",
		},
		{
			name:       "request_as_seen_by_handler",
			handler:    dumpRequest,
			steps:      oneRequest("GET /p/a%20th?q=1&r=%2F HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: raw\r\nX-Dup: a\r\nX-Dup: b\r\nAccept: */*\r\n\r\n"),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name:       "request_absolute_form_uri",
			handler:    dumpRequest,
			steps:      oneRequest("GET http://absolute.test/x?y=1 HTTP/1.1\r\nHost: other.test\r\n\r\n"),
			wantStatus: []int{200}, wantState: "open",
		},

		// 2. POST with a Content-Length body, echoed.
		{
			name:       "post_content_length_echo",
			handler:    echoBody,
			steps:      []rawStep{{send: rawPost("/", "hello body"), read: 1}, {send: rawPost("/", "second"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
		{
			name:       "post_duplicate_equal_content_length",
			handler:    dumpRequest,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
			wantStatus: []int{200}, wantState: "open",
		},

		// 3. POST with a chunked body, echoed.
		{
			name:       "post_chunked_echo",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name:       "post_chunked_with_extension_and_trailer",
			handler:    dumpRequest,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n"),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name:       "post_chunked_uppercase_coding",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			// The handler sees the body error and answers 400 itself; what
			// follows the broken chunk must never be parsed as a request.
			name:       "post_chunked_malformed_size",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
			wantStatus: []int{400}, wantState: "closed",
		},

		// 4. Request smuggling attempts. A request with both
		// Transfer-Encoding and Content-Length closes the connection on h1
		// and not on net/http: TestStricterThanNetHTTP.
		{
			name:       "smuggle_two_different_content_lengths",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "smuggle_content_length_list",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "smuggle_content_length_abc",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nhello"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "smuggle_content_length_negative",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nhello"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "smuggle_content_length_plus_sign",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "smuggle_te_gzip_chunked",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{501}, wantState: "closed",
		},
		{
			name:       "smuggle_te_twice",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{501}, wantState: "closed",
		},
		{
			name:       "smuggle_te_identity",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello"),
			ignore:     serverGenerated,
			wantStatus: []int{501}, wantState: "closed",
		},

		// 5. Malformed requests.
		{
			name:       "malformed_request_line_garbage",
			handler:    echoBody,
			steps:      oneRequest("GARBAGE\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "malformed_request_line_http09",
			handler:    echoBody,
			steps:      oneRequest("GET /\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "malformed_request_line_trailing_token",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "malformed_request_line_bad_method",
			handler:    echoBody,
			steps:      oneRequest("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "unsupported_version_http20",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{505}, wantState: "closed",
		},
		{
			name:       "unsupported_version_http09_token",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/0.9\r\nHost: x\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{505}, wantState: "closed",
		},
		{
			name:       "header_line_without_colon",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "header_name_with_space",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "header_space_before_colon",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: x\r\nX-A : v\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "header_value_bare_cr",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			// textproto accepts this byte; net/http's server rejects it.
			name:       "header_value_control_char",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "header_value_nul",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "missing_host_http11",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			// CONNECT names its authority in the target: no Host needed,
			// as net/http's server allows.
			name:       "connect_without_host",
			handler:    dumpRequest,
			steps:      oneRequest("CONNECT example.com:443 HTTP/1.1\r\n\r\n"),
			wantStatus: []int{200},
		},
		{
			// RFC 9112 3.2: a client sends an empty Host when the target
			// has no authority; only a missing one is refused.
			name:       "empty_host_http11",
			handler:    dumpRequest,
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: \r\n\r\n"),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			// The same in a head net/http's parser reads (bare LF), which
			// removes the Host header whether empty or absent.
			name:       "empty_host_http11_bare_lf",
			handler:    dumpRequest,
			steps:      oneRequest("GET / HTTP/1.1\nX-A: b\nhost:\n\n"),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			// The Host line after the head's first bytes were read.
			name:    "empty_host_http11_head_in_two_writes",
			handler: dumpRequest,
			steps: []rawStep{
				{send: "GET / HTTP/1.1\r\nX-A: b\r\n", read: 0},
				{send: "Host:\r\nX-B: c\r\n\r\n", read: 1},
			},
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name:       "missing_host_http11_bare_lf",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\nX-Host: x\n\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "missing_host_absolute_form",
			handler:    echoBody,
			steps:      oneRequest("GET http://absolute.test/x HTTP/1.1\r\nUser-Agent: x\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "empty_host_absolute_form",
			handler:    dumpRequest,
			steps:      oneRequest("GET http://absolute.test/x HTTP/1.1\r\nHost:\r\n\r\n"),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name:       "empty_host_http10",
			handler:    dumpRequest,
			steps:      oneRequest("GET / HTTP/1.0\r\nHost: \r\n\r\n"),
			wantStatus: []int{200}, wantState: "closed",
		},
		{
			name:       "two_host_headers",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "malformed_host_header",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			// An absolute-form target's authority is the request's host,
			// but a malformed Host header is refused all the same.
			name:       "malformed_host_header_absolute_form",
			handler:    dumpRequest,
			steps:      oneRequest("GET http://a.test/ HTTP/1.1\r\nHost: a b\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			// A folded Host line is one value with a space in it.
			name:       "folded_host_header_absolute_form",
			handler:    dumpRequest,
			steps:      oneRequest("GET http://a.test/ HTTP/1.1\r\nHost: a\r\n b\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "obs_text_host_header_absolute_form",
			handler:    dumpRequest,
			steps:      oneRequest("GET http://a.test/ HTTP/1.1\r\nHost: \xff\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{400}, wantState: "closed",
		},
		{
			name:       "bare_lf_line_endings",
			handler:    dumpRequest,
			steps:      oneRequest("GET /lf HTTP/1.1\nHost: x\nX-A: b\n\n"),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			// RFC 9112 §2.2: a server SHOULD ignore an empty line before
			// the request-line; net/http does so after a POST.
			name:       "stray_crlf_after_post_body",
			handler:    echoBody,
			steps:      []rawStep{{send: rawPost("/", "abc") + "\r\n", read: 1}, {send: rawGet("/next"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},

		// 6. Header size limit.
		{
			name:       "headers_over_max_header_bytes",
			handler:    echoBody,
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{431}, wantState: "closed",
		},
		{
			name:       "request_line_over_max_header_bytes",
			handler:    echoBody,
			steps:      oneRequest("GET /" + strings.Repeat("p", 16<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n"),
			ignore:     serverGenerated,
			wantStatus: []int{431}, wantState: "closed",
		},
		{
			name:       "headers_under_max_header_bytes",
			handler:    handlerWriting("fine"),
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<10) + "\r\n\r\n"),
			wantStatus: []int{200}, wantState: "open",
		},

		// 7. HTTP/1.0.
		{
			name:       "http10_request_closes",
			handler:    handlerWriting("old client\n"),
			steps:      oneRequest("GET / HTTP/1.0\r\n\r\n"),
			wantStatus: []int{200}, wantState: "closed",
		},
		{
			// No chunked encoding for an HTTP/1.0 client: the body is
			// delimited by closing the connection.
			name:       "http10_large_body_without_length",
			handler:    func(w http.ResponseWriter, r *http.Request) { w.Write(big) },
			steps:      oneRequest("GET / HTTP/1.0\r\n\r\n"),
			wantStatus: []int{200}, wantState: "closed",
		},
		{
			name: "http10_flush",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "part1 ")
				flushOrPanic(w)
				io.WriteString(w, "part2")
			},
			steps:      oneRequest("GET / HTTP/1.0\r\n\r\n"),
			wantStatus: []int{200}, wantState: "closed",
		},

		// 8. Connection: close.
		{
			name:       "connection_close_request",
			handler:    handlerWriting("bye"),
			steps:      oneRequest("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
			wantStatus: []int{200}, wantState: "closed",
		},
		{
			name: "handler_sets_connection_close",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
				io.WriteString(w, "closing")
			},
			steps:      oneRequest(rawGet("/")),
			wantStatus: []int{200}, wantState: "closed",
		},

		// 9. Flushing switches to chunked.
		{
			name: "flush_then_write_more",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "part1 ")
				flushOrPanic(w)
				io.WriteString(w, "part2")
			},
			steps:      []rawStep{{send: rawGet("/"), read: 1}, {send: rawGet("/again"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
		{
			name: "flush_before_any_write",
			handler: func(w http.ResponseWriter, r *http.Request) {
				flushOrPanic(w)
				io.WriteString(w, "after flush")
			},
			steps:      oneRequest(rawGet("/")),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name: "sse_style_stream",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Cache-Control", "no-cache")
				for i := range 3 {
					fmt.Fprintf(w, "data: {\"n\":%d}\n\n", i)
					flushOrPanic(w)
				}
				io.WriteString(w, "data: [DONE]\n\n")
			},
			steps:      oneRequest(rawGet("/v1/chat/completions")),
			headers:    []string{"Cache-Control"},
			wantStatus: []int{200}, wantState: "open",
		},

		// 10. Large bodies.
		{
			name:       "large_body_single_write_without_length",
			handler:    func(w http.ResponseWriter, r *http.Request) { w.Write(big) },
			steps:      []rawStep{{send: rawGet("/"), read: 1}, {send: rawGet("/again"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
		{
			name: "large_body_many_small_writes_without_length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i < len(big); i += 1000 {
					w.Write(big[i:min(i+1000, len(big))])
				}
			},
			steps:      oneRequest(rawGet("/")),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name: "large_body_with_handler_content_length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(big)))
				w.Write(big)
			},
			steps:      []rawStep{{send: rawGet("/"), read: 1}, {send: rawGet("/again"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
		{
			// Fewer bytes than declared: the client must see a truncated
			// body and the connection must not be reused.
			name: "handler_content_length_short_write",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "10")
				io.WriteString(w, "12345")
			},
			steps:      oneRequest(rawGet("/")),
			wantStatus: []int{200}, wantState: "closed",
		},
		{
			// More bytes than declared: the write that would exceed it is
			// refused (http.ErrContentLength) and the body on the wire is
			// exactly the declared length. net/http then closes the
			// connection because it counts the refused bytes as written;
			// that is a detail: the framing is intact, so keeping the
			// connection is as correct (the probe checks it is usable).
			name: "handler_content_length_long_write",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "5")
				io.WriteString(w, "12345")
				if _, err := io.WriteString(w, "67890"); err == nil {
					panic("write past Content-Length did not fail")
				}
			},
			steps:      oneRequest(rawGet("/")),
			ignore:     ignoreClosure,
			wantStatus: []int{200}, wantState: "closed",
		},

		// 11. HEAD.
		{
			name:       "head_small_body",
			handler:    handlerWriting("hello, head\n"),
			steps:      []rawStep{{send: "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", read: 1, method: "HEAD"}, {send: rawGet("/after-head"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
		{
			name: "head_handler_sets_content_length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1234")
				w.Header().Set("Content-Type", "application/octet-stream")
				if r.Method != http.MethodHead {
					w.Write(patternBytes(1234))
				}
			},
			steps:      []rawStep{{send: "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", read: 1, method: "HEAD"}, {send: rawGet("/after-head"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
		{
			// net/http sends no framing header at all here: the handler
			// was still running when the header went out, so the length
			// was unknown. Whatever the framing header, no body byte may
			// follow, which the probe on the same connection checks.
			name:       "head_large_body",
			handler:    func(w http.ResponseWriter, r *http.Request) { w.Write(big) },
			steps:      []rawStep{{send: "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", read: 1, method: "HEAD"}},
			ignore:     ignoreFraming,
			wantStatus: []int{200}, wantState: "open",
		},

		// 12. Expect: 100-continue.
		{
			name:    "expect_100_continue",
			handler: echoBody,
			steps: []rawStep{
				{send: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", read: 1},
				{send: "hello", read: 1},
			},
			wantStatus: []int{100, 200}, wantState: "open",
		},
		{
			// The handler answers without reading: no 100 is sent, the
			// client never sends the body, so the connection must close.
			name: "expect_100_continue_rejected_without_reading",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, "denied")
			},
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
			wantStatus: []int{403}, wantState: "closed",
		},
		{
			// The handler starts its answer, then reads the body (the
			// client sent it without waiting): the 100 can no longer be
			// sent, neither inside the answer nor before it, and the
			// connection closes, as announced.
			name: "expect_100_continue_body_read_after_flush",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "first;")
				flushOrPanic(w)
				b, _ := io.ReadAll(r.Body)
				io.WriteString(w, "got:"+string(b))
			},
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"),
			wantStatus: []int{200}, wantState: "closed",
		},
		{
			// The same with the answer's head alone flushed first.
			name: "expect_100_continue_body_read_after_head",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusAccepted)
				flushOrPanic(w)
				b, _ := io.ReadAll(r.Body)
				io.WriteString(w, "got:"+string(b))
			},
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"),
			wantStatus: []int{202}, wantState: "closed",
		},

		{
			// RFC 9110 10.1.1: an HTTP/1.0 request's 100-continue is
			// ignored, not refused.
			name:    "expect_100_continue_http10",
			handler: echoBody, ignore: serverGenerated,
			steps: oneRequest("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"),
		},
		{
			// 100-continue in a list of expectations is met.
			name:    "expect_100_continue_in_list",
			handler: echoBody, ignore: serverGenerated,
			steps: []rawStep{{send: "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, x-foo\r\nContent-Length: 3\r\n\r\nabc", read: 2}},
		},

		// 12b. "OPTIONS *" asks about the server, not a resource: net/http
		// answers it itself (its globalOptionsHandler), and the handler,
		// a mux of paths, never sees the "*".
		{
			name:       "options_asterisk",
			handler:    dumpRequest,
			steps:      oneRequest("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name:       "options_asterisk_with_body",
			handler:    dumpRequest,
			steps:      []rawStep{{send: "OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", read: 1}, {send: rawGet("/next"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
		{
			name:       "options_asterisk_with_large_body",
			handler:    dumpRequest,
			steps:      oneRequest("OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("a", 5000)),
			wantStatus: []int{200}, wantState: "closed",
		},

		// 13. Unknown expectation.
		{
			name:       "expect_unknown",
			handler:    echoBody,
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: something-else\r\n\r\nhello"),
			ignore:     serverGenerated,
			wantStatus: []int{417}, wantState: "closed",
		},

		// 14. Content-Type sniffing.
		{
			name:       "sniff_html",
			handler:    handlerWriting("<!DOCTYPE html><html><body>hi</body></html>"),
			steps:      oneRequest(rawGet("/")),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name:       "sniff_binary",
			handler:    func(w http.ResponseWriter, r *http.Request) { w.Write([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0}) },
			steps:      oneRequest(rawGet("/")),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			name: "no_sniff_with_content_encoding",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				io.WriteString(w, "<html>not really gzip</html>")
			},
			steps:      oneRequest(rawGet("/")),
			headers:    []string{"Content-Encoding"},
			wantStatus: []int{200}, wantState: "open",
		},

		// 15. CR/LF in handler-set headers: no response splitting.
		{
			name: "crlf_in_header_value",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Split", "a\r\nSet-Cookie: evil=1")
				w.Header().Set("X-Split-Lf", "b\nX-Injected: 1")
				// A bare CR, which some clients take for a line break.
				w.Header().Set("X-Split-Cr", "c\rSet-Cookie: evil=3")
				io.WriteString(w, "ok")
			},
			steps:      []rawStep{{send: rawGet("/"), read: 1}, {send: rawGet("/again"), read: 1}},
			headers:    []string{"X-Split", "X-Split-Lf", "X-Split-Cr", "Set-Cookie", "X-Injected"},
			wantStatus: []int{200, 200}, wantState: "open",
			check: checkNoInjectedHeader,
		},
		{
			name: "crlf_in_header_name",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header()["X-Bad\r\nSet-Cookie"] = []string{"evil=2"}
				io.WriteString(w, "ok")
			},
			steps:      oneRequest(rawGet("/")),
			headers:    []string{"Set-Cookie", "X-Bad"},
			wantStatus: []int{200}, wantState: "open",
			check: checkNoInjectedHeader,
		},

		// 16. Status codes that forbid a body.
		{
			name: "status_204_with_body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
				io.WriteString(w, "must not be sent")
			},
			steps:      []rawStep{{send: rawGet("/"), read: 1}, {send: rawGet("/again"), read: 1}},
			wantStatus: []int{204, 204}, wantState: "open",
		},
		{
			name: "status_304_with_body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"v1"`)
				w.WriteHeader(http.StatusNotModified)
				io.WriteString(w, "must not be sent")
			},
			steps:      []rawStep{{send: rawGet("/"), read: 1}, {send: rawGet("/again"), read: 1}},
			headers:    []string{"ETag"},
			wantStatus: []int{304, 304}, wantState: "open",
		},

		// 17. Panicking handlers: no response, connection closed, the
		// server keeps serving (checked by the fresh-connection probe).
		{
			name:      "panic_before_write",
			handler:   func(w http.ResponseWriter, r *http.Request) { panic("boom") },
			steps:     oneRequest(rawGet("/")),
			wantState: "closed",
		},
		{
			name: "panic_after_unflushed_write",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "partial")
				panic("boom")
			},
			steps:     oneRequest(rawGet("/")),
			wantState: "closed",
		},
		{
			name:      "panic_err_abort_handler",
			handler:   func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) },
			steps:     oneRequest(rawGet("/")),
			wantState: "closed",
		},
		{
			// The header and a chunk are on the wire already: the client
			// must see a truncated chunked body (no terminating chunk).
			name: "panic_after_flush",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "partial")
				flushOrPanic(w)
				panic("boom")
			},
			steps:      oneRequest(rawGet("/")),
			wantStatus: []int{200}, wantState: "closed",
		},

		// 18. Request bodies the handler does not read.
		{
			name:       "unread_small_body",
			handler:    handlerWriting("ignored your body"),
			steps:      []rawStep{{send: rawPost("/", "0123456789"), read: 1}, {send: rawPost("/", "abc"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
		{
			name:       "unread_small_chunked_body",
			handler:    handlerWriting("ignored your body"),
			steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
			wantStatus: []int{200}, wantState: "open",
		},
		{
			// Whether the connection survives a 1 MiB unread body is the
			// server's choice (net/http closes it); only the status counts.
			name:       "unread_large_body",
			handler:    handlerWriting("ignored your body"),
			steps:      oneRequest(rawPost("/", string(patternBytes(1<<20)))),
			ignore:     statusOnly | ignoreClosure,
			wantStatus: []int{200},
		},
		// An unread body too large to drain closes the connection, and the
		// answer says so (a client told the connection persists would send
		// its next request into a closed socket).
		{
			name: "unread_body_over_drain_limit_announces_close",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			},
			steps:      oneRequest(rawPost("/", string(patternBytes(1<<20)))),
			wantStatus: []int{413}, wantState: "closed",
		},
		{
			name: "unread_body_over_drain_limit_flushed_answer",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "streamed")
				flushOrPanic(w)
			},
			steps:      oneRequest(rawPost("/", string(patternBytes(1<<20)))),
			wantStatus: []int{200}, wantState: "closed",
		},
		{
			name:    "unread_chunked_body_over_drain_limit_announces_close",
			handler: handlerWriting("ignored your body"),
			steps: oneRequest("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 300<<10, patternBytes(300<<10))),
			wantStatus: []int{200}, wantState: "closed",
		},
		{
			// Close reads a small body to its end: nothing is left to
			// frame the next request.
			name: "handler_closes_unread_body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				r.Body.Close()
				io.WriteString(w, "closed your body")
			},
			steps:      []rawStep{{send: rawPost("/", "0123456789"), read: 1}, {send: rawPost("/", "abc"), read: 1}},
			wantStatus: []int{200, 200}, wantState: "open",
		},
	}
}

// checkNoInjectedHeader asserts that handler-supplied CR/LF did not start a
// new header line on the wire.
func checkNoInjectedHeader(t *testing.T, who string, ex *observed) {
	t.Helper()
	for _, bad := range []string{"\r\nSet-Cookie:", "\nSet-Cookie:", "\r\nX-Injected:", "\nX-Injected:", "\rSet-Cookie", "\rX-Injected"} {
		if bytes.Contains(bytes.ToLower(ex.raw), bytes.ToLower([]byte(bad))) {
			t.Errorf("%s: response splitting: %q appears on the wire:\n%s", who, bad, ex)
		}
	}
}

// compareExchanges lists the observable differences between the reference
// and the server under test.
func compareExchanges(c *conformanceCase, ref, got *observed) []string {
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	if ref.calls != got.calls {
		add("handler ran %d time(s) on net/http, %d on h1", ref.calls, got.calls)
	}
	if c.ignore&ignoreClosure == 0 && ref.state != got.state {
		add("connection after exchange: net/http %s, h1 %s", ref.state, got.state)
	}
	if len(ref.resps) != len(got.resps) {
		add("number of responses: net/http %d %v, h1 %d %v", len(ref.resps), ref.statuses(), len(got.resps), got.statuses())
	}
	for i := range min(len(ref.resps), len(got.resps)) {
		r, g := ref.resps[i], got.resps[i]
		n := i + 1
		if r.status != g.status {
			add("response %d status: net/http %d, h1 %d", n, r.status, g.status)
		}
		if c.ignore&ignoreFraming == 0 && r.framing != g.framing {
			add("response %d framing: net/http %q, h1 %q", n, r.framing, g.framing)
		}
		if c.ignore&ignoreBody == 0 {
			if !bytes.Equal(r.body, g.body) {
				add("response %d body: net/http %d bytes %s, h1 %d bytes %s", n, len(r.body), confQuote(r.body, 80), len(g.body), confQuote(g.body, 80))
			}
			if r.bodyErr != g.bodyErr {
				add("response %d body read error: net/http %q, h1 %q", n, r.bodyErr, g.bodyErr)
			}
		}
		if c.ignore&ignoreHeaders == 0 {
			if r.contentType != g.contentType {
				add("response %d Content-Type: net/http %q, h1 %q", n, r.contentType, g.contentType)
			}
			if r.signalClose != g.signalClose {
				add("response %d announces close: net/http %v, h1 %v", n, r.signalClose, g.signalClose)
			}
			for _, k := range c.headers {
				if r.headers[k] != g.headers[k] {
					add("response %d header %s: net/http %q, h1 %q", n, k, r.headers[k], g.headers[k])
				}
			}
		}
	}
	return diffs
}

func TestConformsToNetHTTP(t *testing.T) {
	for _, c := range conformanceCases() {
		t.Run(c.name, func(t *testing.T) { checkConforms(t, &c) })
	}
}

// checkConforms plays c against a net/http server and an h1.Server running
// its handler, checks c's premise about net/http, and reports every
// observable difference.
func checkConforms(t *testing.T, c *conformanceCase) {
	t.Helper()
	ref := startNetHTTP(t, c.handler)
	sut := startH1(t, c.handler)

	var exs [2]*observed
	for i, s := range []*confServer{ref, sut} {
		ex := runExchange(t, s.addr, c)
		ex.fresh = probeFresh(s.addr)
		ex.calls = s.calls.Load()
		ex.log = s.log.String()
		exs[i] = ex
	}
	refEx, gotEx := exs[0], exs[1]
	both := fmt.Sprintf("net/http answered:\n%s\nh1 answered:\n%s", refEx, gotEx)

	// The case's premise about net/http.
	if c.wantStatus != nil && fmt.Sprint(refEx.statuses()) != fmt.Sprint(c.wantStatus) {
		t.Errorf("test premise wrong: net/http gave statuses %v, the case assumes %v\n%s", refEx.statuses(), c.wantStatus, both)
	}
	if c.wantState != "" && refEx.state != c.wantState {
		t.Errorf("test premise wrong: net/http left the connection %s, the case assumes %s\n%s", refEx.state, c.wantState, both)
	}

	for i, ex := range exs {
		who := []string{"net/http", "h1"}[i]
		if ex.fresh != "ok" {
			t.Errorf("%s does not serve a new connection after the exchange: %s\n%s", who, ex.fresh, both)
		}
		if ex.state == "timeout" {
			t.Errorf("%s: exchange timed out after %v (server hung or sent too little)", who, exchangeTimeout)
		}
		if c.check != nil {
			c.check(t, who, ex)
		}
	}

	if diffs := compareExchanges(c, refEx, gotEx); len(diffs) > 0 {
		t.Errorf("h1 differs from net/http:\n  - %s\n%s", strings.Join(diffs, "\n  - "), both)
	}
}

// TestExpectAnsweredAsNetHTTP sends each Expect field (or fields) with a
// body to both servers and compares what comes back: whether a 100
// Continue came before the answer, the 417 for an expectation refused, or
// the plain answer of a request with no expectation to meet. net/http
// reads the first Expect line alone, and finds 100-continue in it
// between commas, spaces or tabs, in any case (hasToken); the premise
// column is what it answers.
func TestExpectAnsweredAsNetHTTP(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields string // the Expect lines, each ending in CRLF
		want   []int  // net/http's statuses
	}{
		{"100-continue", "Expect: 100-continue\r\n", []int{100, 200}},
		{"mixed case", "Expect: 100-Continue\r\n", []int{100, 200}},
		{"after a comma", "Expect: foo, 100-continue\r\n", []int{100, 200}},
		{"after a space", "Expect: foo 100-continue\r\n", []int{100, 200}},
		{"after a tab", "Expect: foo\t100-continue\r\n", []int{100, 200}},
		{"before a space", "Expect: 100-continue foo\r\n", []int{100, 200}},
		{"between commas", "Expect: ,100-continue,\r\n", []int{100, 200}},
		{"longer token", "Expect: 100-continuex\r\n", []int{417}},
		{"with a parameter", "Expect: 100-continue;q=1\r\n", []int{417}},
		{"prefixed token", "Expect: x-100-continue\r\n", []int{417}},
		{"unknown", "Expect: foo\r\n", []int{417}},
		{"empty", "Expect:\r\n", []int{200}},
		{"blank", "Expect:   \r\n", []int{200}},
		{"two lines, 100-continue first", "Expect: 100-continue\r\nExpect: foo\r\n", []int{100, 200}},
		{"two lines, 100-continue second", "Expect: foo\r\nExpect: 100-continue\r\n", []int{417}},
		{"two lines, the first empty", "Expect:\r\nExpect: 100-continue\r\n", []int{200}},
		{"two lines, the second empty", "Expect: 100-continue\r\nExpect:\r\n", []int{100, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := conformanceCase{
				name:    tc.name,
				handler: echoBody,
				// The body goes with the head: a server that owes no 100
				// reads it all the same, and one that owes it sends it at
				// the handler's first read. The 100 is read in the step,
				// the rest before the probe's answer.
				steps:      oneRequest("POST / HTTP/1.1\r\nHost: x\r\n" + tc.fields + "Content-Length: 3\r\n\r\nabc"),
				wantStatus: tc.want,
				wantState:  "open",
			}
			if tc.want[0] == http.StatusExpectationFailed {
				c.ignore, c.wantState = serverGenerated, "closed"
			}
			checkConforms(t, &c)
		})
	}
}

// TestStricterThanNetHTTP holds h1 to the RFCs' MUSTs where net/http
// misses them, so TestConformsToNetHTTP cannot: each case checks what
// net/http does (the premise, so a Go release that changes it shows here)
// and what h1 must do instead.
func TestStricterThanNetHTTP(t *testing.T) {
	type outcome struct {
		statuses []int
		state    string
		calls    int64
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		steps   []rawStep
		netHTTP outcome
		h1      outcome
		// h1Close: h1's final answer says "Connection: close" (the client
		// must not send another request on it).
		h1Close bool
	}{
		{
			// RFC 9112 6.1: "a server MAY reject a request that contains
			// both Content-Length and Transfer-Encoding or process such a
			// request in accordance with the Transfer-Encoding alone.
			// Regardless, the server MUST close the connection after
			// responding to such a request". net/http processes it and
			// keeps the connection, so the bytes after the empty chunked
			// body (which a front proxy framing by Content-Length took for
			// this request's) are served as a request of their own. h1
			// refuses it, as nginx does: closing after the answer is not
			// enough (chunked_body_swallows_next_request).
			name:    "cl_then_te_chunked",
			handler: dumpRequest,
			steps: oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 41\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
			netHTTP: outcome{[]int{200, 200}, "open", 2},
			h1:      outcome{[]int{400}, "closed", 0},
			h1Close: true,
		},
		{
			name:    "te_chunked_then_cl",
			handler: echoBody,
			steps:   oneRequest("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
			netHTTP: outcome{[]int{200}, "open", 1},
			h1:      outcome{[]int{400}, "closed", 0},
			h1Close: true,
		},
		{
			// The other way round: a front proxy that frames by the
			// Content-Length forwards 4 bytes of body ("42\r\n"), then
			// another client's request on the same connection. Read by the
			// Transfer-Encoding, that request (its API key with it) is
			// this one's body, and the handler's answer (an echo; a
			// model's reply) goes to the first client. Closing the
			// connection after the answer comes too late.
			name:    "chunked_body_swallows_next_request",
			handler: echoBody,
			steps: oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n42\r\n" +
				"GET /victim HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-victim\r\n\r\n" + "\r\n0\r\n\r\n"),
			netHTTP: outcome{[]int{200}, "open", 1},
			h1:      outcome{[]int{400}, "closed", 0},
			h1Close: true,
		},
		{
			// RFC 9112 6.1: a server that receives an HTTP/1.0 message
			// with a Transfer-Encoding "MUST treat the message as if the
			// framing is faulty, even if a Content-Length is present".
			// net/http ignores the coding (Go issue 12785) and reads the
			// chunked bytes as a body framed by the length, or none; a
			// proxy in front that honoured it read another body. h1
			// refuses it, as nginx does.
			name:    "te_chunked_on_http10",
			handler: dumpRequest,
			steps:   oneRequest("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
			netHTTP: outcome{[]int{200}, "closed", 1},
			h1:      outcome{[]int{400}, "closed", 0},
		},
		{
			name:    "te_chunked_and_cl_on_http10_keep_alive",
			handler: echoBody,
			steps:   oneRequest("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
			// net/http reads 10 bytes of the chunked body as the body,
			// keeps the connection and reads the rest as a request.
			netHTTP: outcome{[]int{200, 400}, "closed", 1},
			h1:      outcome{[]int{400}, "closed", 0},
		},
		{
			// RFC 9112 5.2 lets a server either reject a request with
			// obs-fold (a header line that starts with a blank) or join
			// it to the line before; net/http joins it. A proxy in front
			// that reads that line as a header of its own (or drops it)
			// frames the request differently: here it would see a
			// chunked body ending at "0", and the rest as a second
			// request, which net/http reads as this one's body. h1
			// refuses, as nginx does.
			name:    "obs_fold_hides_transfer_encoding",
			handler: dumpRequest,
			steps: oneRequest("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nX-A: b\r\n Transfer-Encoding: chunked\r\n\r\n" +
				"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
			netHTTP: outcome{[]int{200}, "open", 1},
			h1:      outcome{[]int{400}, "closed", 0},
			h1Close: true,
		},
		{
			name:    "obs_fold_continuation_line",
			handler: dumpRequest,
			steps:   oneRequest("GET / HTTP/1.1\r\nHost: x\r\nX-Folded: first\r\n second\r\n\r\n"),
			netHTTP: outcome{[]int{200}, "open", 1},
			h1:      outcome{[]int{400}, "closed", 0},
			h1Close: true,
		},
		{
			name:    "obs_fold_tab_on_http10",
			handler: dumpRequest,
			steps:   oneRequest("GET / HTTP/1.0\r\nX-Folded: first\r\n\tsecond\r\n\r\n"),
			netHTTP: outcome{[]int{200}, "closed", 1},
			h1:      outcome{[]int{400}, "closed", 0},
		},
		{
			// RFC 9110 15.2: "A server MUST NOT send a 1xx response to an
			// HTTP/1.0 client." net/http sends the handler's 103 all the
			// same; the client reads it as the final answer.
			name: "early_hints_to_http10",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</a>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				io.WriteString(w, "x")
			},
			steps:   oneRequest("GET / HTTP/1.0\r\n\r\n"),
			netHTTP: outcome{[]int{103, 200}, "closed", 1},
			h1:      outcome{[]int{200}, "closed", 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := conformanceCase{name: tc.name, handler: tc.handler, steps: tc.steps}
			for _, srv := range []struct {
				start func(*testing.T, http.Handler) *confServer
				want  outcome
			}{{startNetHTTP, tc.netHTTP}, {startH1, tc.h1}} {
				s := srv.start(t, tc.handler)
				ex := runExchange(t, s.addr, &c)
				ex.calls = s.calls.Load()
				got := outcome{ex.statuses(), ex.state, ex.calls}
				if fmt.Sprint(got) != fmt.Sprint(srv.want) {
					what := "h1 answered"
					if s.name == "net/http" {
						what = "test premise wrong: net/http answered"
					}
					t.Errorf("%s statuses %v, connection %s, handler calls %d; want %v, %s, %d\n%s",
						what, got.statuses, got.state, got.calls, srv.want.statuses, srv.want.state, srv.want.calls, ex)
				}
				if s.name == "h1" && tc.h1Close && len(ex.resps) > 0 && !ex.resps[len(ex.resps)-1].signalClose {
					t.Errorf("h1's answer does not say Connection: close:\n%s", ex)
				}
			}
		})
	}
}

// TestRefusalsQuoteNothingOfTheRequest: a head the server refuses is
// answered with fixed text, as net/http answers it ("400 Bad Request", or
// one of its own fixed reasons), never with the parser's error, which
// quotes the client's bytes: a browser led to post such a head would
// render them (reflected script). The answer says nosniff too, as
// http.Error's do.
func TestRefusalsQuoteNothingOfTheRequest(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		status     int
		body       string
	}{
		{"line without colon", "GET / HTTP/1.1\r\nHost: x\r\n<script>alert(1)</script>\r\n\r\n", 400, "400 Bad Request"},
		{"bad content length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: <script>\r\n\r\n", 400, "400 Bad Request"},
		{"bad method", "<script> / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
		{"bad version", "GET / HTTP/<script>\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
		{"bad transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: <script>\r\n\r\n", 501, "Unsupported transfer encoding"},
		// The server's own checks give net/http's fixed reasons.
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400, "400 Bad Request: missing required Host header"},
		{"bad host", "GET / HTTP/1.1\r\nHost: <script>\r\n\r\n", 400, "400 Bad Request: malformed Host header"},
		{"two framings", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "400 Bad Request: both Content-Length and Transfer-Encoding"},
		{"transfer coding on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "400 Bad Request: Transfer-Encoding on HTTP/1.0"},
		{"folded line", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n <script>\r\n\r\n", 400, "400 Bad Request: obsolete line folding is not accepted"},
		{"head too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("<script>", 2*testMaxHeaderBytes/8) + "\r\n\r\n", 431, "431 Request Header Fields Too Large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(exchangeTimeout))
			go io.WriteString(c, tc.head)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || string(b) != tc.body {
				t.Errorf("answered %d %q; want %d %q", resp.StatusCode, b, tc.status, tc.body)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options: %q; want nosniff", got)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type: %q; want text/plain; charset=utf-8", ct)
			}
			if !resp.Close {
				t.Errorf("the refusal does not say Connection: close")
			}
		})
	}
}

// ---- non-differential tests ----

// TestDisconnectCancelsContext checks that a handler blocked on its
// request's context is released when the client goes away. net/http runs
// the same scenario as a reference.
func TestDisconnectCancelsContext(t *testing.T) {
	scenarios := []struct {
		name    string
		request string
	}{
		{"get_without_body", rawGet("/wait")},
		{"post_with_body_read", rawPost("/wait", "payload")},
	}
	servers := []struct {
		name  string
		start func(*testing.T, http.Handler) *confServer
	}{
		{"net/http", startNetHTTP},
		{"h1", startH1},
	}
	for _, sc := range scenarios {
		for _, srv := range servers {
			t.Run(sc.name+"/"+strings.ReplaceAll(srv.name, "/", "_"), func(t *testing.T) {
				started := make(chan struct{})
				ended := make(chan error, 1)
				release := make(chan struct{})
				defer close(release)
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.ReadAll(r.Body)
					close(started)
					select {
					case <-r.Context().Done():
						ended <- r.Context().Err()
					case <-release:
						ended <- errors.New("released by the test, context never ended")
					}
				})
				s := srv.start(t, h)
				conn, err := net.Dial("tcp", s.addr)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(conn, sc.request); err != nil {
					t.Fatalf("write request: %v", err)
				}
				select {
				case <-started:
				case <-time.After(10 * time.Second):
					t.Fatalf("handler did not start within 10s; server log: %s", s.log)
				}
				conn.Close()
				select {
				case err := <-ended:
					if err == nil || !errors.Is(err, context.Canceled) {
						t.Errorf("handler context ended with %v, want context.Canceled", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s: request context not cancelled within 10s after the client closed its connection", srv.name)
				}
			})
		}
	}
}

// TestShutdownDrainsActiveRequest checks that Shutdown stops accepting,
// closes idle connections, lets an in-flight handler finish and deliver its
// response, and then returns nil.
func TestShutdownDrainsActiveRequest(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseFn := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseFn()

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/idle" {
			io.WriteString(w, "idle")
			return
		}
		close(entered)
		<-release
		io.WriteString(w, "drained")
	})
	logBuf := new(confLogBuffer)
	srv := &Server{Handler: h, ErrorLog: log.New(logBuf, "", 0)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer srv.Close()

	// An idle keep-alive connection: Shutdown must close it.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial idle: %v", err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(20 * time.Second))
	idleBR := bufio.NewReader(idle)
	if _, err := io.WriteString(idle, rawGet("/idle")); err != nil {
		t.Fatalf("write idle request: %v", err)
	}
	if r, err := readRawResponse(idleBR, http.MethodGet, nil); err != nil || r.status != 200 || string(r.body) != "idle" {
		t.Fatalf("idle connection's first request: %v %v", r, err)
	}

	// The in-flight request.
	active, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer active.Close()
	active.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(active, rawGet("/slow")); err != nil {
		t.Fatalf("write request: %v", err)
	}
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("handler did not start within 10s; log: %s", logBuf)
	}

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownDone <- srv.Shutdown(ctx)
	}()

	// Serve returns once the listener is closed: that is when Shutdown
	// has begun refusing new connections.
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v during Shutdown, want http.ErrServerClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of Shutdown")
	}
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		// A connection that is accepted by the kernel but never served
		// would also be wrong; either way it must not get an answer.
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, rawGet("/after-shutdown"))
		r, rerr := readRawResponse(bufio.NewReader(c), http.MethodGet, nil)
		c.Close()
		t.Errorf("new connection accepted after Shutdown began (answer: %v, %v)", r, rerr)
	}

	// The idle connection is closed by Shutdown, without an answer.
	if _, err := readRawResponse(idleBR, http.MethodGet, nil); confConnState(err) != "closed" {
		t.Errorf("idle keep-alive connection after Shutdown: %v, want it closed", err)
	}

	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned %v while a handler was still running", err)
	default:
	}

	releaseFn()
	r, err := readRawResponse(bufio.NewReader(active), http.MethodGet, nil)
	if err != nil {
		t.Fatalf("in-flight response lost during Shutdown: %v (log: %s)", err, logBuf)
	}
	if r.status != 200 || string(r.body) != "drained" {
		t.Errorf("in-flight response = %v, want 200 \"drained\"", r)
	}

	select {
	case err := <-shutdownDone:
		if err != nil {
			t.Errorf("Shutdown returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return within 10s after the last handler finished")
	}
}
