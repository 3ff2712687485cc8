// Package httpwire reads the plain HTTP/1.1 message heads that paygate's
// bots' listener (proxy/h1) and upstream transport (failover/h1) meet on
// every request, with a few allocations where net/http's parser makes a dozen
// or more, and leaves every other head to net/http.
//
// The load benchmark's profile put net/http's http.ReadRequest and
// http.ReadResponse at 12% of paygate's CPU per request, most of it
// net/textproto building the header map one string and one slice at a time.
// A head is read here only when it is plain: all of it already buffered,
// CRLF line ends, token header names, printable ASCII values, at most one
// Content-Length, exactly one Host on a request, and none of the headers whose rules are subtle
// (Trailer, Pragma; Transfer-Encoding on a request). A response's body may
// be chunked, as every provider's stream is: a single "Transfer-Encoding:
// chunked" and no Content-Length. For such a head the result equals
// net/http's field by field, and its body reads as net/http's does
// (FuzzReadRequest and FuzzReadResponse compare the two); anything else,
// including every malformed head, goes to net/http with nothing consumed,
// so its validation and errors stay the only ones.
package httpwire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// maxName is the longest header name read here; longer ones go to net/http.
const maxName = 64

// tchar are the bytes of an RFC 9110 token, the only ones a header name or
// a method may have here.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// fieldByte are the bytes a header value may have here: printable ASCII
// and the blanks.
var fieldByte = func() (t [256]bool) {
	for c := ' '; c <= '~'; c++ {
		t[c] = true
	}
	t['\t'] = true
	return t
}()

// common are canonical header names interned so that reading them
// allocates nothing.
var common = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Content-Encoding", "Content-Length", "Content-Type", "Cookie", "Date",
		"Host", "Keep-Alive", "Openai-Organization", "Openai-Processing-Ms", "Openai-Version",
		"Origin", "Referer", "Server", "Set-Cookie", "User-Agent", "Vary", "Via",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Paygate-Session", "X-Request-Id",
		"X-Stainless-Arch", "X-Stainless-Lang", "X-Stainless-Os", "X-Stainless-Package-Version",
		"X-Stainless-Retry-Count", "X-Stainless-Runtime", "X-Stainless-Runtime-Version",
		"X-Stainless-Timeout", "X-Stainless-Read-Timeout", "X-Wechat-Openid",
		// A provider's answer, in lower case behind its CDN (OpenAI's).
		"Access-Control-Expose-Headers", "Alt-Svc", "Cf-Cache-Status", "Cf-Ray", "Openai-Project",
		"Strict-Transport-Security", "X-Envoy-Upstream-Service-Time",
		"X-Ratelimit-Limit-Requests", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Requests",
		"X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens",
	} {
		m[k] = k
	}
	return m
}()

var crlfcrlf = []byte("\r\n\r\n")

// bufferedHead returns the head at the start of br's buffer, through the
// empty line that ends it, when all of it is buffered and it is at most max
// bytes long; nil otherwise. It reads nothing from br's source.
func bufferedHead(br *bufio.Reader, max int) []byte {
	b, _ := br.Peek(br.Buffered())
	i := bytes.Index(b, crlfcrlf)
	if i < 0 || i+len(crlfcrlf) > max {
		return nil
	}
	return b[:i+len(crlfcrlf)]
}

// plainHead returns the buffered head of br (bufferedHead), as a string
// too, and its start line, unless it is not all buffered, or its body is
// framed by a Transfer-Encoding and te is false. The string is the head's
// one allocation: the header values are substrings of it.
func plainHead(br *bufio.Reader, maxHead int, te bool) (head []byte, s, line string, ok bool) {
	head = bufferedHead(br, maxHead)
	if head == nil || !te && framedByTE(head) {
		return nil, "", "", false
	}
	s = string(head)
	return head, s, s[:strings.Index(s, "\r\n")], true
}

// framedByTE reports whether a line of head starts with the
// Transfer-Encoding header's name, in any case: such a request head goes
// to net/http, and is known to before anything is allocated for it.
func framedByTE(head []byte) bool {
	const name = "transfer-encoding"
	for i := bytes.IndexByte(head, '\n'); i >= 0 && i+1 < len(head); {
		line := head[i+1:]
		if len(line) >= len(name) && (line[0] == 't' || line[0] == 'T') && bytes.EqualFold(line[:len(name)], []byte(name)) {
			return true
		}
		j := bytes.IndexByte(line, '\n')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// parseFields reads the header lines of s, which starts after the start
// line's CRLF and ends with the empty line's, as net/textproto would for a
// plain head; false when a line is not plain. It walks each line once. Names
// already in canonical form and all values are substrings of s; other
// names are interned when common. Each name's first value is one element of
// inline, the message's own array (its allocation), and past its end of a
// single slice of the lines left.
func parseFields(s string, inline []string) (http.Header, bool) {
	// The lines, less the empty one: counted by their LF, one byte
	// counted in bulk, where counting CRLF searched for it an Index call
	// at a time. A bare LF is no plain line and fails below, but it is
	// counted: a byte where a header line takes four, so a head of LFs
	// sized the map for four times the lines a head can hold, 400 KB of
	// map for a 4 KB request that net/http reads with 5 KB. Past the
	// inline values (a head longer than a chat request's), the lines are
	// counted by their CRLF, which a bare LF does not end.
	n := strings.Count(s, "\n") - 1
	if n > len(inline) {
		n = strings.Count(s, "\r\n") - 1
	}
	h := make(http.Header, n)
	if n == 0 {
		return h, true
	}
	// The lines past inline get a slice of their own, made when the
	// inline values are used up: the whole count in a new slice left the
	// message's array unused for a head longer than it (a provider's
	// answer behind a CDN has 25 lines).
	strs := inline[:min(n, len(inline))]
	spill := max(n-len(inline), 0)
	var canon [maxName]byte
	i := 0
	for {
		if i == len(s)-2 {
			return h, true // the empty line that ends s
		}
		// The name, canonicalised as it is checked.
		start, same, upper := i, true, true
		for ; i < len(s) && s[i] != ':'; i++ {
			c := s[i]
			if !tchar[c] || i-start >= maxName {
				return nil, false
			}
			switch {
			case upper && 'a' <= c && c <= 'z':
				c -= 'a' - 'A'
				same = false
			case !upper && 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
				same = false
			}
			canon[i-start] = c
			upper = c == '-'
		}
		if i == start || i == len(s) {
			return nil, false
		}
		name := s[start:i]
		i++ // the colon
		// The value: printable ASCII and tabs up to the CRLF, trimmed.
		// The CR is found by a byte search, and the bytes before it
		// checked by a table alone: a byte at a time, telling blanks from
		// the rest as it went, the walk cost twice as much.
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		vstart := i
		cr := strings.IndexByte(s[i:], '\r')
		if cr < 0 {
			return nil, false
		}
		v := s[i : i+cr]
		for j := 0; j < len(v); j++ {
			if !fieldByte[v[j]] {
				return nil, false
			}
		}
		i += cr
		vend := i
		for vend > vstart && (s[vend-1] == ' ' || s[vend-1] == '\t') {
			vend--
		}
		if i+1 >= len(s) || s[i+1] != '\n' {
			return nil, false
		}
		i += 2
		value := s[vstart:vend]
		key := name
		if !same {
			var ok bool
			if key, ok = common[string(canon[:len(name)])]; !ok {
				key = string(canon[:len(name)])
			}
		}
		if vv := h[key]; vv == nil && len(strs)+spill > 0 {
			if len(strs) == 0 {
				strs, spill = make([]string, spill), 0
			}
			vv, strs = strs[:1:1], strs[1:]
			vv[0] = value
			h[key] = vv
		} else {
			h[key] = append(vv, value)
		}
	}
}

// contentLength is a single Content-Length's value; ok is false for none
// that is plain (more than one, not all digits, or too long to be sure it
// fits).
func contentLength(h http.Header) (n int64, present, ok bool) {
	vv := h["Content-Length"]
	switch len(vv) {
	case 0:
		return 0, false, true
	case 1:
	default:
		return 0, true, false
	}
	v := vv[0]
	if len(v) == 0 || len(v) > 18 {
		return 0, true, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, true, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true, true
}

// subtle reports headers whose handling is left to net/http. A request's
// Transfer-Encoding never gets this far (plainHead declines its head); a
// response's is checked by ReadResponse.
func subtle(h http.Header) bool {
	_, tr := h["Trailer"]
	_, pr := h["Pragma"]
	return tr || pr
}

// ReadRequest reads a plain request head from br as http.ReadRequest would,
// when all of it (at most maxHead bytes) is already buffered. ok is false,
// with nothing consumed, for any other head: the caller then calls
// http.ReadRequest. A head read here has exactly one Host line, which may
// be empty (req.Host ""): like http.ReadRequest, ReadRequest removes it from
// the header, and a server must tell an empty Host, which RFC 9112 allows,
// from none, which it refuses (HostLine does for a head net/http reads).
func ReadRequest(br *bufio.Reader, maxHead int) (req *http.Request, ok bool) {
	return readRequest(br, maxHead, nil)
}

// Read is ReadRequest reading into m rather than a new allocation. The
// request it returns points into m, which must not be read into again
// while it is in use.
func (m *Request) Read(br *bufio.Reader, maxHead int) (req *http.Request, ok bool) {
	return readRequest(br, maxHead, m)
}

// readRequest is ReadRequest into m, or a new Request when m is nil.
func readRequest(br *bufio.Reader, maxHead int, m *Request) (req *http.Request, ok bool) {
	head, s, line, ok := plainHead(br, maxHead, false)
	if !ok {
		return nil, false
	}
	method, rest, _ := strings.Cut(line, " ")
	target, proto, _ := strings.Cut(rest, " ")
	if proto != "HTTP/1.1" || method == "" || method == "CONNECT" || method == "PRI" || len(target) == 0 || target[0] != '/' {
		return nil, false
	}
	for i := 0; i < len(method); i++ {
		if c := method[i]; c < 'A' || c > 'Z' {
			return nil, false
		}
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c > '~' {
			return nil, false
		}
	}
	if m == nil {
		m = new(Request) // the request, its URL, its body and its header's values in one allocation
	}
	h, ok := parseFields(s[len(line)+2:], m.values[:])
	if !ok || len(h["Host"]) != 1 || subtle(h) {
		return nil, false
	}
	n, _, ok := contentLength(h)
	if !ok {
		return nil, false
	}
	if !requestURL(&m.url, target) {
		return nil, false
	}
	req = &m.req
	*req = http.Request{
		Method:        method,
		URL:           &m.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: n,
		Host:          Field(h, "Host"),
		RequestURI:    target,
		Close:         httpguts.HeaderValuesContainsToken(h["Connection"], "close"),
	}
	delete(h, "Host") // as http.ReadRequest: the host is req.Host
	if _, err := br.Discard(len(head)); err != nil {
		return nil, false // cannot happen: the head is buffered
	}
	req.Body = http.NoBody
	if n > 0 {
		m.body = Body{r: br, n: n, closing: req.Close}
		req.Body = &m.body
	}
	return req, true
}

// requestURL is url.ParseRequestURI(target) for an origin-form target. A
// path of unreserved characters and slashes alone, the usual API path, is
// its own URL.Path: nothing to unescape, nothing url.ParseRequestURI would
// keep as RawPath.
func requestURL(u *url.URL, target string) bool {
	if !PlainPath(target) {
		p, err := url.ParseRequestURI(target)
		if err != nil {
			return false
		}
		*u = *p
		return true
	}
	*u = url.URL{Path: target}
	return true
}

// PlainPath reports whether p holds unreserved characters (RFC 3986 2.3)
// and slashes alone, as the usual API path does: such a path is its own
// escaped form (url.URL.EscapedPath) and its own unescaped one.
func PlainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if !pathChar[p[i]] {
			return false
		}
	}
	return true
}

// EscapedPath is u.EscapedPath(), without its walks (RawPath validated,
// unescaped and compared, or Path escaped) for a plain path (PlainPath)
// that RawPath spells the same or leaves unset: the request line of every
// upstream request writes one, and failover's provider URLs always set
// RawPath.
func EscapedPath(u *url.URL) string {
	if (u.RawPath == "" || u.RawPath == u.Path) && PlainPath(u.Path) {
		return u.Path
	}
	return u.EscapedPath()
}

var pathChar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("/-._~", byte(c)) >= 0
	}
	return t
}()

// HostLine reports whether a request head has a Host header line, for a
// head that http.ReadRequest reads: it removes the header, and leaves
// req.Host empty both for an empty Host and for none. Write the bytes of
// the stream the head is read from to it in order, from the head's first
// byte, in pieces of any size; bytes after the head's empty line are
// ignored. It matches a line that starts with "host:" in any case, as
// net/textproto would read it (CRLF or bare LF line ends); a head
// net/textproto refuses is refused whatever it says.
//
// It also keeps the first Host line's value (Value): for an absolute-form
// target http.ReadRequest sets req.Host from the target and drops the
// header unchecked, while RFC 9112 3.2 (and net/http's server) refuse a
// malformed Host header whatever the target says.
//
// And it notes a Content-Length line the same way (ContentLength):
// http.ReadRequest drops the header of a chunked request, whose connection
// RFC 9112 6.1 has the server close when the head had both. A
// Transfer-Encoding line too (TransferEncoding), which http.ReadRequest
// and http.ReadResponse drop from the header, and ignore on HTTP/1.0: RFC
// 9112 6.1 has a connection that carried such a message closed. Response
// heads are scanned the same way (the status line is no header).
//
// And it notes obs-fold (Folded): a header line that starts with a blank,
// which net/textproto joins to the line before, where a proxy in front may
// read a header of its own.
type HostLine struct {
	n       int  // bytes of the current line seen, up to len("transfer-encoding:")+1
	cr      bool // the current line so far is a lone CR
	other   bool // the current line does not start with "host:"
	notCL   bool // the current line does not start with "content-length:"
	notTE   bool // the current line does not start with "transfer-encoding:"
	found   bool
	cl      bool // a Content-Length line was seen
	te      bool // a Transfer-Encoding line was seen
	started bool // the start line has ended: each line from here is a header line
	folded  bool // a header line started with a blank
	done    bool // the empty line that ends the head was seen
	inValue bool // in the first Host line, after its colon, or in a line that continues it
	// folds: the line that just ended was the first Host line or one
	// continuing it, so a line starting with a blank continues it in turn
	// (obs-fold, which net/textproto joins to the value).
	folds bool
	value []byte // that line's rest and its continuation lines, as sent, each after a LF
}

// Write scans p; it never fails.
func (h *HostLine) Write(p []byte) (int, error) {
	const name, clName, teName = "host:", "content-length:", "transfer-encoding:"
	for i := 0; i < len(p) && !h.done; i++ {
		c := p[i]
		if c == '\n' {
			h.done = h.n == 0 || h.n == 1 && h.cr
			h.folds = h.inValue
			if h.inValue {
				h.value = append(h.value, '\n')
			}
			h.n, h.cr, h.other, h.notCL, h.notTE, h.inValue = 0, false, false, false, false, false
			h.started = true
			continue
		}
		if h.n == 0 && h.started && (c == ' ' || c == '\t') {
			h.folded = true
		}
		if h.n == 0 && h.folds && (c == ' ' || c == '\t') {
			// A continuation of the Host line: its bytes are the value's.
			h.n, h.other, h.notCL, h.notTE, h.inValue = 1, true, true, true, true
		}
		h.folds = false
		if h.inValue {
			h.value = append(h.value, c)
			continue
		}
		if h.n < len(name) && !h.other {
			if !matchFold(c, name[h.n]) {
				h.other = true
			} else if h.n == len(name)-1 {
				h.inValue = !h.found
				h.found = true
			}
		}
		if h.n < len(clName) && !h.notCL {
			if !matchFold(c, clName[h.n]) {
				h.notCL = true
			} else if h.n == len(clName)-1 {
				h.cl = true
			}
		}
		if h.n < len(teName) && !h.notTE {
			if !matchFold(c, teName[h.n]) {
				h.notTE = true
			} else if h.n == len(teName)-1 {
				h.te = true
			}
		}
		h.cr = h.n == 0 && c == '\r'
		if h.n <= len(teName) {
			h.n++
		}
	}
	return len(p), nil
}

// matchFold reports whether c is want, a lower-case letter in either case.
func matchFold(c, want byte) bool {
	return c == want || 'a' <= want && want <= 'z' && c|0x20 == want
}

// ContentLength reports whether a Content-Length line was seen before the
// head's end.
func (h *HostLine) ContentLength() bool { return h.cl }

// TransferEncoding reports whether a Transfer-Encoding line was seen
// before the head's end.
func (h *HostLine) TransferEncoding() bool { return h.te }

// Folded reports whether a header line before the head's end started with
// a space or a tab (obs-fold, RFC 9112 5.2).
func (h *HostLine) Folded() bool { return h.folded }

// Found reports whether a Host line was seen before the head's end.
func (h *HostLine) Found() bool { return h.found }

// Value is the first Host line's value, as net/textproto reads it: its
// surrounding blanks and the line's CR trimmed, and each continuation line
// (obs-fold), trimmed too, joined to it with a space; "" when none was
// found. A folded value has a blank in it, which no valid host has. It is
// built in one buffer: joined a line at a time, each join copying all
// before it, a Host line folded 200000 times (an 800 KB head, which anyone
// reaching the listener may send) took 9 s of CPU.
func (h *HostLine) Value() string {
	rest := strings.TrimSuffix(string(h.value), "\n")
	var b strings.Builder
	b.Grow(len(rest))
	for i := 0; ; i++ {
		l, more, ok := strings.Cut(rest, "\n")
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.Trim(l, " \t\r"))
		if !ok {
			break
		}
		rest = more
	}
	return strings.TrimLeft(b.String(), " \t")
}

// Request and Response hold a message and the parts it points to, so that
// reading one allocates them at once: values holds the header's values
// (parseFields) for a head of up to inlineValues header lines, as a chat
// request's and a provider's answer are. A caller may allocate them with
// what it keeps beside the message (Request.Read, Response.Read): proxy/h1
// its response writer, failover/h1 its wrapper of the body.
type Request struct {
	req    http.Request
	url    url.URL
	body   Body
	values [inlineValues]string
}

type Response struct {
	resp   http.Response
	body   Body
	te     [1]string // resp.TransferEncoding of a chunked answer
	values [inlineValues]string
}

// inlineValues is how many header values a message holds in its own
// allocation: those of the go-openai, Python and Node SDKs' requests
// (8 to 17 lines) and of a provider's non-stream answer fit.
const inlineValues = 20

// ReadResponse reads a plain response head to req from br as
// http.ReadResponse would, when all of it (at most maxHead bytes) is
// already buffered and its body is framed by a Content-Length or chunked.
// ok is false, with nothing consumed, for any other head: the caller then
// calls http.ReadResponse.
func ReadResponse(br *bufio.Reader, req *http.Request, maxHead int) (resp *http.Response, ok bool) {
	return readResponse(br, req, maxHead, nil)
}

// Read is ReadResponse reading into m rather than a new allocation. The
// response it returns points into m, which must not be read into again
// while it is in use.
func (m *Response) Read(br *bufio.Reader, req *http.Request, maxHead int) (resp *http.Response, ok bool) {
	return readResponse(br, req, maxHead, m)
}

// readResponse is ReadResponse into m, or a new Response when m is nil.
func readResponse(br *bufio.Reader, req *http.Request, maxHead int, m *Response) (resp *http.Response, ok bool) {
	if req.Method == http.MethodHead {
		return nil, false
	}
	head, s, line, ok := plainHead(br, maxHead, true)
	if !ok {
		return nil, false
	}
	proto, status, _ := strings.Cut(line, " ")
	if proto != "HTTP/1.1" || len(status) < 3 || (len(status) > 3 && status[3] != ' ') {
		return nil, false
	}
	code := 0
	for i := 0; i < 3; i++ {
		c := status[i]
		if c < '0' || c > '9' {
			return nil, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, false
	}
	for i := 3; i < len(status); i++ {
		if c := status[i]; (c < ' ' && c != '\t') || c > '~' {
			return nil, false
		}
	}
	if m == nil {
		m = new(Response) // the response, its body and its header's values in one allocation
	}
	h, ok := parseFields(s[len(line)+2:], m.values[:])
	if !ok || subtle(h) {
		return nil, false
	}
	var n int64
	te, chunked := h["Transfer-Encoding"]
	if chunked {
		// net/http's rules in the one case every stream meets: a single
		// "chunked" (anything else it refuses), and no Content-Length
		// beside it (which it would drop; a sign of a confused sender).
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") || len(h["Content-Length"]) != 0 {
			return nil, false
		}
		delete(h, "Transfer-Encoding") // as net/http: it is resp.TransferEncoding
		n = -1
	} else {
		var present bool
		n, present, ok = contentLength(h)
		if !ok || !present {
			return nil, false // an unframed body ends with the connection: net/http's case
		}
	}
	closing := httpguts.HeaderValuesContainsToken(h["Connection"], "close")
	if closing {
		delete(h, "Connection") // as net/http (shouldClose with removeCloseHeader)
	}
	resp = &m.resp
	*resp = http.Response{
		Status:        status,
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: n,
		Close:         closing,
		Request:       req,
	}
	if _, err := br.Discard(len(head)); err != nil {
		return nil, false
	}
	resp.Body = http.NoBody
	switch {
	case chunked:
		m.te[0] = "chunked"
		resp.TransferEncoding = m.te[:]
		m.body = Body{r: br, chunks: httputil.NewChunkedReader(br), trailer: &resp.Trailer, closing: closing}
		resp.Body = &m.body
	case n > 0:
		m.body = Body{r: br, n: n, closing: closing}
		resp.Body = &m.body
	}
	return resp, true
}

// Body is a message body framed by a Content-Length or chunked, read from
// the connection's buffered reader. It behaves as net/http's body does:
// the read that completes a framed body returns io.EOF with its bytes, a
// connection that ends early is io.ErrUnexpectedEOF, a chunked body's
// trailer is read (into the response's Trailer) when its last chunk is,
// Close reads what is left unless the connection closes next, and a read
// after Close fails.
type Body struct {
	mu      sync.Mutex
	r       *bufio.Reader
	n       int64 // bytes left of a framed body
	closing bool  // the connection closes after this message
	sawEOF  bool
	closed  bool
	// A chunked body: chunks decodes it (net/http's own chunked reader),
	// and trailer is where its trailer goes, nil once it has been read.
	chunks  io.Reader
	trailer *http.Header
}

func (b *Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

func (b *Body) readLocked(p []byte) (n int, err error) {
	if b.sawEOF {
		return 0, io.EOF
	}
	if b.chunks != nil {
		return b.readChunks(p)
	}
	if b.n <= 0 {
		err = io.EOF
	} else {
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err = b.r.Read(p)
		b.n -= int64(n)
	}
	if err == io.EOF {
		b.sawEOF = true
		if b.n > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	if err == nil && n > 0 && b.n == 0 {
		err = io.EOF
		b.sawEOF = true
	}
	return n, err
}

func (b *Body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	var err error
	// A chunked body is read to its end even when the connection closes
	// next, as net/http does: its trailer may still be wanted.
	if !b.sawEOF && (!b.closing || b.chunks != nil) {
		_, err = io.Copy(io.Discard, lockedBody{b})
	}
	b.closed = true
	return err
}

// readChunks is readLocked for a chunked body, net/http's body.readLocked
// for one: the last chunk's io.EOF comes once the trailer after it is read,
// and a trailer that cannot be read ends the body with its error, and any
// later read with http.ErrBodyReadAfterClose.
func (b *Body) readChunks(p []byte) (n int, err error) {
	n, err = b.chunks.Read(p)
	if err == io.EOF {
		b.sawEOF = true
		if b.trailer != nil {
			if e := readTrailer(b.r, b.trailer); e != nil {
				err = e
				b.closed = true // nor may the connection be reused
			}
			b.trailer = nil
		}
	}
	return n, err
}

var errTrailerEOF = errors.New("http: unexpected EOF reading trailer")

// readTrailer reads the trailer after a chunked body's last chunk into dst,
// as net/http does: the empty line alone is the usual case; a trailer must
// end within what the reader can buffer.
func readTrailer(r *bufio.Reader, dst *http.Header) error {
	buf, err := r.Peek(2)
	if len(buf) == 2 && buf[0] == '\r' && buf[1] == '\n' {
		_, _ = r.Discard(2)
		return nil
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	if !seeUpcomingDoubleCRLF(r) {
		return errors.New("http: suspiciously long trailer after chunked body")
	}
	hdr, err := textproto.NewReader(r).ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			return errTrailerEOF
		}
		return err
	}
	if *dst == nil {
		*dst = http.Header(hdr)
		return nil
	}
	maps.Copy(*dst, http.Header(hdr))
	return nil
}

// seeUpcomingDoubleCRLF reports whether r's buffer, filled as far as it
// goes, holds the end of a header section.
func seeUpcomingDoubleCRLF(r *bufio.Reader) bool {
	for size := 4; ; size++ {
		buf, err := r.Peek(size)
		if bytes.HasSuffix(buf, crlfcrlf) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// lockedBody reads b with its lock already held, for Close.
type lockedBody struct{ b *Body }

func (l lockedBody) Read(p []byte) (int, error) { return l.b.readLocked(p) }
