// Package h1 is the HTTP/1.1 server of paygate's bot-facing listener.
//
// The load benchmark (BENCHMARKS.md) put a bare pass-through proxy built on
// paygate's upstream transport behind two servers, in one run: behind
// net/http's server it reached 0.69× nginx's throughput at 32 clients and
// added 0.19 ms at one client; behind a minimal server on one goroutine per
// connection it reached 0.90× and added 0.11 ms, nginx's figure. The
// difference is what net/http's server does around every request for
// generality paygate does not need: a second goroutine per request that
// reads one byte ahead to notice a client's disconnect, the read deadline
// changes that stop it, and a response writer built for every framing at
// once.
//
// This server keeps what matters of net/http's and drops the rest:
//   - A plain request head already buffered (CRLF lines, token names,
//     printable values, one Content-Length at most, no Transfer-Encoding) is
//     read by internal/httpwire, which yields what net/http would for it
//     with a third of the allocations; every other head is parsed by
//     net/http's own parser (http.ReadRequest), so header validation,
//     Content-Length and Transfer-Encoding rules (the request-smuggling
//     defences) and chunked bodies are net/http's, but for the heads it
//     serves that a proxy in front may frame otherwise (obs-fold, both
//     framings, a coding on HTTP/1.0), which are refused, as by nginx.
//   - The handler is an ordinary http.Handler; the ResponseWriter sends
//     Content-Length for an answer that fits its buffer and chunked encoding
//     for one that is flushed (a stream) or larger, and implements
//     FlushError for http.ResponseController.
//   - A client's disconnect cancels its request's context, as with net/http,
//     but it is noticed by one epoll set for all connections (EPOLLRDHUP),
//     registered once per connection: no goroutine, read or timer per
//     request (watch_linux.go).
//   - A connection closed while its client may still be sending (a body
//     the handler left unread, as when it refuses an upload with 413 or
//     401 part-way; a head answered with an error) is closed as net/http
//     closes it (closeWriteAndWait): the answer is flushed, the write side
//     shut, and what the client still sends is read and dropped until it
//     closes, sends nothing for BodyStallTimeout, or drainTime (10 s)
//     passes (net/http waits its rstAvoidanceDelay, 500 ms, in all, which a
//     client uploading a large body outlasts).
//     Closing a socket with unread bytes in it sends a reset, and a client
//     that is still writing then reports the reset rather than the answer
//     (and retries the upload). Where net/http sleeps the 500 ms, this
//     server stops as soon as the client closes.
//   - A client cannot hold a connection by going silent mid-request, which
//     net/http's server with only ReadHeaderTimeout set allows: each read
//     of a request's body that has to wait for the connection must get
//     bytes within BodyStallTimeout (the header timeout, by default), and
//     each read of the drain of a body the handler left unread (up to
//     256 KiB, as net/http's) within lingerTime, and the whole drain
//     within drainTime (10 s); either failing closes the connection after
//     the answer, the drain's with a lingering close, since that client
//     only paused and may be sending yet. A body that came in the buffer
//     with its head costs no deadline change.
//   - Nor by not reading an answer: the client must take some of each
//     write within WriteStallTimeout (60 s by default), or the request's
//     context is cancelled, as when the client leaves (with the cause
//     ErrWriteStalled), and the connection
//     reset (what is queued for the client is dropped, not left in the
//     kernel). A write the client keeps taking is not cut, however long it
//     is (an answer of megabytes in one Write). The deadline is moved at
//     most once per half of the bound, so a stream's flush per event costs
//     no timer change.
//   - Shutdown stops accepting, closes idle connections and waits for the
//     requests in flight, like http.Server.Shutdown. CancelRequests ends
//     the requests still in flight with a cause their handlers can tell
//     from a client's disconnect, and leaves their connections open, so
//     each answer can still end properly: Close cuts them.
//
// What it leaves out on purpose: HTTP/2 (h2c), TLS, Hijack and CONNECT. The
// listener is a sidecar's plaintext HTTP/1.1 port.
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/paygate/paygate/internal/httpwire"
)

// Supported reports whether this platform can watch connections for a
// client's disconnect without a reader per request. Where it cannot, callers
// use net/http's server.
func Supported() bool { return watchSupported }

// Server serves HTTP/1.1 on a listener. Set the fields before Serve and do
// not change them after.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request's head from its first byte
	// on, and a new connection's wait for its first request. Default 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection after its first. Default 120 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's head. Default
	// http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// BodyStallTimeout bounds each wait for more of a request's body: a
	// read of the body (the handler's, or the server's own drain of what
	// the handler left, which waits lingerTime at most) that finds nothing
	// buffered fails with a timeout when the client sends nothing for this
	// long, and the connection is closed after the answer. A body's total
	// time is not bounded (a slow upload may take as long as it keeps
	// sending). Default ReadHeaderTimeout's value (10 s unless set).
	BodyStallTimeout time.Duration
	// WriteStallTimeout bounds each write to a client: a client that takes
	// none of an answer for this long (it stopped reading, and the socket's
	// buffers are full) fails the write, which cancels the request's
	// context, as a client's disconnect does, and resets the connection. The
	// deadline is moved at most once per half of it, not for every write (a
	// stream flushes every event), so a write may wait up to half as long
	// again before it fails. An answer's total time is not bounded (a slow
	// client may take its time over a large one), nor one write's: a write
	// the client took some of before the deadline passed goes on, with the
	// bound afresh (a client that stops part-way through a long write is
	// cut within two and a half bounds of its last byte). Default 60 s.
	WriteStallTimeout time.Duration
	// ErrorLog receives handler panics and accept errors; nil: the log
	// package's standard logger.
	ErrorLog *log.Logger

	maxLinger    time.Duration // bounds each wait of a drain; 0: lingerTime (tests change it)
	maxDrainTime time.Duration // bounds a drain, and a lingering close, as a whole; 0: drainTime (tests change it)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	cut       atomic.Pointer[error] // CancelRequests' cause: requests starting after it are cancelled too
}

// ErrServerClosed is http.ErrServerClosed, so callers treat both servers
// alike.
var ErrServerClosed = http.ErrServerClosed

// ErrWriteStalled is the cause (context.Cause) of a request's context
// cancelled because its client took none of a write for WriteStallTimeout:
// it stopped reading, its connection still open, which a handler may want
// to tell from a client that left (context.Canceled). Past a write
// deadline the handler set, the context is cancelled plainly: the handler
// knows of its own deadline and reports it.
var ErrWriteStalled = errors.New("h1: the client stopped reading the answer")

// Serve accepts connections on ln and serves each on its own goroutine. It
// returns http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// As net/http: back off on resource exhaustion.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logf("h1: accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

// Shutdown stops accepting, closes idle connections and waits until every
// request in flight has been answered, or ctx ends (its error is returned;
// the connections left are not closed: call Close). A connection that
// lingers after its answer (see the package doc) is waited for too, as
// net/http's is, but while its client is still sending (for drainTime at
// most). A request whose client went silent mid-body is waited for until
// the read times out (BodyStallTimeout), and one whose unread body is
// still coming until it is drained.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// CancelRequests cancels the context of every request in flight, and of
// any that starts after it, with cause (what context.Cause returns; a
// client's disconnect leaves context.Canceled). The connections stay open:
// a handler that returns on it still ends its answer properly (a stream's
// last chunk), and the connection closes after it, as with Shutdown. Call
// it after Shutdown, when the requests in flight must end but may still
// say why.
func (s *Server) CancelRequests(cause error) {
	s.cut.Store(&cause)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if cancel := c.cancel.Load(); cancel != nil {
			(*cancel)(cause)
		}
	}
}

// Close stops accepting and closes every connection at once; the contexts of
// the requests in flight are cancelled.
func (s *Server) Close() error {
	s.closeListeners()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.abort()
	}
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
}

// closeIdle closes the connections waiting for a request and reports whether
// none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.Load() == stateIdle {
			c.abort()
		}
	}
	return len(s.conns) == 0
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String()}
	c.lr.r = nc
	c.lr.c = c
	c.br = bufio.NewReaderSize(&c.lr, 4<<10)
	c.bw = bufio.NewWriterSize(checkWriter{c}, 8<<10)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return nil
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	w, err := watch(nc, c.peerGone)
	if err != nil {
		// Without the watcher a disconnect would not cancel the request:
		// refuse the connection rather than serve it half-blind.
		s.logf("%v", err)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		return nil
	}
	c.w = w
	return c
}

const (
	stateIdle int32 = iota // waiting for a request's first byte
	stateActive
)

// conn is one client connection, served by one goroutine.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	lr     limitReader
	br     *bufio.Reader
	bw     *bufio.Writer
	w      *watched // its registration with the disconnect watcher

	state    atomic.Int32
	gone     atomic.Bool                             // the client closed or reset
	cancel   atomic.Pointer[context.CancelCauseFunc] // the request in flight
	werr     error                                   // the first write error; the connection is dead
	bodyWait time.Duration                           // Server.BodyStallTimeout, or its default
	lastPost bool
	linger   bool              // the client may still be sending: close reads it first (lingeringClose)
	rdl      time.Time         // the read deadline in place, as the server set it (setReadDeadline)
	wstall   time.Duration     // Server.WriteStallTimeout, or its default
	wset     time.Time         // when checkWriter last moved the write deadline; zero: move it at the next write
	wfixed   bool              // a write deadline not checkWriter's is in place (reject's, the handler's): leave it
	host     httpwire.HostLine // whether a head net/http reads has a Host line
	hold     []byte            // a response's body before its head; reused across requests
	head     http.Header       // the response's header as it stood at WriteHeader, once the handler asked for it after (response.Header)
}

// setReadDeadline sets the connection's read deadline and remembers it.
func (c *conn) setReadDeadline(t time.Time) error {
	c.rdl = t
	return c.nc.SetReadDeadline(t)
}

// awaitRequest waits up to idle for the first byte of the next request and
// reports whether it came. The deadline is not moved for every request:
// each move resets a runtime timer, which wakes the network poller or
// starts a thread for it. A deadline an earlier wait set is left in place
// while it is ahead and no later than this wait's end; when it passes
// first, the wait is re-armed for what is left of its own idle time, so a
// connection is never closed before it was idle that long.
func (c *conn) awaitRequest(idle time.Duration) bool {
	start := time.Now()
	end := start.Add(idle)
	if !c.rdl.After(start) || c.rdl.After(end) {
		c.setReadDeadline(end)
	}
	for {
		_, err := c.br.Peek(1)
		if err == nil {
			return true
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(end) {
			return false
		}
		c.setReadDeadline(end) // the deadline was an earlier wait's
	}
}

// peerGone runs on the watcher's goroutine when the client closed its side
// or reset the connection.
func (c *conn) peerGone() { c.peerGoneWith(nil) }

// peerGoneWith is peerGone with the cause the request's context gets
// (nil: context.Canceled).
func (c *conn) peerGoneWith(cause error) {
	c.gone.Store(true)
	if cancel := c.cancel.Load(); cancel != nil {
		(*cancel)(cause)
	}
}

// abort closes the connection from another goroutine: the request in
// flight, if any, sees its context cancelled and its writes fail. The
// socket closes first: cancelled first, a handler that returns at once
// could have its answer written in the gap (TestCloseCancelsRequests saw
// its client read a byte after Close, under load).
func (c *conn) abort() {
	c.nc.Close()
	c.peerGone()
}

func (c *conn) close() {
	// The watcher goes first: the request is over, and the half-close of a
	// lingering close, then the client's own close, are no disconnect to
	// report.
	c.w.stop()
	if c.linger {
		c.lingeringClose()
	}
	c.nc.Close()
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
}

func (c *conn) serve() {
	defer c.close()
	s := c.s
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = 120 * time.Second
	}
	headerWait := s.ReadHeaderTimeout
	if headerWait <= 0 {
		headerWait = 10 * time.Second
	}
	maxHeader := s.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = http.DefaultMaxHeaderBytes
	}
	bodyWait := s.BodyStallTimeout
	if bodyWait <= 0 {
		bodyWait = headerWait
	}
	c.bodyWait = bodyWait
	c.wstall = s.WriteStallTimeout
	if c.wstall <= 0 {
		c.wstall = 60 * time.Second
	}
	// A new connection's first request gets the header timeout from the
	// accept on, as with net/http, not the idle timeout: a client that
	// connects and sends nothing (on the listener WeChat Pay's
	// notifications also reach, an internet-facing one) holds a socket
	// and a goroutine for 10 s, not 120.
	wait := min(idle, headerWait)
	for {
		// A connection the client is gone from (c.gone) is read on all the
		// same: when it shut only its side for writing, the requests it
		// sent before, pipelined, are still owed answers (as with
		// net/http), and they may be in the socket rather than the buffer.
		// No read waits on it any more: the next one returns what was sent,
		// then EOF or the reset, which ends the loop.
		if s.closing.Load() {
			return
		}
		c.state.Store(stateIdle)
		c.lr.n = int64(maxHeader) + 4096 // as net/http: room for the request line
		c.lr.wait = 0                    // reading a head: the header and idle timeouts apply
		if c.br.Buffered() == 0 {
			if !c.awaitRequest(wait) {
				return
			}
		} else {
			// A pipelined request has begun: its head gets the header
			// timeout, also while stray line breaks after a POST body are
			// looked for below (the deadline in place is the last
			// request's, or none).
			c.setReadDeadline(time.Now().Add(headerWait))
		}
		c.state.Store(stateActive)
		if c.lastPost {
			// As net/http (RFC 9112 2.2): old clients send a line break
			// after a POST body.
			peek, _ := c.br.Peek(4)
			c.br.Discard(leadingLineBreaks(peek))
		}
		// A plain head already in the buffer is read without a read from
		// the connection, so its deadline does not matter; any other is
		// net/http's to read, within the header timeout.
		// The request and its response writer are one allocation: each
		// request gets a fresh one, as a handler may keep either.
		x := new(exchange)
		req, plain := x.req.Read(c.br, maxHeader+4096)
		hasHost := plain // httpwire reads only a head with a Host line
		hostHeader := "" // the Host line's value, where req.Host may not be it
		folded := false  // the head had obs-fold (httpwire reads none)
		// framing is what is wrong with the head's framing headers, which
		// http.ReadRequest drops (httpwire reads no Transfer-Encoding).
		framing := ""
		if !plain {
			c.setReadDeadline(time.Now().Add(headerWait))
			// http.ReadRequest removes the Host header: whether there was
			// one is read off the head's bytes as they pass, the
			// buffered ones first.
			c.host = httpwire.HostLine{}
			buffered, _ := c.br.Peek(c.br.Buffered())
			c.host.Write(buffered)
			c.lr.host = &c.host
			var err error
			req, err = http.ReadRequest(c.br)
			c.lr.host = nil
			if err != nil {
				c.rejectBadRequest(err)
				return
			}
			hasHost = c.host.Found()
			folded = c.host.Folded()
			switch {
			case len(req.TransferEncoding) > 0 && c.host.ContentLength():
				// Both framings (http.ReadRequest keeps Transfer-Encoding
				// and drops the Content-Length): a proxy in front that
				// framed the body by Content-Length reads a different
				// request boundary, the shape of request smuggling. RFC
				// 9112 6.1 lets the server serve it by Transfer-Encoding
				// if it closes the connection after, but closing comes
				// too late: a chunked body that runs past the length
				// takes the next request the proxy sends on the
				// connection, another client's with its API key, for
				// this one's body, and the answer goes to this client.
				// It is refused, as nginx refuses it.
				framing = "both Content-Length and Transfer-Encoding"
			case !req.ProtoAtLeast(1, 1) && c.host.TransferEncoding():
				// RFC 9112 6.1: an HTTP/1.0 message with a
				// Transfer-Encoding has faulty framing, whatever its
				// Content-Length says; http.ReadRequest ignores the coding
				// and frames the body by the length, or none, where a
				// proxy in front that honoured it read another body.
				framing = "Transfer-Encoding on HTTP/1.0"
			}
			if req.URL.Host != "" {
				hostHeader = c.host.Value() // absolute-form: req.Host is the target's
			}
		}
		c.lr.n = 1<<63 - 1
		// The body may take as long as the client keeps sending it (an
		// upload to /v1/files), but each read of it that has to wait for
		// the connection must get bytes within bodyWait (limitReader sets
		// the deadline as it reads): a client that stops mid-body would
		// otherwise hold the connection, its goroutine and Shutdown for
		// as long as it stays connected. A body that came in the buffer
		// with its head (a chat request's, as a rule) is never read from
		// the connection, so it costs no deadline change; nor does the
		// deadline the head left in place matter, since the next request
		// sets its own.
		c.lr.wait = bodyWait
		msg := checkRequest(req, hasHost, hostHeader, folded, !plain)
		if msg == "" {
			msg = framing
		}
		if msg != "" {
			status := http.StatusBadRequest
			if req.ProtoMajor != 1 {
				status = http.StatusHTTPVersionNotSupported
			}
			c.reject(status, strconv.Itoa(status)+" "+http.StatusText(status)+": "+msg)
			return
		}
		c.lastPost = req.Method == http.MethodPost
		if !c.serveRequest(req, &x.w) {
			return
		}
		wait = idle
	}
}

// checkRequest applies the checks net/http's server makes beyond
// http.ReadRequest (or httpwire, which declines what it would refuse), which
// has already refused a second Host header and
// removed the Host header into req.Host; hasHost: the head had one. An
// empty Host is valid (RFC 9112 3.2: the target has no authority); only a
// missing one is refused, as by net/http. Header values need no second look
// (net/textproto refuses control bytes while it reads them); names do, as it
// lets a space through.
//
// hostHeader is the Host line's value when req.Host is not (an
// absolute-form target's authority wins, RFC 9112 3.2.2, but a malformed
// Host header is refused all the same, as by net/http).
//
// folded: the head had obs-fold, a header line starting with a blank. RFC
// 9112 5.2 has a server refuse it or join it to the line before; net/http
// joins it, and a proxy in front (the TLS proxy the listener sits behind)
// that reads it as a header of its own, or drops it, sees other headers
// than the handler does: a folded " Transfer-Encoding: chunked" after
// another header frames the body by its Content-Length here and as chunked
// there, the shape of request smuggling. It is refused, as nginx refuses
// it; no client of this API folds a header.
//
// names: the header names are to be checked, as a head net/http read needs;
// httpwire reads only names of token bytes (its tchar are
// httpguts.ValidHeaderFieldName's), so a second walk of them found nothing
// on every plain request.
func checkRequest(req *http.Request, hasHost bool, hostHeader string, folded, names bool) string {
	switch {
	case req.ProtoMajor != 1:
		return "unsupported protocol version"
	case folded:
		return "obsolete line folding is not accepted"
	case req.ProtoAtLeast(1, 1) && !hasHost && req.Method != http.MethodConnect:
		// CONNECT names its authority in the target, as net/http allows.
		return "missing required Host header"
	case !httpguts.ValidHostHeader(req.Host), !httpguts.ValidHostHeader(hostHeader):
		return "malformed Host header"
	}
	if !names {
		return ""
	}
	for k := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return "invalid header name"
		}
	}
	return ""
}

func leadingLineBreaks(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == '\r' || b[n] == '\n') {
		n++
	}
	return n
}

func (c *conn) rejectBadRequest(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || c.werr != nil {
		return // the client went away mid-request
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return // as net/http: a timed-out head gets no answer
	}
	// The answers' texts are net/http's, fixed: the parser's error quotes
	// the client's bytes (a header line, a method), and echoed in the
	// answer they would be a page a browser led to post such a head
	// renders.
	if c.lr.n <= 0 {
		c.reject(http.StatusRequestHeaderFieldsTooLarge, "431 Request Header Fields Too Large")
		return
	}
	if isUnsupportedTE(err) {
		c.reject(http.StatusNotImplemented, "Unsupported transfer encoding")
		return
	}
	c.reject(http.StatusBadRequest, "400 Bad Request")
}

// isUnsupportedTE reports net/http's unsupportedTEError, which its server
// answers with 501; the type is unexported, so it is known by name and by
// its messages.
func isUnsupportedTE(err error) bool {
	if fmt.Sprintf("%T", err) == "*http.unsupportedTEError" {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "unsupported transfer encoding") || strings.Contains(msg, "too many transfer encodings")
}

// reject answers a request that will not reach the handler with status and
// body, a fixed text that quotes nothing of the request, and closes the
// connection, as net/http does for a request it cannot parse. The answer
// says nosniff, as http.Error's do, so that no browser takes the text for
// anything else. The rest of the request (a head too large, a body) may
// still be coming: the connection lingers.
func (c *conn) reject(status int, body string) {
	c.wfixed = true
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
	c.linger = c.bw.Flush() == nil
}

// lingerTime bounds each wait of the drain of a body the handler left
// unread (requestBody.discard): net/http's rstAvoidanceDelay, "about the
// latency around the planet", which bounds its lingering close.
const lingerTime = 500 * time.Millisecond

// drainTime bounds the drain of a body the handler left unread
// (requestBody.discard) as a whole, as lingerTime bounds each of its waits,
// and a lingering close as a whole too:
// a client that sent a byte just within each wait was drained for as long
// as it kept on (maxDrain bytes a byte each 490 ms: 35 hours), and the
// drain runs after a refusal, for a client with no key. Sent at any
// usable pace, maxDrain bytes take far less.
const drainTime = 10 * time.Second

// drainBound is drainTime, or the bound a test set.
func (s *Server) drainBound() time.Duration {
	if s.maxDrainTime > 0 {
		return s.maxDrainTime
	}
	return drainTime
}

// lingerBound is lingerTime, or the bound a test set.
func (s *Server) lingerBound() time.Duration {
	if s.maxLinger > 0 {
		return s.maxLinger
	}
	return lingerTime
}

// lingeringClose prepares to close a connection whose client may still be
// sending, as net/http's closeWriteAndWait does: it flushes the answer,
// shuts the write side (the client reads the answer, then EOF) and reads
// and drops what comes until the client closes, sends nothing for
// BodyStallTimeout, drainTime passes or Close closes the connection.
// Closed with those bytes unread, the socket would send a reset, and many
// TCP stacks drop what the client had received but not yet read when one
// arrives, the answer with it; a client still writing gets ECONNRESET or
// EPIPE from its write instead of the answer. net/http waits lingerTime in
// all, which an upload refused early (a bot's 40 MB file refused with 413
// as soon as its head came) outlasts: the Node openai SDK sent the head,
// then nothing for two seconds while it read the file into its form, then
// the body, and closed under, it reported "Connection error." and sent the
// whole upload again. So each wait gets as long as any wait of a body
// (BodyStallTimeout: a client silent that long is not sending), and the
// whole drainTime, so that a client that keeps sending cannot hold the
// connection (or Shutdown) longer.
func (c *conn) lingeringClose() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || c.werr != nil || c.bw.Flush() != nil || cw.CloseWrite() != nil {
		return
	}
	io.Copy(io.Discard, &lingerReader{nc: c.nc, wait: c.bodyWait, end: time.Now().Add(c.s.drainBound())})
}

// lingerReader reads a lingering connection, each read bounded by wait and
// all of them by end.
type lingerReader struct {
	nc   net.Conn
	wait time.Duration
	end  time.Time
}

func (r *lingerReader) Read(p []byte) (int, error) {
	d := time.Now().Add(r.wait)
	if d.After(r.end) {
		d = r.end
	}
	if err := r.nc.SetReadDeadline(d); err != nil {
		return 0, err
	}
	return r.nc.Read(p)
}

// lingerFor reports false, for serveRequest to return when it closes the
// connection, and has it linger when the client may still be sending b.
func (c *conn) lingerFor(b *requestBody) bool {
	// A client whose body stalled past BodyStallTimeout is not sending:
	// nothing of it waits unread to turn the close into a reset, and a
	// lingering close would only hold the connection (and Shutdown)
	// longer. One whose drain ended on the drain's shorter bound only
	// paused, and may be sending yet: the lingering close (bounded in its
	// turn) keeps a reset from losing it the answer.
	stalled := errors.Is(b.err, os.ErrDeadlineExceeded) && !b.paused
	c.linger = !b.eof && b.left != 0 && c.werr == nil && !stalled
	return false
}

// serveRequest runs the handler for req and reports whether the connection
// may carry another request.
func (c *conn) serveRequest(req *http.Request, w *response) (keep bool) {
	ctx, cancel := context.WithCancelCause(context.Background())
	// The request is the server's own until the handler gets it, so its
	// context is set in place: WithContext's copy, inlined, stays on the
	// stack, where a new request would be one more allocation.
	*req = *req.WithContext(ctx)
	req.RemoteAddr = c.remote
	body := req.Body

	w.init(c, req)
	w.cancel = cancel // in the response's allocation, for the watcher to reach
	c.cancel.Store(&w.cancel)
	if c.gone.Load() {
		cancel(nil)
	} else if cause := c.s.cut.Load(); cause != nil {
		cancel(*cause)
	}
	defer func() {
		c.cancel.Store(nil)
		cancel(nil)
		if c.wfixed {
			// The handler set a write deadline: the next write sets the
			// server's again.
			c.wfixed = false
			c.wset = time.Time{}
		}
	}()
	w.reqBody.r = body
	w.reqBody.left = req.ContentLength
	w.reqBody.eof = body == http.NoBody
	req.Body = &w.reqBody
	if expect := httpwire.Field(req.Header, "Expect"); expect != "" {
		// As net/http: 100-continue among the expectations of the first
		// Expect line (between commas, spaces or tabs) is met, and
		// ignored in an HTTP/1.0 request (RFC 9110 10.1.1); any other
		// expectation alone fails.
		if !httpwire.HasToken(expect, "100-continue") {
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusExpectationFailed)
			w.finish()
			return c.lingerFor(&w.reqBody) // the client may send the body all the same
		}
		w.reqBody.expect = req.ProtoAtLeast(1, 1) && req.ContentLength != 0
	}
	if !c.runHandler(w, req) {
		return false
	}
	if c.wfixed {
		// The handler's write deadline stood in for WriteStallTimeout
		// only while it ran. The answer's end (a stream's last chunk, an
		// answer held whole) is the server's to write, under the
		// server's bound again: left to the handler's deadline, one it
		// cleared (paygate's passthrough does once its provider's body
		// has ended) had that write wait for as long as a client that
		// stopped reading stayed connected.
		c.wfixed = false
		c.wset = time.Time{}
	}
	// A "100 Continue" still owed closes the connection: sendHead decides.
	w.finish()
	if w.closeAfter || c.werr != nil {
		// A body the handler left unread (a refusal of an upload) may
		// still be coming.
		return c.lingerFor(&w.reqBody)
	}
	// The next request starts where this one's body ends: read what the
	// handler left, as net/http does. The answer said the connection
	// persists only when that is at most maxDrain bytes (sendHead), so
	// only a client that sent less than it declared is closed on here.
	if !w.reqBody.discard() {
		return c.lingerFor(&w.reqBody)
	}
	if err := c.bw.Flush(); err != nil {
		return false
	}
	return true
}

// maxDrain is how much of an unread request body is read to keep the
// connection (net/http's maxPostHandlerReadBytes).
const maxDrain = 256 << 10

// runHandler calls the handler (optionsAsterisk for "OPTIONS *") and
// reports false when it panicked; the connection is then closed without an
// answer, as net/http does.
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("h1: panic serving %s: %v\n%s", c.remote, p, buf)
			}
			ok = false
		}
	}()
	h := c.s.Handler
	if req.RequestURI == "*" && req.Method == http.MethodOptions {
		h = optionsAsterisk
	}
	h.ServeHTTP(w, req)
	return true
}

// optionsAsterisk answers "OPTIONS *", which asks about the server, not a
// resource, as net/http's server does (its globalOptionsHandler): an empty
// 200, the handler never called (a mux of paths took "*" for one). A body
// over 4 KiB is not read: the connection closes after the answer.
var optionsAsterisk = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
	if r.ContentLength != 0 {
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4<<10)); err != nil {
			w.Header().Set("Connection", "close")
		}
	}
})

// checkWriter is what the connection's bufio.Writer writes to: every write
// of it is one to the connection. It bounds each write by the write-stall
// deadline and records the connection's first write error: after it, every
// write fails the same way and the connection is not reused.
type checkWriter struct{ c *conn }

func (w checkWriter) Write(p []byte) (int, error) {
	c := w.c
	if c.werr != nil {
		return 0, c.werr
	}
	if !c.wfixed {
		// A client that reads nothing would block the write, and the
		// handler (in paygate, the upstream connection it relays) with
		// it, until the client closed. The deadline is moved only when
		// it was set more than half the bound ago, to now plus one and a
		// half bounds: each write may wait at least the bound, and a
		// stream's flush per event costs a clock read, not a timer reset.
		if now := time.Now(); now.Sub(c.wset) > c.wstall/2 {
			c.nc.SetWriteDeadline(now.Add(c.wstall + c.wstall/2))
			c.wset = now
		}
	}
	n, err := c.nc.Write(p)
	if err != nil && n > 0 && !c.wfixed && errors.Is(err, os.ErrDeadlineExceeded) {
		n, err = c.writeOn(p, n)
	}
	if err != nil {
		c.werr = err
		if errors.Is(err, os.ErrDeadlineExceeded) && !c.wfixed {
			c.peerGoneWith(ErrWriteStalled)
		} else {
			// A write deadline the handler set is its own to report.
			c.peerGone()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The client stalled: the connection is closed now, not when
			// the handler returns, which may take it a while yet, and with
			// a reset. The answer cannot be completed, and a plain close
			// would leave what is queued (megabytes of a stream) in the
			// kernel, waiting for a client that reads nothing.
			if l, ok := c.nc.(interface{ SetLinger(int) error }); ok {
				l.SetLinger(0)
			}
			c.nc.Close()
		}
	}
	return n, err
}

// writeOn goes on with a write to the client that reached the write-stall
// deadline after it had sent n bytes of p: a stall is a client that takes
// nothing for the bound, not one that takes an answer more slowly than the
// whole of one write can go out within it (a handler's answer of megabytes
// in one Write is one write here, and a bot reading it steadily must not
// be reset). Each time the deadline passes with some of p gone since it was
// set, the rest gets the bound afresh; the write fails only when the
// client took none of it in that time. The last byte may have gone just
// before the deadline, so the client is cut between one and two and a half
// bounds after it stopped reading. Backdating wset keeps the deadline at
// wset plus one and a half bounds, as Write expects.
func (c *conn) writeOn(p []byte, n int) (int, error) {
	for {
		now := time.Now()
		c.nc.SetWriteDeadline(now.Add(c.wstall))
		c.wset = now.Add(-c.wstall / 2)
		m, err := c.nc.Write(p[n:])
		n += m
		if err == nil || m == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
	}
}

// limitReader is what the connection's bufio.Reader reads from: every read
// of it is one from the connection, made when nothing is buffered. It
// bounds the bytes read for a request's head, as net/http's MaxHeaderBytes
// does (after the head they are unbounded), and, while a body is read,
// sets the read deadline for each read (bodyDeadline).
type limitReader struct {
	r    io.Reader
	n    int64
	host *httpwire.HostLine // sees the bytes read, while net/http reads a head
	c    *conn
	// wait > 0 while a request's body is read: each read must get bytes
	// within it (Server.BodyStallTimeout). drain > 0 while the server
	// drains a body the handler left (requestBody.discard): each read must
	// get bytes within it too, when it is the shorter. short records that
	// drain, not wait, set the deadline of the last read.
	wait     time.Duration
	drain    time.Duration
	drainEnd time.Time // while drain > 0: when the drain as a whole ends (drainTime)
	short    bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeadTooLarge
	}
	if l.wait > 0 || l.drain > 0 {
		l.c.bodyDeadline()
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.host != nil {
		l.host.Write(p[:n])
	}
	return n, err
}

var errHeadTooLarge = errors.New("h1: request head too large")

// bodyDeadline sets the read deadline for a read of a request's body from
// the connection: now plus the shorter of lr.wait and lr.drain. A read that
// times out fails the body (requestBody.err), and the connection closes
// after the answer; the request's context is not cancelled, since the
// client has not gone, and the disconnect watcher, which sees only a
// client's close or reset, has nothing to report.
func (c *conn) bodyDeadline() {
	d, short := c.lr.wait, false
	if c.lr.drain > 0 && (d <= 0 || c.lr.drain < d) {
		d, short = c.lr.drain, true
	}
	end := time.Now().Add(d)
	if c.lr.drain > 0 && end.After(c.lr.drainEnd) {
		end, short = c.lr.drainEnd, true
	}
	c.lr.short = short
	c.setReadDeadline(end)
}

// requestBody is the body the handler reads. It sends "100 Continue" when
// the handler first reads the body of a request that asked for it, unless
// the answer's head went first (sendHead then drops the 100), keeps count
// of what is left of it, and remembers a read error: after one, the
// connection's next bytes cannot be trusted to start a request.
type requestBody struct {
	c      *conn
	r      io.ReadCloser
	left   int64 // bytes of a Content-Length body not yet read; -1 chunked
	expect bool  // 100 Continue is owed before the first read; false once the head is sent
	eof    bool  // read to its end: nothing to drain
	closed bool  // the handler closed it
	err    error
	// paused: the drain's read timed out on the drain's own bound, shorter
	// than BodyStallTimeout. The client paused; it did not stall by the
	// server's bound, and may be sending yet (lingerFor).
	paused bool
}

// errDrainLimit marks a body closed with more than maxDrain bytes left,
// which is not read: the connection closes after the answer.
var errDrainLimit = errors.New("h1: request body left unread")

func (b *requestBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.expect {
		b.expect = false
		b.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := b.c.bw.Flush(); err != nil {
			return 0, err
		}
	}
	n, err := b.r.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}

// unframed reports whether what is left of the body is unknown (chunked)
// or over maxDrain: the server will not read it to keep the connection.
func (b *requestBody) unframed() bool {
	return !b.eof && (b.left < 0 || b.left > maxDrain)
}

// discard reads what is left of the body, at most maxDrain bytes, and
// reports whether it ended there: the connection's next bytes start the
// next request. A "100 Continue" still owed is not sent for it. Each read
// from the connection it makes must get bytes within lingerTime (or
// BodyStallTimeout, if shorter): the drain only saves a reconnection, and a
// client that declared more than it sends (a refused caller, as often as
// not) must not hold the connection for it; but one that keeps sending is
// read to the end, up to maxDrain, as net/http reads it, since closing on
// it would reset it mid-upload and lose it the answer, as long as the
// drain as a whole ends within drainTime: one that trickles its bytes must
// not hold the connection either. When the drain
// fails, the connection closes after the answer.
func (b *requestBody) discard() bool {
	if !b.eof && b.left == 0 && !b.closed && !b.expect && b.err == nil {
		b.Read(nil) // the declared length was read: its EOF, without a copy
	}
	if b.eof {
		return true
	}
	if b.closed || b.expect || b.err != nil || b.left > maxDrain {
		return false
	}
	c := b.c
	c.lr.drain, c.lr.short = c.s.lingerBound(), false
	c.lr.drainEnd = time.Now().Add(c.s.drainBound())
	io.CopyN(io.Discard, b, maxDrain+1)
	b.paused = c.lr.short && errors.Is(b.err, os.ErrDeadlineExceeded)
	c.lr.drain = 0
	return b.eof
}

// Close reads what is left of the body, as net/http's does, unless it is
// over maxDrain (or owed a 100 the client waits for): the connection then
// closes after the answer instead, which says so if it has not begun.
func (b *requestBody) Close() error {
	if b.closed {
		return nil
	}
	if !b.expect && !b.discard() && b.err == nil {
		b.err = errDrainLimit
	}
	b.closed = true
	if !b.eof {
		return nil // the underlying body would read all of it
	}
	return b.r.Close()
}
