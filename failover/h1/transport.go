// Package h1 is a lean HTTP/1.1 client transport for upstream providers.
//
// net/http's Transport runs two goroutines per connection, a reader and a
// writer, and passes every request and response between them and the caller
// over channels. For a proxy whose whole job is one request and one response
// per exchange, those hand-offs cost a goroutine wake-up each way and a good
// part of the CPU on a small machine (BENCHMARKS.md has the profile). This
// Transport does the whole exchange on the caller's goroutine: it writes the
// request, reads the response head (a plain one with internal/httpwire,
// any other with net/http's own parser, http.ReadResponse), and returns a
// body that reads straight from the connection. Only a request body over
// 64 KiB (asyncBody) is written on a goroutine of its own, while the answer
// is awaited: a server may answer such an upload before it reads it.
//
// Cancellation needs no watcher goroutine either: a hook registered with the
// request's context (context.AfterFunc, or the context's own AfterFunc
// method when it has one) moves the connection's deadline into the past,
// which unblocks a read or write at once; the connection is then closed,
// never reused.
//
// It speaks HTTP/1.1 only, over TCP or TLS (ALPN "http/1.1"): every LLM
// provider serves it, and a stream is one request, so HTTP/2's multiplexing
// buys a sidecar nothing. Requests that must go through an HTTP proxy go to
// Fallback.
package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/http/httpguts"

	"github.com/paygate/paygate/internal/httpwire"
)

// maxPlainHead bounds a response head read by httpwire; the connection's
// 8 KiB buffer bounds it in practice.
const maxPlainHead = 64 << 10

// maxHead bounds all the response heads of one exchange together (interim
// answers included), however they are parsed: net/http's Transport bounds
// them at 10 MB by default (MaxResponseHeaderBytes); no provider's answer
// needs more than a few KiB, so 1 MiB leaves room and still stops an
// upstream that sends header lines without end.
const maxHead = 1 << 20

// max1xx is how many interim (1xx) answers one exchange may have before the
// final one, as net/http's Transport allows.
const max1xx = 5

// errHeadTooLarge ends an exchange whose response heads passed maxHead.
var errHeadTooLarge = fmt.Errorf("h1: response head larger than %d bytes", maxHead)

// Transport is an http.RoundTripper for HTTP/1.1 upstreams. The zero value
// is not ready; set the fields before the first request and do not change
// them after.
type Transport struct {
	// DialContext opens TCP connections. Default: a net.Dialer with a 5 s
	// timeout and 30 s TCP keep-alive.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSClientConfig configures https connections; ServerName defaults to
	// the URL's host and NextProtos is always http/1.1.
	TLSClientConfig *tls.Config
	// TLSHandshakeTimeout bounds the TLS handshake. Default 5 s.
	TLSHandshakeTimeout time.Duration
	// MaxIdleConnsPerHost caps the idle keep-alive connections kept per
	// scheme and host. Default 256.
	MaxIdleConnsPerHost int
	// IdleConnTimeout is how long an idle connection may be taken for a
	// request; a sweep closes it at most as long again later. Default 90 s.
	IdleConnTimeout time.Duration
	// Proxy chooses an HTTP proxy for a request, as http.Transport.Proxy
	// does. A request it names a proxy for is sent by Fallback, which must
	// be set when Proxy is.
	Proxy    func(*http.Request) (*url.URL, error)
	Fallback http.RoundTripper

	mu       sync.Mutex
	idle     map[connKey][]*conn // per host, oldest first
	sweeping bool                // a sweep of expired idle connections is scheduled

	tlsOnce  sync.Once
	sessions tls.ClientSessionCache
}

type connKey struct {
	tls  bool
	addr string // host:port
}

// conn is one keep-alive connection. It belongs to the pool while idle and
// to exactly one exchange otherwise.
type conn struct {
	t      *Transport
	key    connKey
	nc     net.Conn
	raw    syscall.RawConn // the TCP socket under nc, for the liveness peek
	br     *bufio.Reader
	rd     headLimiter // br's source: nc, bounded while a head is read
	idleAt time.Time
	reused bool
	abort  func()                // abortIO, bound once per connection rather than per request
	peek   func(fd uintptr) bool // alive's peek (peekFn), bound once too
	peekOK bool                  // what the last peek found
	probe  [1]byte               // where drained reads a TLS connection's held bytes
	// under is the socket as a TLS connection sees it, which drained can
	// make return at once (probeConn).
	under probeConn
	// framing notes the framing headers of a head net/http reads
	// (roundTrip), which it drops from the header it returns.
	framing httpwire.HostLine
	aw      armedWriter // where writeRequest writes (armed_unix.go)
	// lim bounds a body writeRequest copies through a reader
	// (writeBody): io.CopyN's limit, in the conn rather than one
	// allocation per request.
	lim io.LimitedReader
	// armable: nc is a plain *net.TCPConn, written armed (armed_unix.go).
	armable bool
	// unchecked: a pooled connection handed out without its liveness
	// peek, which its request's first write makes (getConn's deferPeek).
	unchecked bool
	arm       func(fd uintptr) bool // the armed write's function (armFn), bound once
	// writer writes the body of the exchange in flight on a goroutine of
	// its own, for a body over asyncBody (writeRequest); nil otherwise.
	writer *bodyWriter
	// cutWrite: the exchange's answer moved the write deadline into the
	// past to stop the writer (roundTrip); bodySent clears it again when
	// the writer had written everything all the same.
	cutWrite bool
}

// aLongTimeAgo is a deadline in the past: setting it fails pending and
// future I/O on a connection at once.
var aLongTimeAgo = time.Unix(1, 0)

var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// RoundTrip sends req and returns the response head; the body reads from the
// connection, which returns to the pool when the body has been read to its
// end (and is closed if the body is closed earlier).
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("h1: nil request URL")
	}
	var key connKey
	switch req.URL.Scheme {
	case "http":
	case "https":
		key.tls = true
	default:
		closeBody(req)
		return nil, fmt.Errorf("h1: unsupported protocol scheme %q", req.URL.Scheme)
	}
	if req.URL.Host == "" {
		closeBody(req)
		return nil, errors.New("h1: no host in request URL")
	}
	if t.Proxy != nil {
		p, err := t.Proxy(req)
		if err != nil {
			closeBody(req)
			return nil, fmt.Errorf("h1: proxy: %w", err)
		}
		if p != nil {
			if t.Fallback == nil {
				closeBody(req)
				return nil, fmt.Errorf("h1: %s goes through proxy %s, and no Fallback transport is set", req.URL.Host, p.Redacted())
			}
			resp, err := t.Fallback.RoundTrip(req)
			if err != nil {
				// net/http's errors through a proxy name neither it nor
				// the host (a TLS verification that fails, as behind a
				// proxy that inspects TLS without its CA trusted). The
				// proxy's host only: its URL may hold a password.
				return nil, fmt.Errorf("h1: %s through proxy %s: %w", req.URL.Host, p.Host, err)
			}
			return resp, nil
		}
	}
	// Hosts with non-ASCII letters are dialled, verified and named in
	// the Host header in their ASCII (punycode) form, as net/http does.
	urlHost, host, err := asciiHosts(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	key.addr = hostPort(urlHost, key.tls)
	if err := checkRequestLine(req, host); err != nil {
		closeBody(req)
		return nil, err
	}
	if err := checkHeaders(req.Header); err != nil {
		closeBody(req)
		return nil, err
	}
	ctx := req.Context()
	out, err := outgoingBody(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	out.host = host
	out.closing = closing(req) // once: writeRequest and roundTrip both ask
	// A body that can be had again lets a pooled connection's liveness
	// peek wait until the request's first write (deferPeek), where the
	// armed write makes it after the poller's reset (armed_unix.go).
	deferPeek := out.resendable()
	retried := false // the request was sent again once, on a new connection
	for {
		if err := ctx.Err(); err != nil {
			out.close()
			return nil, context.Cause(ctx)
		}
		var c *conn
		if retried {
			// The resend goes out on a new connection, as the comment
			// below has it: the next pooled one may be closing at the
			// same moment (the server restarted, or timed out the
			// connections opened together), and the resend is spent.
			c, err = t.dial(ctx, key, hostname(urlHost))
		} else {
			c, err = t.getConn(ctx, key, hostname(urlHost), deferPeek)
		}
		if err != nil {
			out.close()
			return nil, err
		}
		if checkoutHook != nil {
			checkoutHook(c)
		}
		resp, err := c.roundTrip(ctx, req, &out)
		if err == nil {
			out.close()
			return resp, nil
		}
		c.drop()
		if errors.Is(err, errIdleDead) && out.rewind() {
			// The deferred peek found the pooled connection closed or
			// with bytes waiting, before any of the request went out:
			// what getConn's peek would have found. The next
			// connection is taken as getConn takes them; the resend
			// below is not spent.
			continue
		}
		// A reused connection the server closed while it sat idle fails
		// before any of the answer arrives; the request is sent again once
		// on a new connection, when the body can be had again and, as
		// net/http decides, when the server cannot have acted on it: the
		// write failed, or the request is one a server may get twice (a
		// GET, or an Idempotency-Key). A chat completion the server read
		// whole and then dropped the connection on may have been generated
		// and billed; the caller's failover policy decides, and counts it
		// (the error wraps ErrReusedConnLost).
		if !retried && c.reused && ctx.Err() == nil &&
			(errors.Is(err, errNotSent) || errors.Is(err, errNothingRead) && replayable(req)) && out.rewind() {
			retried = true
			continue
		}
		out.close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if c.reused && errors.Is(err, errNothingRead) {
			err = fmt.Errorf("%w: %w", ErrReusedConnLost, err)
		}
		return nil, err
	}
}

// checkoutHook, when set (by tests only), is called with each connection
// RoundTrip takes, before its request is written.
var checkoutHook func(*conn)

// outgoing is the body of a request as this transport sends it. The
// caller's request is never modified (an http.RoundTripper must not): a
// body of unknown length is read once into memory, so the upstream gets a
// Content-Length (a ContentLength of 0 with a Body is unknown, as
// net/http's contract has it); a resend takes a fresh copy from GetBody.
type outgoing struct {
	req     *http.Request
	r       io.Reader
	c       io.Closer // the body being sent, closed when the exchange ends
	length  int64
	buf     []byte // the whole body, when it was read into memory
	host    string // the Host header's value, in ASCII
	closing bool   // closing(req): the request asks for its connection to end
}

func outgoingBody(req *http.Request) (outgoing, error) {
	o := outgoing{req: req}
	if req.Body == nil || req.Body == http.NoBody {
		return o, nil
	}
	o.r, o.c, o.length = req.Body, req.Body, req.ContentLength
	// A ContentLength of 0 with a body (neither nil nor http.NoBody) means
	// the length is unknown, as -1 does (http.Request's contract for
	// clients): sent as 0, the body would be dropped.
	if o.length <= 0 {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return outgoing{}, fmt.Errorf("h1: read request body: %w", err)
		}
		o.buf, o.r, o.c, o.length = b, bytes.NewReader(b), nil, int64(len(b))
	}
	return o, nil
}

// resendable reports whether rewind can get the body again.
func (o *outgoing) resendable() bool {
	return o.r == nil || o.buf != nil || o.req.GetBody != nil
}

// rewind gets a fresh copy of the body for a resend.
func (o *outgoing) rewind() bool {
	switch {
	case o.r == nil:
		return true
	case o.buf != nil:
		o.r = bytes.NewReader(o.buf)
		return true
	case o.req.GetBody == nil:
		return false
	}
	b, err := o.req.GetBody()
	if err != nil {
		return false
	}
	o.close()
	o.r, o.c = b, b
	return true
}

func (o *outgoing) close() {
	if o.c != nil {
		o.c.Close()
		o.c = nil
	}
}

// ErrReusedConnLost is in the error of a request that went out on a reused
// keep-alive connection which ended before the first byte of the answer, and
// was not sent again on a new one. Almost always the server closed the
// connection while it sat idle, just as the request went out (the close
// crossed the checkout's peek): a lost race with the server's idle timeout,
// not a sign that the server is unwell. Whether the request is sent again is
// the caller's decision, since the server may have read it.
var ErrReusedConnLost = errors.New("h1: reused keep-alive connection closed before the response")

// ErrNotSent is in the error of a request that failed before all of it
// was written: a write that failed mid-request, or a TLS handshake that
// failed before any of it. A request is framed by its Content-Length, so
// one cut short is no request to a server, which cannot have acted on it:
// a caller may send it elsewhere even when it must not run twice (an
// upload, a batch, a cancellation).
var ErrNotSent = errors.New("request not sent whole")

// errNothingRead marks a failure before the first byte of the answer;
// errNotSent one before the whole request was written (also
// errNothingRead, and ErrNotSent).
var (
	errNothingRead = errors.New("connection closed before the response")
	errNotSent     = fmt.Errorf("%w: %w", errNothingRead, ErrNotSent)
	// errIdleDead: a pooled connection's deferred liveness peek found it
	// closed or with bytes waiting, and none of the request was written.
	errIdleDead = errors.New("pooled connection found closed at the request's first write")
	// errNewConnClosed: the armed write's peek found a new connection
	// closed, or bytes waiting, before any of its first request went out.
	errNewConnClosed = errors.New("server closed the new connection before the request")
)

// replayable reports whether a server may get req twice without harm: an
// idempotent method, or an idempotency key. Unlike net/http, which takes
// an Idempotency-Key entry of no value (nil, or "") for a key, a key must
// have a value here: a server cannot tell a second copy of a POST by an
// empty one (payments/webhook uses the nil entry to have net/http resend
// its POSTs; it does not go through this transport).
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// asciiHosts returns req's URL host and its Host header value (req.Host,
// else the URL's), each in ASCII: a host with other letters in punycode.
func asciiHosts(req *http.Request) (urlHost, host string, err error) {
	urlHost = req.URL.Host
	if !isASCII(urlHost) {
		if urlHost, err = httpguts.PunycodeHostPort(urlHost); err != nil {
			return "", "", fmt.Errorf("h1: invalid host %q: %w", req.URL.Host, err)
		}
	}
	host = urlHost
	if req.Host != "" {
		host = req.Host
		if !isASCII(host) {
			if host, err = httpguts.PunycodeHostPort(host); err != nil {
				return "", "", fmt.Errorf("h1: invalid Host header %q: %w", req.Host, err)
			}
		}
	}
	return urlHost, removeZone(host), nil
}

// removeZone drops an IPv6 zone from a Host header's value, as net/http
// does ("[fe80::1%eth0]:8000" is sent as "[fe80::1]:8000"): the zone names
// the client's interface to dial from, and is nothing to the server
// (RFC 6874). It allocates only for a host that has one.
func removeZone(host string) string {
	if len(host) == 0 || host[0] != '[' {
		return host
	}
	i := strings.LastIndexByte(host, ']')
	if i < 0 {
		return host
	}
	j := strings.LastIndexByte(host[:i], '%')
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// hostname is hostport's host, without brackets for IPv6 (url.URL's
// Hostname).
func hostname(hostport string) string {
	u := url.URL{Host: hostport}
	return u.Hostname()
}

// hostPort is host with the scheme's default port when it names none.
func hostPort(host string, tls bool) string {
	u := url.URL{Host: host}
	if u.Port() != "" {
		return host
	}
	if tls {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// checkRequestLine refuses what net/http's Transport refuses in the
// request line and the Host header, all of which writeRequest writes as
// they are: a method that is not a token, a Host (req.Host, else the URL's)
// that is not a valid host (httpguts.ValidHostHeader), and control bytes
// in the request URI's raw parts (Opaque, RawQuery; the path is written
// escaped). A CR or LF in any of them would end the line and let the
// caller write headers or a second request of its own.
func checkRequestLine(req *http.Request, host string) error {
	for i := 0; i < len(req.Method); i++ {
		if !httpguts.IsTokenRune(rune(req.Method[i])) {
			return fmt.Errorf("h1: invalid method %q", req.Method)
		}
	}
	if !httpguts.ValidHostHeader(host) {
		return fmt.Errorf("h1: invalid Host header %q", host)
	}
	if hasCTL(req.URL.Opaque) || hasCTL(req.URL.RawQuery) {
		return errors.New("h1: can't write control character in Request.URL")
	}
	return nil
}

// hasCTL reports whether s has an ASCII control byte (net/http's
// stringContainsCTLByte).
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

// checkHeaders refuses header names and values that would let a caller
// inject a header line or split the request.
func checkHeaders(h http.Header) error {
	for k, vs := range h {
		if k == "" {
			return errors.New("h1: empty header name")
		}
		if badName(k) {
			return fmt.Errorf("h1: invalid header name %q", k)
		}
		for _, v := range vs {
			if badValue(v) {
				return fmt.Errorf("h1: invalid value for header %q", k)
			}
		}
	}
	return nil
}

// The byte-wise tests below read eight bytes of a header at a time: every
// request sends its headers through checkHeaders, the provider key's
// value among them, and a byte at a time they were about 1,200
// instructions of each. Each test has the high bit of a byte set if that
// byte is one it looks for and may set it wrongly only above such a byte
// (a borrow carries up), so it is non-zero exactly when one is there.
// TestHeaderChecksMatchByteLoops and FuzzHeaderChecks hold them to the
// loops they replaced.
const ones, highs = 0x0101010101010101, 0x8080808080808080

// badName reports a byte in k that no header name may have: a control
// byte, a space, DEL or above, or ':'.
func badName(k string) bool {
	b := unsafe.Slice(unsafe.StringData(k), len(k)) // read only
	if len(b) < 8 {
		for _, c := range b {
			if c <= ' ' || c >= 0x7f || c == ':' {
				return true
			}
		}
		return false
	}
	// The last word overlaps the one before it unless len(b) is a
	// multiple of 8: no byte is read one at a time.
	for i := 0; ; i += 8 {
		i = min(i, len(b)-8)
		x := binary.LittleEndian.Uint64(b[i:])
		colon := x ^ (ones * ':')
		// x < 0x21 (at or below ' '), colon == 0, x >= 0x7f (x+1 reaches
		// the high bit, or x has it).
		if ((x-ones*0x21)|(colon-ones))&^x&highs != 0 || ((x+ones)|x)&highs != 0 {
			return true
		}
		if i == len(b)-8 {
			return false
		}
	}
}

// badValue reports a CR, LF or NUL in v, which would end a header line.
func badValue(v string) bool {
	b := unsafe.Slice(unsafe.StringData(v), len(v)) // read only
	if len(b) < 8 {
		for _, c := range b {
			if c == '\r' || c == '\n' || c == 0 {
				return true
			}
		}
		return false
	}
	for i := 0; ; i += 8 {
		i = min(i, len(b)-8) // as in badName
		x := binary.LittleEndian.Uint64(b[i:])
		cr, lf := x^(ones*'\r'), x^(ones*'\n')
		if ((x-ones)&^x|(cr-ones)&^cr|(lf-ones)&^lf)&highs != 0 {
			return true
		}
		if i == len(b)-8 {
			return false
		}
	}
}

// getConn returns an idle connection that is still open and has nothing
// waiting on it, or dials one. Every checkout peeks at the socket
// (alive), one system call: bytes that arrived while the connection sat
// idle answer no request (net/http drops such a connection too), and
// taken for the next request's answer they would be its answer, whatever
// the request. A server that closed the connection is found out here
// rather than by a failed exchange.
//
// With deferPeek (the request's body can be had again), a plain TCP
// connection is handed out unpeeked (unchecked) and peeked at its
// request's first write instead, the same one system call: the armed
// write (armed_unix.go) clears the poller's readiness before it writes, so
// a close that came between a checkout's peek and that reset would raise
// no readiness the answer's wait could see, and a server that closed its
// half of an idle connection and read on would have the exchange wait
// until its deadline. A connection found dead then fails with
// errIdleDead before any byte went out, and RoundTrip takes the next one.
//
// A connection idle for longer than IdleConnTimeout is closed, not taken:
// the sweep that closes it comes once per IdleConnTimeout, so up to twice
// that late, and a middlebox in front of the provider (a NAT, a cloud load
// balancer) that forgot the idle flow sends no FIN for the peek to find.
func (t *Transport) getConn(ctx context.Context, key connKey, host string, deferPeek bool) (*conn, error) {
	var now time.Time
	for {
		c := t.popIdle(key)
		if c == nil {
			break
		}
		if now.IsZero() {
			now = time.Now()
		}
		if now.Sub(c.idleAt) <= t.idleTimeout() && c.drained() && (deferPeek && c.armable || c.alive()) {
			c.reused = true
			c.unchecked = deferPeek && c.armable
			return c, nil
		}
		c.nc.Close()
	}
	return t.dial(ctx, key, host)
}

// drained reports whether none of an idle connection's input is held on
// this side of the socket, where the liveness peek (alive) cannot see it:
// not in the reader's buffer, nor, on TLS, decrypted or read from the
// socket inside the TLS connection. A record may carry more than a body
// read straight into the caller's slice took (an upstream that sent past
// its Content-Length), and what it left there was the next request's
// answer, whatever that request was. A read of the TLS connection while
// the socket under it is probing (probeConn) returns what it holds and
// never reads the socket; net/http's Transport reads ahead on every idle
// connection to the same end. A post-handshake message it finds (a session
// ticket) is handled, not taken for bytes. The probe allocates nothing,
// where a read under a deadline in the past allocated the net package's
// timeout error on every checkout.
func (c *conn) drained() bool {
	if c.br.Buffered() != 0 {
		return false
	}
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	c.under.probing = true
	n, err := tc.Read(c.probe[:])
	c.under.probing = false
	return n == 0 && err == errProbe
}

// probeConn is the socket under a TLS connection. While probing (drained,
// on a pooled connection nothing else reads), a read of it fails at once
// with errProbe, which crypto/tls takes for a temporary error: the
// connection stays usable, and the read of it returns.
type probeConn struct {
	net.Conn
	probing bool
}

func (p *probeConn) Read(b []byte) (int, error) {
	if p.probing {
		return 0, errProbe
	}
	return p.Conn.Read(b)
}

// probeError is errProbe's type: temporary, so crypto/tls does not keep
// it as the connection's error.
type probeError struct{}

func (probeError) Error() string   { return "h1: nothing held" }
func (probeError) Timeout() bool   { return true }
func (probeError) Temporary() bool { return true }

var errProbe error = probeError{}

// deferredPeek makes the liveness peek getConn deferred (unchecked), once,
// before the request's first byte goes out the usual way: errIdleDead when
// the connection is closed or has bytes waiting.
func (c *conn) deferredPeek() error {
	if !c.unchecked {
		return nil
	}
	c.unchecked = false
	if !c.alive() {
		return errIdleDead
	}
	return nil
}

func (t *Transport) popIdle(key connKey) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.idle[key]
	if len(list) == 0 {
		return nil
	}
	c := list[len(list)-1]
	list[len(list)-1] = nil
	t.idle[key] = list[:len(list)-1]
	return c
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleConnTimeout > 0 {
		return t.IdleConnTimeout
	}
	return 90 * time.Second
}

// putIdle keeps c for the next request to its host, most recent last, and
// closes connections idle for longer than IdleConnTimeout.
func (t *Transport) putIdle(c *conn) {
	now := time.Now()
	c.idleAt = now
	maxIdle := t.MaxIdleConnsPerHost
	if maxIdle <= 0 {
		maxIdle = 256
	}
	var stale []*conn
	t.mu.Lock()
	if t.idle == nil {
		t.idle = make(map[connKey][]*conn)
	}
	list := t.idle[c.key]
	list, stale = expire(list, now, t.idleTimeout(), stale)
	if len(list) >= maxIdle {
		stale = append(stale, c)
	} else {
		list = append(list, c)
	}
	t.idle[c.key] = list
	if !t.sweeping {
		t.sweeping = true
		time.AfterFunc(t.idleTimeout(), t.sweep)
	}
	t.mu.Unlock()
	for _, s := range stale {
		s.nc.Close()
	}
}

// expire moves the connections of list (oldest first) idle for longer than
// idleFor at now to stale.
func expire(list []*conn, now time.Time, idleFor time.Duration, stale []*conn) ([]*conn, []*conn) {
	n := 0
	for n < len(list) && now.Sub(list[n].idleAt) > idleFor {
		n++
	}
	if n == 0 {
		return list, stale
	}
	stale = append(stale, list[:n]...)
	clear(list[:n])
	return append(list[:0], list[n:]...), stale
}

// dropDead moves the connections of list that are no longer alive (their
// server closed them, or sent bytes nobody asked for) to stale. Pooled
// connections belong to the pool alone, so the caller's lock suffices.
func dropDead(list []*conn, stale []*conn) ([]*conn, []*conn) {
	n := 0
	for _, c := range list {
		if c.drained() && c.alive() {
			list[n] = c
			n++
		} else {
			stale = append(stale, c)
		}
	}
	clear(list[n:])
	return list[:n], stale
}

// sweep closes idle connections past IdleConnTimeout, and those their
// server has closed meanwhile (the liveness peek), so a provider nobody
// calls any more does not keep sockets in CLOSE-WAIT; it runs while any
// connection is idle, once per IdleConnTimeout.
func (t *Transport) sweep() {
	now := time.Now()
	var stale []*conn
	t.mu.Lock()
	left := 0
	for k, list := range t.idle {
		list, stale = expire(list, now, t.idleTimeout(), stale)
		list, stale = dropDead(list, stale)
		if len(list) == 0 {
			delete(t.idle, k)
		} else {
			t.idle[k] = list
		}
		left += len(list)
	}
	t.sweeping = left > 0
	if t.sweeping {
		time.AfterFunc(t.idleTimeout(), t.sweep)
	}
	t.mu.Unlock()
	for _, s := range stale {
		s.nc.Close()
	}
}

// CloseIdleConnections closes every idle connection, the Fallback's too.
// Connections in use are left to finish their exchange.
func (t *Transport) CloseIdleConnections() {
	if f, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.nc.Close()
		}
	}
}

func (t *Transport) dial(ctx context.Context, key connKey, host string) (*conn, error) {
	dial := t.DialContext
	if dial == nil {
		dial = defaultDialer.DialContext
	}
	nc, err := dial(ctx, "tcp", key.addr)
	if err != nil {
		return nil, err
	}
	c := &conn{t: t, key: key, nc: nc}
	c.abort = c.abortIO
	c.aw.c = c
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	// The armed write goes round nc's Write: only a plain TCP connection
	// of the net package's own, never a type that wraps or embeds one (its
	// Write may count, limit or fail on purpose), nor TLS (set below).
	_, c.armable = nc.(*net.TCPConn)
	if key.tls {
		cfg := &tls.Config{}
		if t.TLSClientConfig != nil {
			cfg = t.TLSClientConfig.Clone()
		}
		if cfg.ClientSessionCache == nil {
			// Resumed sessions make a provider's new connections one round
			// trip cheaper; net/http's default transport keeps none.
			t.tlsOnce.Do(func() { t.sessions = tls.NewLRUClientSessionCache(64) })
			cfg.ClientSessionCache = t.sessions
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		cfg.NextProtos = []string{"http/1.1"}
		c.under.Conn = nc
		tc := tls.Client(&c.under, cfg)
		hsTimeout := t.TLSHandshakeTimeout
		if hsTimeout <= 0 {
			hsTimeout = 5 * time.Second
		}
		hctx, cancel := context.WithTimeout(ctx, hsTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			// Nothing of the request has been written (ErrNotSent).
			return nil, fmt.Errorf("h1: TLS handshake with %s: %w (%w)", key.addr, err, ErrNotSent)
		}
		c.nc = tc
		c.armable = false
	}
	c.rd = headLimiter{c: c, left: -1}
	c.br = bufio.NewReaderSize(&c.rd, 8<<10)
	return c, nil
}

// headLimiter reads from its connection; while left is not negative, at
// most left bytes more, then errHeadTooLarge. It lives in the conn, so the
// bound costs no allocation per exchange.
type headLimiter struct {
	c    *conn
	left int64 // -1: no bound (a body is being read)
	// seen, while net/http reads a head, sees its bytes as they are read
	// (roundTrip's framing check).
	seen *httpwire.HostLine
}

func (r *headLimiter) Read(p []byte) (int, error) {
	if r.left < 0 {
		return r.c.nc.Read(p)
	}
	if r.left == 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.c.nc.Read(p)
	r.left -= int64(n)
	if r.seen != nil {
		r.seen.Write(p[:n])
	}
	return n, err
}

var defaultDialer = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}

// roundTrip writes req on c and reads the response head. On an error the
// caller closes c.
func (c *conn) roundTrip(ctx context.Context, req *http.Request, out *outgoing) (*http.Response, error) {
	stop := afterFunc(ctx, c.abort)
	c.writer, c.cutWrite = nil, false
	if err := c.writeRequest(req, out); err != nil {
		stop()
		return nil, fmt.Errorf("h1: write request: %w: %w", errNotSent, err)
	}
	// The heads are read under maxHead; the bound is lifted once the final
	// head is in (the body is bounded by its framing and the caller). On an
	// error the connection is closed, so the bound need not be lifted.
	c.rd.left = maxHead
	// The first byte is awaited on its own: a connection that ends before it
	// never started an answer, and only then may the request be resent.
	if _, err := c.br.Peek(1); err != nil {
		stop()
		if err == io.EOF || errors.Is(err, syscall.ECONNRESET) {
			err = fmt.Errorf("%w: %w", errNothingRead, err)
		}
		return nil, c.endWriter(fmt.Errorf("h1: read response: %w", err))
	}
	// The answer and the body wrapping it, allocated at once: the final
	// head read here is the one returned (an interim one httpwire leaves
	// to net/http), so nothing of x is read into twice.
	x := new(exchange)
	for interim := 0; ; interim++ {
		resp, plain := x.resp.Read(c.br, req, maxPlainHead)
		var err error
		if !plain {
			// http.ReadResponse drops a Transfer-Encoding (and the
			// Content-Length beside one) from the head, and joins a
			// folded line to the one before: whether it had them is
			// read off the head's bytes as they pass, the buffered ones
			// first. A plain head has one framing only, and no fold.
			c.framing = httpwire.HostLine{}
			buffered, _ := c.br.Peek(c.br.Buffered())
			c.framing.Write(buffered)
			c.rd.seen = &c.framing
			resp, err = http.ReadResponse(c.br, req)
			c.rd.seen = nil
		}
		if err != nil {
			stop()
			return nil, c.endWriter(fmt.Errorf("h1: read response: %w", err))
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			// An interim answer (100 Continue, 103 Early Hints).
			if interim == max1xx {
				stop()
				return nil, c.endWriter(fmt.Errorf("h1: read response: more than %d interim (1xx) answers", max1xx))
			}
			continue
		}
		if w := c.writer; w != nil && !w.finished() && (resp.StatusCode >= 300 || resp.Close) {
			// The answer came while the body was still going out, and it
			// is no acceptance of it (a 413, a 429, a 401 sent before
			// the body was read) or the server is closing: as HTTP/1.1
			// has a client do (RFC 9112, connection management: cease
			// transmitting the body), the rest of it is not sent. The
			// write in progress fails at once and the writer ends; the
			// answer is read on, and the connection is not reused
			// (bodySent) unless the writer had written it all. The
			// body is closed too: a writer waiting in its Read (a
			// client's upload still coming) no deadline wakes.
			c.nc.SetWriteDeadline(aLongTimeAgo)
			c.cutWrite = true
			w.closeBody()
		}
		c.rd.left = -1 // before b may hand the connection back to the pool
		// After a 101 the connection speaks another protocol: it is never
		// pooled (as net/http, which hands it to the caller; this
		// transport requests no upgrade and closes it).
		//
		// Nor after an answer framed two ways: a Transfer-Encoding beside
		// a Content-Length, or on HTTP/1.0, where net/http frames the
		// body by the length and ignores the coding. RFC 9112 6.1 and 6.3:
		// a sign of response splitting, to be handled as an error, after
		// which the connection closes. Whoever in front of the upstream
		// took the other framing ends this answer elsewhere, and what
		// follows it on the connection, read as the next request's
		// answer, may be the rest of this one: another bot's. So too after
		// a head with obs-fold (a header line starting with a blank):
		// net/http joins it to the line before, where a hop in front may
		// read a header of its own, a folded " Transfer-Encoding:
		// chunked" after a Content-Length framing the answer as chunked
		// there and by the length here (RFC 9112 5.2 has a client accept
		// the fold, not keep the connection).
		ambiguous := !plain && (c.framing.Folded() || c.framing.TransferEncoding() && (c.framing.ContentLength() || !resp.ProtoAtLeast(1, 1)))
		keep := !resp.Close && !out.closing && resp.StatusCode != http.StatusSwitchingProtocols && !ambiguous
		b := &x.body
		b.c, b.rc, b.ctx, b.stop, b.keep = c, resp.Body, ctx, stop, keep
		if resp.Body == http.NoBody {
			b.eof.Store(true)
			b.finish(true)
		}
		resp.Body = b
		return resp, nil
	}
}

// closing reports whether req asks for its connection to end after the
// exchange: req.Close, or a Connection header with the "close" token.
func closing(req *http.Request) bool {
	return req.Close || len(req.Header["Connection"]) > 0 && httpguts.HeaderValuesContainsToken(req.Header["Connection"], "close")
}

// afterFunc is context.AfterFunc, except that a context with an AfterFunc
// method of its own (failover's attempts) is asked directly:
// context.AfterFunc would first wrap f in a cancelable context of its own,
// three allocations and a done channel per request.
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// abortIO makes what is blocked on the connection return at once, and every
// later read or write fail: how a cancelled request ends its exchange.
func (c *conn) abortIO() { c.nc.SetDeadline(aLongTimeAgo) }

// asyncBody is the body length above which the body is written on a
// goroutine of its own (bodyWriter) while the answer is awaited. A server
// may answer a large upload before reading it (413, 429, 401) and close
// the connection; written first, the body fails with a broken pipe and the
// caller gets a write error (to failover, a connect failure, retried)
// where the server's answer was waiting. Smaller bodies fit the socket's
// buffers, so their write does not wait on the server and they keep the
// single goroutine (and no allocation more), as a chat request's body does.
const asyncBody = 64 << 10

// writeRequest writes the request line, the headers and the body, then
// flushes: one write for a request that fits the buffer. A body over
// asyncBody is handed to a bodyWriter (c.writer) once the head is out.
func (c *conn) writeRequest(req *http.Request, out *outgoing) error {
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(&c.aw)
	c.aw.sent = false
	defer func() {
		c.aw.final = false
		bw.Reset(nil)
		writers.Put(bw)
	}()
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	if req.URL.Opaque != "" {
		bw.WriteString(req.URL.Opaque)
	} else {
		path := httpwire.EscapedPath(req.URL)
		if path == "" {
			path = "/"
		}
		bw.WriteString(path)
		if req.URL.RawQuery != "" || req.URL.ForceQuery {
			bw.WriteByte('?')
			bw.WriteString(req.URL.RawQuery)
		}
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(out.host)
	bw.WriteString("\r\n")
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Trailer":
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if out.closing {
		// The caller's Connection header is not passed on (hop-by-hop),
		// but its wish to close is, as net/http does for req.Close.
		bw.WriteString("Connection: close\r\n")
	}
	length := out.length
	if out.r == nil {
		length = 0
	}
	if length > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), length, 10))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	if length > asyncBody {
		if err := bw.Flush(); err != nil {
			return err
		}
		c.startBody(out, length)
		return nil
	}
	if length > 0 {
		if err := writeBody(bw, out.r, length, &c.lim); err != nil {
			return err
		}
	}
	c.aw.final = true // the flush writes what is left, and waits for the answer
	return bw.Flush()
}

// bodyWriter writes a request's body on a goroutine of its own while the
// caller reads the answer (asyncBody). It owns the body from the start:
// it closes it when it ends, as an http.RoundTripper may close a request's
// body after RoundTrip returned. It ends when the body is written or a
// write or a read of the body fails: the connection closed, or its write
// deadline moved into the past and the body closed (an early answer, a
// cancellation, a failed exchange: closeBody).
type bodyWriter struct {
	nc     net.Conn
	r      io.Reader
	c      io.Closer
	length int64
	lim    io.LimitedReader // writeBody's
	closed atomic.Bool      // the body was closed (closeBody)
	err    error            // set before done is closed
	done   chan struct{}    // closed when the writer has ended
}

// startBody starts writing out's body, length bytes, on a bodyWriter; the
// body's closing passes to it.
func (c *conn) startBody(out *outgoing, length int64) {
	w := &bodyWriter{nc: c.nc, r: out.r, c: out.c, length: length, done: make(chan struct{})}
	out.c = nil
	c.writer = w
	go w.run()
}

func (w *bodyWriter) run() {
	defer close(w.done)
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w.nc)
	err := writeBody(bw, w.r, w.length, &w.lim)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	w.closeBody()
	w.err = err
}

// closeBody closes the caller's body, once, and reports whether this call
// did. The writer does when it ends; an exchange that gives the body up
// does at once: a writer waiting in the body's Read (a client's upload
// still coming) is woken by no deadline on the connection, and was left
// so for ever, RoundTrip with it when it waited for the writer
// (endWriter). http.Request's contract has a Close unblock a Read
// waiting for input, as net/http's Transport relies on.
func (w *bodyWriter) closeBody() bool {
	if w.c == nil || !w.closed.CompareAndSwap(false, true) {
		return false
	}
	w.c.Close()
	return true
}

// finished reports whether the writer has ended.
func (w *bodyWriter) finished() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// bodySent reports whether the exchange's request went out whole: no
// bodyWriter, or one that has ended without an error. A connection whose
// body is still going out, or was cut, cannot carry another request. A
// server that read the whole body before it answered has it from the
// writer's last write, which may not have seen its goroutine end yet: the
// writer is given up to maxWriterWait to, as net/http's Transport gives
// its own (maxWriteWaitBeforeConnReuse) before it reuses a connection.
//
// A writer the answer cut (cutWrite) that had written everything before
// the cut ended without an error: the request went out whole, and the
// connection is reused, once its write deadline, still in the past, is
// cleared. Pooled with it, the next request's write failed at once: sent
// again on a new connection (a dial and a TLS handshake more) or, with a
// body that cannot be had again, failed as ErrReusedConnLost.
func (c *conn) bodySent() bool {
	w := c.writer
	if w == nil {
		return true
	}
	if !w.finished() {
		t := time.NewTimer(maxWriterWait)
		defer t.Stop()
		select {
		case <-w.done:
		case <-t.C:
			return false
		}
	}
	if w.err != nil {
		return false
	}
	if c.cutWrite {
		if c.nc.SetWriteDeadline(time.Time{}) != nil {
			return false
		}
		c.cutWrite = false
	}
	return true
}

// maxWriterWait bounds bodySent's wait for a writer to end.
const maxWriterWait = 50 * time.Millisecond

// endWriter is the error of an exchange that failed before its final
// answer, err, once its bodyWriter (if any) has ended: the connection's
// I/O is cut, so that the writer stops, and it is waited for, since the
// caller may resend the body or close it. A body that did not go out whole
// marks the error errNotSent: the server cannot have acted on the request.
// A writer that failed on its own (the server closed the connection) tells
// more than the read that followed; one cut here (the deadline, or its
// body closed while it waited in its Read), the read's error does.
func (c *conn) endWriter(err error) error {
	w := c.writer
	if w == nil {
		return err
	}
	c.writer = nil
	c.abortIO()
	cut := !w.finished() && w.closeBody()
	<-w.done
	switch {
	case w.err == nil:
		return err
	case cut, errors.Is(w.err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w (%w)", err, errNotSent)
	default:
		return fmt.Errorf("h1: write request: %w: %w", errNotSent, w.err)
	}
}

// writeBody copies the request body, length bytes of it. A body in memory
// (a *bytes.Reader, or a type embedding one, as failover's is) that holds
// exactly length bytes is written straight from its slice; anything else
// (a bot's body passed on as it is read, a body wrapped by io.NopCloser)
// is copied as io.CopyN copies it, through lim, where io.CopyN would
// allocate its limit for every request. lim lets go of r after.
func writeBody(bw *bufio.Writer, r io.Reader, length int64, lim *io.LimitedReader) error {
	if m, ok := r.(interface {
		io.WriterTo
		Len() int
	}); ok && int64(m.Len()) == length {
		if n, err := m.WriteTo(bw); err != nil {
			return fmt.Errorf("request body: %d of %d bytes: %w", n, length, err)
		}
		return nil
	}
	*lim = io.LimitedReader{R: r, N: length}
	n, err := io.Copy(bw, lim)
	*lim = io.LimitedReader{}
	if n == length {
		return nil
	}
	if err == nil {
		err = io.EOF // as io.CopyN: the body ended short
	}
	return fmt.Errorf("request body: %d of %d bytes: %w", n, length, err)
}

// exchange is an answer as roundTrip returns it: the response httpwire
// reads (or, from net/http, allocated apart) and the body wrapping its own.
type exchange struct {
	resp httpwire.Response
	body body
}

// body is a response body that returns its connection to the pool at EOF.
// Close may race with Read (a caller aborting a stream): whichever ends the
// body first decides, and a connection is never pooled unless its body was
// read to the end.
type body struct {
	c    *conn
	rc   io.ReadCloser
	ctx  context.Context
	stop func() bool
	keep bool
	done atomic.Bool
	eof  atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done.Load() {
		if b.eof.Load() {
			return 0, io.EOF
		}
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof.Store(true)
		b.finish(true)
	case err != nil:
		b.finish(false)
		if b.ctx.Err() != nil {
			err = context.Cause(b.ctx)
		}
	}
	return n, err
}

var errBodyClosed = errors.New("h1: read on closed response body")

// Close ends the body; unless it was read to its end the connection is
// closed, since what is left of the answer cannot be skipped cheaply.
func (b *body) Close() error {
	b.finish(false)
	return nil
}

func (b *body) finish(eof bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	// stop reports false when the cancellation already poisoned the
	// connection's deadline.
	if eof && b.stop() && b.keep && b.c.bodySent() {
		b.c.t.putIdle(b.c)
		return
	}
	b.stop()
	w := b.c.writer
	if w != nil {
		w.closeBody() // a writer still waiting in its Read ends with the connection
	}
	if eof && w == nil {
		// An answer read to its end, to a request written whole before
		// it was awaited: the close is an orderly one (TLS says
		// close_notify), the socket's buffer holding nothing of ours.
		b.c.nc.Close()
		return
	}
	b.c.drop()
}

// drop closes a connection whose exchange was given up or whose request
// may not have gone out whole: at once, and on TLS without the
// close_notify alert tls.Conn.Close writes first, waiting up to 5 s for the
// socket to take it. A socket whose buffer is full of request bytes the
// server is not reading (an upload it answered early, or stopped taking)
// takes none, and the exchange ended 5 s late: a cancelled attempt's
// RoundTrip, or the early answer's last Read. The socket under TLS is
// closed first, so the alert's write fails at once, as net/http's
// Transport closes such a connection while its writer is still in a write
// (which makes tls.Conn.Close skip the alert).
func (c *conn) drop() {
	if c.under.Conn != nil {
		c.under.Conn.Close()
	}
	c.nc.Close()
}
