package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Event is one dispatched event. Data and Name alias the Reader's buffers and
// are valid only until the next call to Next.
type Event struct {
	// Data is the event's data: its "data:" lines joined with "\n".
	Data []byte
	// Name is the "event:" field, usually empty for OpenAI-style streams.
	Name []byte
}

// IsDone reports whether the event is OpenAI's end-of-stream sentinel.
func (e Event) IsDone() bool { return bytes.Equal(e.Data, doneData) }

var doneData = []byte("[DONE]")

// ErrTooLarge is returned when one event exceeds the Reader's limit.
var ErrTooLarge = errors.New("sse: event too large")

// DefaultMaxEventSize bounds one event's data. A whole tool call in one chunk
// stays far below it; a runaway line does not exhaust memory.
const DefaultMaxEventSize = 4 << 20

// Reader parses an event stream. It is not safe for concurrent use.
type Reader struct {
	br       *bufio.Reader
	data     []byte
	name     []byte
	hasData  bool
	max      int
	comments int
	// buffered caches Buffered's answer until Next, the only thing that
	// consumes or reads: a relay asks before each Next and the Next after it
	// asks again, and the answer cannot change in between.
	buffered int8 // 0 unknown, 1 no, 2 yes
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8<<10) }}

// NewReader reads events from r. Call Release when done to recycle its buffer.
func NewReader(r io.Reader) *Reader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	return &Reader{br: br, data: make([]byte, 0, 1024), max: DefaultMaxEventSize}
}

// Release returns the Reader's buffer to the pool; the Reader is unusable after.
func (r *Reader) Release() {
	if r.br != nil {
		r.br.Reset(nil)
		readerPool.Put(r.br)
		r.br = nil
	}
}

// Comments counts the comment lines (": …") skipped so far. Providers send them
// as keep-alives (": OPENROUTER PROCESSING"); they are never passed on, because
// some SDKs mistake them for error text.
func (r *Reader) Comments() int { return r.comments }

// Next returns the next event that carries data. Events with no data lines (a
// lone "event:" or only comments) are skipped, as the standard says. At the end
// of input Next returns io.EOF; a final event not closed by a blank line is
// still dispatched first, because some providers close the connection right
// after their last "data:" line.
func (r *Reader) Next() (Event, error) {
	r.buffered = 0
	r.data = r.data[:0]
	r.name = r.name[:0]
	r.hasData = false
	for {
		line, err := r.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && r.hasData {
				return Event{Data: r.data, Name: r.name}, nil
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if r.hasData {
				return Event{Data: r.data, Name: r.name}, nil
			}
			r.name = r.name[:0]
			continue
		}
		if line[0] == ':' {
			r.comments++
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) { // no allocation: the compiler optimises this conversion
		case "data":
			if r.hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > r.max {
				return Event{}, fmt.Errorf("%w: over %d bytes", ErrTooLarge, r.max)
			}
			r.data = append(r.data, value...)
			r.hasData = true
		case "event":
			r.name = append(r.name[:0], value...)
		}
		// "id", "retry" and unknown fields are ignored: OpenAI-style streams do
		// not use them and the bot gets paygate's own stream.
	}
}

// Buffered reports whether the next event that carries data is already
// whole in the Reader's buffer, so that Next returns it without reading from
// the connection. A relay uses it to flush once per read rather than once per
// event: events that arrived together leave together, and none waits for the
// provider's next bytes. It parses as Next does (comment lines and data-less
// events do not count), without consuming anything.
func (r *Reader) Buffered() bool {
	if r.buffered != 0 {
		return r.buffered == 2
	}
	b := r.scanBuffered()
	r.buffered = 1
	if b {
		r.buffered = 2
	}
	return b
}

// scanBuffered parses the buffered bytes as Next would, without consuming.
func (r *Reader) scanBuffered() bool {
	n := r.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := r.br.Peek(n) // never blocks: n bytes are buffered
	hasData := false
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false
		}
		line := trimEOL(b[:i+1])
		b = b[i+1:]
		switch {
		case len(line) == 0:
			if hasData {
				return true
			}
		case line[0] == ':':
		case bytes.HasPrefix(line, dataField) && (len(line) == len(dataField) || line[len(dataField)] == ':'):
			hasData = true
		}
	}
}

var dataField = []byte("data")

// readLine returns one line without its terminator. The slice aliases the
// bufio buffer (or r's spill buffer for long lines) until the next read.
func (r *Reader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		spill := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(spill) > r.max {
				return nil, fmt.Errorf("%w: line over %d bytes", ErrTooLarge, r.max)
			}
			line, err = r.br.ReadSlice('\n')
			spill = append(spill, line...)
		}
		line = spill
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return trimEOL(line), nil
		}
		return nil, err
	}
	return trimEOL(line), nil
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
