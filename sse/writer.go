package sse

import (
	"bytes"
	"io"
	"net/http"
)

// Writer writes events to a client and flushes each one, so nothing waits in a
// buffer while the provider is still thinking. A relay that knows the next
// event is already at hand (sse.Reader.Buffered) may Queue events and Flush
// once before it would wait: one write per burst instead of one per event.
type Writer struct {
	w       io.Writer
	rc      *http.ResponseController
	queued  bool // bytes written since the last flush
	flushed bool // flushed at least once
}

// NewWriter writes to w. When w is an http.ResponseWriter (or wraps one and
// implements Unwrap), every event is flushed through http.ResponseController.
func NewWriter(w io.Writer) *Writer {
	sw := &Writer{w: w}
	if rw, ok := w.(http.ResponseWriter); ok {
		sw.rc = http.NewResponseController(rw)
	}
	return sw
}

var (
	dataPrefix = []byte("data: ")
	space      = []byte(" ")
	eventEnd   = []byte("\n\n")
	doneEvent  = []byte("data: [DONE]\n\n")
)

// Data writes one "data:" event and flushes it (see Queue for data).
func (w *Writer) Data(data []byte) error {
	if err := w.Queue(data); err != nil {
		return err
	}
	return w.Flush()
}

// Queue writes one "data:" event without flushing it: the caller flushes
// before it next waits for anything. data is one JSON value (a chunk, an
// error object), and it always leaves on one "data:" line: its raw line
// breaks become spaces. In valid JSON a raw CR or LF can only be whitespace
// between tokens (inside a string it is escaped), so the value is the same;
// but an upstream may spread one event's JSON over several "data:" lines
// (the Reader joins them with "\n"), and sent on as several lines again it
// broke SDKs that parse one JSON document per "data:" line (go-openai:
// "unexpected end of JSON input"). A "\r" ends a line for a client (the SSE
// standard) and the Reader keeps one inside a line of a stream whose lines
// end in LF, so it is a space too.
func (w *Writer) Queue(data []byte) error {
	w.queued = true
	if _, err := w.w.Write(dataPrefix); err != nil {
		return err
	}
	hasCR := bytes.IndexByte(data, '\r') >= 0 // rare: one more scan, not a slower one
	for {
		var i int
		if hasCR {
			i = bytes.IndexAny(data, "\r\n")
		} else {
			i = bytes.IndexByte(data, '\n')
		}
		if i < 0 {
			break
		}
		if _, err := w.w.Write(data[:i]); err != nil {
			return err
		}
		if _, err := w.w.Write(space); err != nil {
			return err
		}
		data = data[i+1:]
	}
	if _, err := w.w.Write(data); err != nil {
		return err
	}
	_, err := w.w.Write(eventEnd)
	return err
}

// QueueLine is Queue for data the caller knows holds no CR or LF: the
// same bytes out, without Queue's two searches of data for line breaks
// (a relay's event whose validating pass saw none,
// failover.Response.EventOneLine). Data with a line break must go
// through Queue.
func (w *Writer) QueueLine(data []byte) error {
	w.queued = true
	if _, err := w.w.Write(dataPrefix); err != nil {
		return err
	}
	if _, err := w.w.Write(data); err != nil {
		return err
	}
	_, err := w.w.Write(eventEnd)
	return err
}

// Queued reports whether events were written since the last flush.
func (w *Writer) Queued() bool { return w.queued }

// Flushed reports whether anything was flushed yet: a relay sends its first
// events at once, whatever follows them in the buffer, because the time to
// the first chunk is what a user waits on.
func (w *Writer) Flushed() bool { return w.flushed }

// End writes the "[DONE]" sentinel without flushing it, for a handler that
// returns right after: the HTTP server flushes what is left when the handler
// returns, so [DONE] leaves in the same write as the end of the response
// (the chunked terminator) instead of one write before it. A client reads
// the two together anyway; this saves a system call and a wake-up of the
// client per stream.
func (w *Writer) End() error {
	w.queued = true
	_, err := w.w.Write(doneEvent)
	return err
}

// KeepAlive writes a blank line and flushes: bytes on an idle stream, so
// that the client (or a proxy in front of it) does not time out. Between
// events a blank line dispatches nothing in any SSE reader. It is not a
// comment (": keep-alive"): go-openai gathers every line that is not data
// into the text it parses when an error event comes, so a comment before
// an error event turned that error into a JSON syntax error.
func (w *Writer) KeepAlive() error {
	if _, err := w.w.Write(blankLine); err != nil {
		return err
	}
	return w.Flush()
}

var blankLine = []byte("\n")

// Flush pushes buffered bytes to the client.
func (w *Writer) Flush() error {
	w.queued, w.flushed = false, true
	if w.rc == nil {
		if f, ok := w.w.(interface{ Flush() error }); ok {
			return f.Flush()
		}
		return nil
	}
	return w.rc.Flush()
}
