package h1

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/paygate/paygate/internal/httpwire"
	"golang.org/x/net/http/httpguts"
)

// bufferBeforeHead is how much of a body is held before the head is sent: an
// answer that ends within it goes out with a Content-Length, in one write
// with its head. A chat completion is well under it; a stream flushes
// earlier.
const bufferBeforeHead = 4 << 10

// response is the http.ResponseWriter of one request.
type response struct {
	c       *conn
	req     *http.Request
	cancel  context.CancelCauseFunc // ends req's context; the watcher reaches it through conn.cancel
	header  http.Header
	status  int   // 0 until the handler decides
	cl      int64 // Content-Length the head declares; -1 none
	written int64 // body bytes the handler wrote
	// buf holds body bytes not yet given to the connection: before the head
	// (to send a Content-Length when the answer ends within it) and, when
	// chunked, until the next flush, so that a flush sends one chunk however
	// many writes made it (an SSE event is three).
	buf     []byte
	sent    bool // the head is in the connection's buffer
	chunked bool
	noBody  bool // HEAD, or a status without a body
	done    bool // the handler returned
	reqBody requestBody
	// closeAfter: the connection ends with this answer (Connection: close,
	// HTTP/1.0, a body shorter than its Content-Length).
	closeAfter bool
}

// exchange is one request as the server reads it, and its writer: one
// allocation, whether httpwire reads the head into req or net/http reads
// it apart.
type exchange struct {
	req httpwire.Request
	w   response
}

// init makes w the writer of one request. Responses are not pooled: a
// handler's goroutine that writes after the handler returned must find a
// finished response, not another request's.
func (w *response) init(c *conn, req *http.Request) {
	*w = response{c: c, req: req, header: make(http.Header, 4), cl: -1, noBody: req.Method == http.MethodHead}
	w.reqBody.c = c
	c.head = nil
}

var errFinished = errors.New("h1: write after the handler returned")

// Header returns the header map the handler sets. As with net/http, what
// it changes after WriteHeader is not sent; but the head goes out later
// (with the first bytes of the body, to send a Content-Length), so the map
// as it stood is copied when the handler asks for it after WriteHeader
// and before the head is sent (kept in the conn, which serves one request
// at a time): a copy per answer at WriteHeader, as net/http makes, would
// cost every answer allocations. (A handler that
// kept the map from before WriteHeader and changes it after, without
// calling Header again, still changes the head.)
func (w *response) Header() http.Header {
	if w.status != 0 && !w.sent && w.c.head == nil {
		w.c.head = w.header.Clone()
	}
	return w.header
}

func (w *response) WriteHeader(code int) {
	if w.status != 0 || w.done {
		return
	}
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		// An interim answer (103 Early Hints); 100 Continue is the
		// server's to send. None goes to an HTTP/1.0 client (RFC 9110
		// 15.2: a server MUST NOT send it one), which would take it for
		// the final answer.
		if code != http.StatusContinue && code != http.StatusSwitchingProtocols && w.req.ProtoAtLeast(1, 1) {
			w.c.bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n")
			writeHeaders(w.c.bw, w.header)
			w.c.bw.WriteString("\r\n")
			w.c.bw.Flush()
		}
		return
	}
	w.status = code
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.noBody = true
	}
	if v := httpwire.Field(w.header, "Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.cl = n
		} else {
			w.header.Del("Content-Length")
		}
	}
}

func (w *response) Write(p []byte) (int, error) {
	if w.done {
		return 0, errFinished
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.c.werr != nil {
		return 0, w.c.werr
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.sent {
		if len(w.buf)+len(p) <= bufferBeforeHead {
			w.hold(p)
			return len(p), nil
		}
		w.sendHead(false, p)
	}
	w.body(p)
	if w.c.werr != nil {
		return 0, w.c.werr
	}
	return len(p), nil
}

// hold appends p to buf, which lives in the connection's buffer: the
// connection serves one request at a time.
func (w *response) hold(p []byte) {
	if w.buf == nil {
		if w.c.hold == nil {
			w.c.hold = make([]byte, 0, bufferBeforeHead)
		}
		w.buf = w.c.hold[:0]
	}
	w.buf = append(w.buf, p...)
}

// body writes p after the head: straight on with a Content-Length, into the
// pending chunk when chunked.
func (w *response) body(p []byte) {
	switch {
	case len(p) == 0 || w.noBody:
	case !w.chunked:
		w.c.bw.Write(p)
	case len(w.buf)+len(p) <= bufferBeforeHead:
		w.hold(p)
	default:
		w.emitChunk()
		if len(p) > bufferBeforeHead {
			w.writeChunk(p)
		} else {
			w.hold(p)
		}
	}
}

// emitChunk frames the pending bytes as one chunk.
func (w *response) emitChunk() {
	if len(w.buf) > 0 {
		w.writeChunk(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *response) writeChunk(p []byte) {
	bw := w.c.bw
	var hex [16]byte
	bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
	bw.WriteString("\r\n")
	bw.Write(p)
	bw.WriteString("\r\n")
}

// sendHead writes the status line and the headers, then the body held so
// far. final: the handler returned, so the held body is all of it.
func (w *response) sendHead(final bool, next []byte) {
	w.sent = true
	h := w.header
	if w.c.head != nil {
		h = w.c.head // as it stood at WriteHeader
	}
	is11 := w.req.ProtoAtLeast(1, 1)
	head := w.req.Method == http.MethodHead
	if w.req.Close || !is11 || httpguts.HeaderValuesContainsToken(h["Connection"], "close") || w.reqBody.err != nil || w.c.s.closing.Load() {
		w.closeAfter = true
	}
	if w.reqBody.unframed() {
		// The body is unread and the server will not read it whole after
		// the answer (over maxDrain, or chunked and the handler still
		// running; finish reads a chunked one first): decided now, so that
		// the answer says the connection closes.
		w.closeAfter = true
	}
	if w.reqBody.expect {
		// "100 Continue" is owed and can no longer be sent: the answer has
		// begun. The client may or may not send the body now, so the
		// connection cannot be read further; as net/http, say so here.
		// A later read of the body reads without a 100.
		w.reqBody.expect = false
		w.closeAfter = true
	}
	// As net/http: a body without a Content-Type is sniffed from its first
	// bytes, unless it is encoded.
	sniff := w.buf
	if len(sniff) == 0 {
		sniff = next
	}
	if _, ok := h["Content-Type"]; !ok && len(sniff) > 0 && bodyAllowed(w.status) && len(h["Content-Encoding"]) == 0 && len(h["Transfer-Encoding"]) == 0 {
		h.Set("Content-Type", http.DetectContentType(sniff))
	}
	switch {
	case !bodyAllowed(w.status):
	case w.cl >= 0:
	case final:
		w.cl = int64(len(w.buf))
		if head && w.cl == 0 {
			w.cl = -1 // nothing written: the length of a GET is unknown
		}
	case head:
		// No body follows a HEAD answer; its length is unknown.
	case is11:
		w.chunked = true
	default:
		w.closeAfter = true // HTTP/1.0: the body ends with the connection
	}
	bw := w.c.bw
	if is11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(w.status), 10))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(w.status))
	bw.WriteString("\r\n")
	writeHeaders(bw, h)
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(httpDate(time.Now()))
		bw.WriteString("\r\n")
	}
	if w.cl >= 0 && bodyAllowed(w.status) {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), w.cl, 10))
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.closeAfter && is11 {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if !w.chunked {
		// Held bytes follow the head; chunked, they stay pending.
		if !w.noBody {
			bw.Write(w.buf)
		}
		w.buf = nil
	}
}

// skipHeader are the headers the server writes itself from the framing it
// chose.
func skipHeader(k string) bool {
	return k == "Content-Length" || k == "Transfer-Encoding" || k == "Connection"
}

// headerNewlineToSpace is net/http's: a line break in a header value
// becomes a space.
var headerNewlineToSpace = strings.NewReplacer("\r", " ", "\n", " ")

// writeHeaders writes h as net/http does: invalid names are dropped and line
// breaks in values become spaces, so no value can start a header or a body of
// its own.
func writeHeaders(bw *bufio.Writer, h http.Header) {
	for k, vs := range h {
		if skipHeader(k) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			// Two byte searches: ContainsAny built a set of the two
			// bytes for every value of every answer.
			if strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0 {
				v = headerNewlineToSpace.Replace(v)
			}
			bw.WriteString(strings.TrimSpace(v))
			bw.WriteString("\r\n")
		}
	}
}

// bodyAllowed reports whether an answer with status may have a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// FlushError sends the head (chunked, unless the handler set a
// Content-Length) and everything written so far. http.ResponseController
// finds it.
func (w *response) FlushError() error {
	if w.done {
		return errFinished
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		w.sendHead(false, nil)
	}
	if w.chunked {
		w.emitChunk()
	}
	if err := w.c.bw.Flush(); err != nil {
		return err
	}
	return w.c.werr
}

// Flush is http.Flusher's, for handlers that assert it.
func (w *response) Flush() { _ = w.FlushError() }

// SetWriteDeadline and SetReadDeadline serve http.ResponseController.
// The handler's write deadline stands in place of WriteStallTimeout's until
// it returns.
func (w *response) SetWriteDeadline(t time.Time) error {
	w.c.wfixed = true
	return w.c.nc.SetWriteDeadline(t)
}

func (w *response) SetReadDeadline(t time.Time) error {
	// Through the conn, which keeps track of its read deadline; a handler
	// calls it on the connection's goroutine, before it returns. The
	// handler's deadline then bounds the rest of its body in place of
	// BodyStallTimeout's.
	w.c.lr.wait = 0
	return w.c.setReadDeadline(t)
}

// finish completes the answer after the handler returned and flushes it.
func (w *response) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case !w.sent:
		if w.reqBody.left < 0 && !w.closeAfter {
			// As net/http: a chunked body the handler left is read
			// before the head, up to maxDrain, since only then is it
			// known whether the connection can carry another request.
			w.reqBody.discard()
		}
		w.sendHead(true, nil)
	case w.chunked:
		w.emitChunk()
		w.c.bw.WriteString("0\r\n\r\n")
	}
	if w.cl >= 0 && w.written < w.cl && !w.noBody {
		w.closeAfter = true // the client waits for bytes that will not come
	}
	w.done = true
	w.c.bw.Flush()
}

// httpDate is the Date header's value for now, formatted once per second:
// formatting it for every answer cost 1.5% of a non-stream request under
// load. The value is shared and must not be modified.
func httpDate(now time.Time) []byte {
	sec := now.Unix()
	if d := lastDate.Load(); d != nil && d.sec == sec {
		return d.value
	}
	d := &dateValue{sec: sec, value: now.UTC().AppendFormat(make([]byte, 0, len(http.TimeFormat)), http.TimeFormat)}
	lastDate.Store(d)
	return d.value
}

type dateValue struct {
	sec   int64
	value []byte
}

var lastDate atomic.Pointer[dateValue]
