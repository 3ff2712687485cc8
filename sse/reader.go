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

// DefaultMaxEventSize bounds one event's data: 32 MiB, what a non-stream
// chat completion may hold (failover's Options.MaxResponseBytes), since an
// image model streams its picture as a base64 data URL in one chunk
// (OpenRouter's Gemini image models), several MiB; the SDKs read an event
// of any size. A runaway line does not exhaust memory.
const DefaultMaxEventSize = 32 << 20

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
	// ends is the stream's line-end convention, known from its first line
	// end (see readLine).
	ends int8
	// ahead holds where the lines of the next event end in the buffered
	// bytes (each past its LF), as scanBuffered found them when it
	// answered yes; nAhead counts them, 0 when not known (more lines than
	// ahead holds, no yes, or a stream of lone CRs, whose lines
	// scanBuffered finds with lineEnd and does not note). Next takes
	// those lines from the buffer without searching them again: a relay
	// asks Buffered before each Next, and each line was searched twice
	// for its end.
	// aheadBuf is the buffered bytes they are in: nothing reads from the
	// connection between Buffered and Next.
	ahead    [4]int32
	nAhead   int8
	aheadBuf []byte
	// started is set once the first line was read: a byte order mark is
	// stripped from that line only.
	started bool
	// pendingCR: the last line ended with a CR that was the last byte at
	// hand; a LF that follows belongs to that line end (CRLF), and is not a
	// blank line.
	pendingCR bool
	// spill holds a line longer than the bufio buffer. An event of one
	// long data line takes it as its data, and gives it data's buffer.
	spill []byte
	// err is a read error held back while what came whole before it is
	// returned (Next, readLine); every later read returns it.
	err error
	// first is data's first backing array, in the Reader's own allocation:
	// one allocation per stream, not two.
	first [1024]byte
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8<<10) }}

const (
	// longLine is the most a data line may take and still be copied to
	// the event's data from the spill buffer; the event of a longer one
	// takes the spill buffer itself. It is above the bufio buffer's 8
	// KiB, so that a line this long can only be in the spill buffer.
	longLine = 64 << 10
	// keepCap: buffers grown past it are not kept after their event
	// (dropLong). Twice longLine, so that those a line of up to longLine
	// grew by append are kept and reused.
	keepCap = 2 * longLine
)

// NewReader reads events from r. Call Release when done to recycle its buffer.
func NewReader(r io.Reader) *Reader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	rd := &Reader{br: br, max: DefaultMaxEventSize}
	rd.data = rd.first[:0]
	return rd
}

// Release returns the Reader's buffer to the pool; the Reader is unusable after.
func (r *Reader) Release() {
	if r.br != nil {
		r.br.Reset(nil)
		readerPool.Put(r.br)
		r.br, r.nAhead, r.aheadBuf = nil, 0, nil
	}
	r.dropLong()
}

// dropLong lets go of the buffers a long line grew past keepCap, once the
// event they held is consumed: the 32 MiB of an image model's picture were
// otherwise held to the stream's end, with text or more pictures after.
// Smaller ones are kept and reused.
func (r *Reader) dropLong() {
	if cap(r.data) > keepCap {
		r.data = r.first[:0]
	}
	if cap(r.name) > keepCap {
		r.name = nil
	}
	if cap(r.spill) > keepCap {
		r.spill = nil
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
// after their last "data:" line. So is one whose data lines came before a
// read error: the connection closed without the chunked body's terminator
// (io.ErrUnexpectedEOF, a server that exits right after its last write), or
// a wait cut short; the error comes with the next call. A finish chunk
// that arrived whole was otherwise lost with the connection's end, and a
// complete answer taken for a cut one. A last line without its line end
// is taken at the end of input, io.EOF or io.ErrUnexpectedEOF alike.
func (r *Reader) Next() (Event, error) {
	ahead := r.nAhead
	r.buffered, r.nAhead = 0, 0
	r.data = r.data[:0]
	r.name = r.name[:0]
	if cap(r.data) > keepCap || cap(r.name) > keepCap || cap(r.spill) > keepCap {
		r.dropLong()
	}
	r.hasData = false
	if ahead > 0 {
		// Buffered found the event whole: its lines, found then, are
		// taken without a second search for their ends.
		if end, err := r.takeAhead(ahead); err != nil {
			return Event{}, err
		} else if end {
			return Event{Data: r.data, Name: r.name}, nil
		}
	}
	for {
		line, err := r.readLine()
		if err != nil {
			if r.hasData {
				r.err = err
				return Event{Data: r.data, Name: r.name}, nil
			}
			return Event{}, err
		}
		if end, err := r.take(line); err != nil {
			return Event{}, err
		} else if end {
			return Event{Data: r.data, Name: r.name}, nil
		}
	}
}

// takeAhead takes the n lines whose ends scanBuffered found in the
// buffered bytes (r.ahead), each as readLine would have returned it, and
// consumes them; it stops early, as Next does, at a line that ends the
// event or fails. Those lines end an event, as scanBuffered saw.
func (r *Reader) takeAhead(n int8) (end bool, err error) {
	b, from := r.aheadBuf, 0
	for _, to := range r.ahead[:n] {
		end, err = r.take(trimEOL(b[from:to]))
		from = int(to)
		if end || err != nil {
			break
		}
	}
	_, _ = r.br.Discard(from)
	return end, err
}

// take adds one line (without its line end) to the event Next reads, and
// reports whether it ends an event that carries data. On an error the
// event is not to be returned.
func (r *Reader) take(line []byte) (end bool, err error) {
	if len(line) == 0 {
		if r.hasData {
			return true, nil
		}
		r.name = r.name[:0]
		return false, nil
	}
	if line[0] == ':' {
		r.comments++
		return false, nil
	}
	field, value := line, []byte(nil)
	i := len(dataField) // a data line, nearly every line, needs no search for its colon
	if len(line) <= i || string(line[:i+1]) != "data:" {
		i = bytes.IndexByte(line, ':')
	}
	if i >= 0 {
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
			return false, fmt.Errorf("%w: over %d bytes", ErrTooLarge, r.max)
		}
		if !r.hasData && len(value) > longLine {
			// A line this long is in r.spill (it is longer than the
			// bufio buffer): the event takes the spill buffer rather
			// than a copy of it, and gives the spill its own buffer
			// unless that is r.first. An image model's picture, tens
			// of MiB in one line, was held twice.
			old := r.data
			r.data, r.spill = value, nil
			if &old[:1][0] != &r.first[0] {
				r.spill = old
			}
		} else {
			r.data = append(r.data, value...)
		}
		r.hasData = true
	case "event":
		r.name = append(r.name[:0], value...)
	}
	// "id", "retry" and unknown fields are ignored: OpenAI-style streams do
	// not use them and the bot gets paygate's own stream.
	return false, nil
}

// Err is the read error Next holds back after the event it returned last,
// when that event was dispatched without the blank line that ends an event
// because the input ended or failed there (see Next); nil while the stream
// goes on. At io.EOF the stream ended as its server meant; at any other
// error (io.ErrUnexpectedEOF: the connection closed without the chunked
// body's terminator) the event's last line may be cut short. A caller that
// takes an event as more than data it checks itself (a forwarded stream's
// first event, which commits the caller to the stream unparsed) must not
// take such a one as whole.
func (r *Reader) Err() error { return r.err }

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

// Line-end conventions (Reader.ends).
const (
	endsUnknown int8 = iota // no line end read yet
	endsLF                  // the first line ended with LF or CRLF
	endsCR                  // the first line ended with a lone CR
)

// scanBuffered parses the buffered bytes as Next would, without consuming.
func (r *Reader) scanBuffered() bool {
	n := r.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := r.br.Peek(n) // never blocks: n bytes are buffered
	hasData := false
	switch r.ends {
	case endsUnknown:
		// Next has not returned an event yet; "no" is always safe.
		return false
	case endsCR:
		if r.pendingCR && b[0] == '\n' {
			b = b[1:]
		}
	}
	lines, used := 0, 0
	for {
		var line []byte
		if r.ends == endsLF {
			i := bytes.IndexByte(b[used:], '\n')
			if i < 0 {
				return false
			}
			line, used = trimEOL(b[used:used+i+1]), used+i+1
			if lines < len(r.ahead) && r.err == nil {
				r.ahead[lines] = int32(used)
			}
			lines++
		} else {
			end, next, _ := lineEnd(b, true)
			if end < 0 {
				return false
			}
			line, b = b[:end], b[next:]
		}
		switch {
		case len(line) == 0:
			if hasData {
				if r.ends == endsLF && lines <= len(r.ahead) && r.err == nil {
					r.nAhead, r.aheadBuf = int8(lines), b
				}
				return true
			}
		case line[0] == ':':
		case len(line) >= len(dataField) && string(line[:len(dataField)]) == "data" && (len(line) == len(dataField) || line[len(dataField)] == ':'):
			hasData = true
		}
	}
}

var (
	dataField = []byte("data")
	bom       = []byte("\ufeff")
)

// readLine returns one line without its terminator. The slice aliases the
// bufio buffer (or r's spill buffer for long lines) until the next read.
//
// The standard ends a line with CRLF, LF or a lone CR. Finding the first of
// two bytes costs a second scan of every line, so the Reader learns the
// stream's convention from its first line end: after LF or CRLF (every
// provider seen) it reads with one LF scan per line as bufio does, and a
// lone CR later in such a stream stays in the line; after a lone CR
// (scanLine) it honours all three. Only a stream that mixes the two, which
// no server does, is read otherwise than the standard says.
func (r *Reader) readLine() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.ends != endsLF {
		return r.scanLine()
	}
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.spill = append(r.spill[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(r.spill) > r.max {
				return nil, fmt.Errorf("%w: line over %d bytes", ErrTooLarge, r.max)
			}
			line, err = r.br.ReadSlice('\n')
			r.spill = append(r.spill, line...)
		}
		line = r.spill
	}
	if err != nil {
		if endOfInput(err) && len(line) > 0 {
			r.err = err
			return trimEOL(line), nil
		}
		return nil, err
	}
	return trimEOL(line), nil
}

// endOfInput reports a read error that ends the input: io.EOF, or the
// connection's end before the chunked body's terminator.
func endOfInput(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// scanLine reads a line that may end with CRLF, LF or a lone CR: the
// stream's first lines, and all lines of a stream that uses lone CRs. It
// finds line ends in the buffered bytes itself, because bufio's ReadSlice
// would wait for a LF that such a stream never sends. The stream's first
// line end sets r.ends.
func (r *Reader) scanLine() ([]byte, error) {
	if r.pendingCR {
		r.pendingCR = false
		if b, err := r.br.Peek(1); err == nil {
			lf := b[0] == '\n'
			if lf {
				_, _ = r.br.Discard(1)
			}
			if r.ends == endsUnknown {
				r.ends = endsCR
				if lf {
					r.ends = endsLF
					return r.readLine()
				}
			}
		}
	}
	spilled := false
	b, err := r.br.Peek(r.br.Buffered())
	if len(b) == 0 {
		b, err = r.br.Peek(1)
	}
	for from := 0; ; {
		if end, next, cr := lineEnd(b[from:], r.ends == endsCR); end >= 0 {
			end, next = from+end, from+next
			line := b[:end]
			if r.ends == endsUnknown && !cr {
				r.ends = endsLF
				if b[end] == '\r' && next == end+1 {
					r.ends = endsCR
				}
			}
			if spilled {
				r.spill = append(r.spill, line...)
				line = r.spill
			}
			_, _ = r.br.Discard(next)
			r.pendingCR = cr
			return r.firstLine(line), nil
		}
		if err != nil {
			if endOfInput(err) && (len(b) > 0 || spilled && len(r.spill) > 0) {
				line := b
				if spilled {
					r.spill = append(r.spill, b...)
					line = r.spill
				}
				_, _ = r.br.Discard(len(b))
				r.err = err
				return r.firstLine(line), nil
			}
			return nil, err
		}
		if len(b) == r.br.Size() {
			// The buffer is full with no line end in it: spill.
			if !spilled {
				spilled, r.spill = true, r.spill[:0]
			}
			if len(r.spill)+len(b) > r.max {
				return nil, fmt.Errorf("%w: line over %d bytes", ErrTooLarge, r.max)
			}
			r.spill = append(r.spill, b...)
			_, _ = r.br.Discard(len(b))
			b, err = r.br.Peek(1)
			from = 0
			continue
		}
		// Wait for one byte more than is at hand; b[:from] holds no line end.
		from = len(b)
		b, err = r.br.Peek(len(b) + 1)
	}
}

// lineEnd finds the first line end in b (CRLF, LF or a lone CR): the line
// is b[:end] and the next one starts at b[next]; end is -1 when b holds no
// line end. cr reports a CR that is b's last byte, whose LF, if it is one,
// has not arrived yet. crFirst scans for the CR first: in a stream of lone
// CRs a first scan for LF would cover all the buffered bytes at every line.
func lineEnd(b []byte, crFirst bool) (end, next int, cr bool) {
	var i int // the first CR, -1 if none comes before the first LF
	if crFirst {
		i = bytes.IndexByte(b, '\r')
		before := b
		if i >= 0 {
			before = b[:i]
		}
		if lf := bytes.IndexByte(before, '\n'); lf >= 0 {
			return lf, lf + 1, false
		}
		if i < 0 {
			return -1, 0, false
		}
	} else {
		lf := bytes.IndexByte(b, '\n')
		line := b
		if lf >= 0 {
			line = b[:lf]
		}
		if i = bytes.IndexByte(line, '\r'); i < 0 {
			if lf < 0 {
				return -1, 0, false
			}
			return lf, lf + 1, false
		}
	}
	switch {
	case i+1 == len(b):
		return i, i + 1, true
	case b[i+1] == '\n':
		return i, i + 2, false
	}
	return i, i + 1, false
}

// firstLine strips a byte order mark from the stream's first line, as the
// standard says; some servers write one before their first event.
func (r *Reader) firstLine(line []byte) []byte {
	if !r.started {
		r.started = true
		line = bytes.TrimPrefix(line, bom)
	}
	return line
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
