package sse

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/heaptest"
)

func readAll(t testing.TB, r io.Reader) []string {
	t.Helper()
	sr := NewReader(r)
	defer sr.Release()
	var out []string
	for {
		ev, err := sr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, string(ev.Data))
	}
}

func TestReader(t *testing.T) {
	// Lines longer than longLine: their event takes the spill buffer itself
	// (TestReaderLongEventMemory).
	long, longer := strings.Repeat("x", longLine+1), strings.Repeat("y", 3*longLine)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"openai chunks", "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n", []string{`{"a":1}`, `{"b":2}`, "[DONE]"}},
		{"crlf line endings", "data: x\r\n\r\ndata: y\r\n\r\n", []string{"x", "y"}},
		{"no space after colon", "data:x\n\n", []string{"x"}},
		{"comments skipped", ": OPENROUTER PROCESSING\n\ndata: x\n\n: keep-alive\n\n", []string{"x"}},
		{"multi-line data joined", "data: a\ndata: b\n\n", []string{"a\nb"}},
		{"event and id fields ignored", "event: message\nid: 7\ndata: x\n\n", []string{"x"}},
		{"last event without blank line", "data: x\n\ndata: y", []string{"x", "y"}},
		{"empty data line is an event", "data:\n\n", []string{""}},
		{"fields that only start with data, and data with no colon", "dataX: 1\ndata\ndatum: 2\ndata: y\n\n", []string{"\ny"}},
		// The standard: a field named data with no colon has an empty
		// value; one space after the colon is stripped, not two; field
		// names are case-sensitive.
		{"one space stripped, no more", "data:x\ndata: x\ndata:  x\n\n", []string{"x\nx\n x"}},
		{"field names are case-sensitive", "Data: a\nDATA: b\ndata: c\n\n", []string{"c"}},
		{"a bare data line alone is an empty event", "data\n\n", []string{""}},
		{"blank lines only", "\n\n\n", nil},
		// The standard ends a line with CRLF, LF or a lone CR.
		{"lone cr line endings", "data: x\r\rdata: y\r\r", []string{"x", "y"}},
		{"mixed line endings", "data: a\rdata: b\n\r\ndata: c\r\n\rdata: d\n\n", []string{"a\nb", "c", "d"}},
		{"lone cr inside a multi-line event", ": c\rdata: a\r\ndata: b\r\r\n", []string{"a\nb"}},
		{"cr then lf split over reads", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}},
		// A stream that ended its first line with LF or CRLF is read with
		// one LF scan per line: a lone CR later in it stays in the line (see
		// Reader.readLine; no server mixes the two).
		{"lone cr after lf line ends stays in the line", "data: a\n\ndata: b\rc\n\n", []string{"a", "b\rc"}},
		// It also strips one U+FEFF at the start of the stream, and only there.
		{"byte order mark at the start", "\ufeffdata: x\n\ndata: y\n\n", []string{"x", "y"}},
		{"byte order mark before a comment", "\ufeff: hi\n\ndata: x\n\n", []string{"x"}},
		{"only one byte order mark stripped", "\ufeff\ufeffdata: x\n\ndata: y\n\n", []string{"y"}},
		{"byte order mark in data kept", "data: \ufeffx\n\n", []string{"\ufeffx"}},
		{"long line", "data: " + long + "\n\n", []string{long}},
		{"long line, crlf", "data: a\r\n\r\ndata: " + long + "\r\n\r\n", []string{"a", long}},
		{"long line, lone cr", "data: a\r\rdata: " + long + "\r\r", []string{"a", long}},
		{"long line then a short one", "data: " + long + "\ndata: b\n\n", []string{long + "\nb"}},
		{"short line then a long one", "data: a\ndata: " + long + "\n\n", []string{"a\n" + long}},
		{"two long lines", "data: " + long + "\ndata: " + longer + "\n\n", []string{long + "\n" + longer}},
		{"long events in a row", "data: " + long + "\n\ndata: " + longer + "\n\ndata: c\n\n", []string{long, longer, "c"}},
		{"long comment and event name", ": " + longer + "\nevent: " + longer + "\ndata: " + long + "\n\ndata: d\n\n", []string{long, "d"}},
		{"byte order mark before a long line", "\ufeffdata: " + long + "\n\n", []string{long}},
		{"long last line without its end", "data: a\n\ndata: " + long, []string{"a", long}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := readAll(t, strings.NewReader(tc.in))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("got %q; want %q", got, tc.want)
			}
			// The same stream one byte at a time must parse the same.
			got = readAll(t, iotest.OneByteReader(strings.NewReader(tc.in)))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("one byte at a time: got %q; want %q", got, tc.want)
			}
		})
	}
}

// TestReaderDispatchesBeforeAReadError: an event whose data lines came
// whole is dispatched when the read that would have brought its blank line
// fails, and the error comes with the next call; a last line without its
// line end is taken when the connection ends without the chunked body's
// terminator (io.ErrUnexpectedEOF) as at io.EOF. A line cut by any other
// error is not taken.
func TestReaderDispatchesBeforeAReadError(t *testing.T) {
	reset := errors.New("connection reset")
	tests := []struct {
		name string
		in   string
		err  error
		want []string
	}{
		{"blank line missing", "data: a\n\ndata: b\n", io.ErrUnexpectedEOF, []string{"a", "b", "err:" + io.ErrUnexpectedEOF.Error()}},
		{"line end missing", "data: a\n\ndata: b", io.ErrUnexpectedEOF, []string{"a", "b", "err:" + io.ErrUnexpectedEOF.Error()}},
		{"first line, line end missing", "data: b", io.ErrUnexpectedEOF, []string{"b", "err:" + io.ErrUnexpectedEOF.Error()}},
		{"crlf, blank line missing", "data: a\r\n\r\ndata: b\r\n", io.ErrUnexpectedEOF, []string{"a", "b", "err:" + io.ErrUnexpectedEOF.Error()}},
		{"another error, blank line missing", "data: a\n\ndata: b\n", reset, []string{"a", "b", "err:" + reset.Error()}},
		{"another error, line end missing", "data: a\n\ndata: b", reset, []string{"a", "err:" + reset.Error()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, src := range []io.Reader{
				io.MultiReader(strings.NewReader(tc.in), iotest.ErrReader(tc.err)),
				io.MultiReader(iotest.OneByteReader(strings.NewReader(tc.in)), iotest.ErrReader(tc.err)),
			} {
				sr := NewReader(src)
				var got []string
				for range 5 { // the error is returned again
					ev, err := sr.Next()
					if err != nil {
						got = append(got, "err:"+err.Error())
						continue
					}
					got = append(got, string(ev.Data))
				}
				sr.Release()
				want := append(tc.want, slices.Repeat(tc.want[len(tc.want)-1:], 5-len(tc.want))...)
				if !slices.Equal(got, want) {
					t.Errorf("got %q; want %q", got, want)
				}
			}
		})
	}
}

// TestReaderErr: Err is nil after an event ended by its blank line, and
// the held-back read error after one dispatched without it, so that a
// caller can tell an event that may be cut from a whole one.
func TestReaderErr(t *testing.T) {
	tests := []struct {
		in   string
		err  error
		want []error // Err after each event Next returns
	}{
		{"data: a\n\ndata: b\n\n", io.EOF, []error{nil, nil}},
		{"data: a\n\ndata: b\n", io.EOF, []error{nil, io.EOF}},
		{"data: a\n\ndata: {\"b\":", io.ErrUnexpectedEOF, []error{nil, io.ErrUnexpectedEOF}},
		{"data: a\r\n\r\ndata: b\r\n", io.ErrUnexpectedEOF, []error{nil, io.ErrUnexpectedEOF}},
	}
	for _, tc := range tests {
		sr := NewReader(io.MultiReader(strings.NewReader(tc.in), iotest.ErrReader(tc.err)))
		for i, want := range tc.want {
			if _, err := sr.Next(); err != nil {
				t.Fatalf("%q: event %d: %v", tc.in, i, err)
			}
			if got := sr.Err(); !errors.Is(got, want) || (got == nil) != (want == nil) {
				t.Errorf("%q: Err after event %d = %v; want %v", tc.in, i, got, want)
			}
		}
		sr.Release()
	}
}

// TestReaderLimitExactly: an event of exactly the limit is read, one byte
// more is ErrTooLarge, whether its data is one line (taken by the event
// whole above longLine) or several, whatever the line ends and the reads.
func TestReaderLimitExactly(t *testing.T) {
	const limit = 2 * longLine
	tooLarge := "err:" + ErrTooLarge.Error()
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		for _, tc := range []struct {
			name, data string
			want       string // the second event, after a short one
		}{
			{"one line at the limit", strings.Repeat("x", limit), strings.Repeat("x", limit)},
			{"one line over it", strings.Repeat("x", limit+1), tooLarge},
			{"two lines at the limit", strings.Repeat("x", limit-2) + eol + "data: y", strings.Repeat("x", limit-2) + "\ny"},
			{"two lines over it", strings.Repeat("x", limit-1) + eol + "data: y", tooLarge},
		} {
			in := "data: a" + eol + eol + "data: " + tc.data + eol + eol
			for _, src := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
				got := readAllMax(src, limit)
				if len(got) < 2 || got[0] != "a" || got[1] != tc.want && (tc.want != tooLarge || !strings.HasPrefix(got[1], tooLarge)) {
					t.Errorf("%s, line ends %q: got %.40q; want [a %.40q …]", tc.name, eol, got, tc.want)
				}
			}
		}
	}
}

func TestReaderLongLineAndLimit(t *testing.T) {
	long := strings.Repeat("x", 100<<10) // longer than the 8 KiB buffer
	got := readAll(t, strings.NewReader("data: "+long+"\n\n"))
	if len(got) != 1 || got[0] != long {
		t.Fatalf("long line: got %d events", len(got))
	}
	r := NewReader(strings.NewReader("data: " + strings.Repeat("y", 64) + "\n\n"))
	r.max = 16
	if _, err := r.Next(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v; want ErrTooLarge", err)
	}
}

func TestReaderCountsComments(t *testing.T) {
	r := NewReader(strings.NewReader(": a\n\n: b\ndata: x\n\n"))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Comments() != 2 {
		t.Errorf("got %d comments; want 2", r.Comments())
	}
}

func TestReaderBuffered(t *testing.T) {
	tests := []struct {
		name string
		in   string // all of it arrives in the first read
		want bool   // after the first event was read
	}{
		{"next event whole", "data: a\n\ndata: b\n\n", true},
		{"next event whole, crlf", "data: a\r\n\r\ndata: b\r\n\r\n", true},
		{"next event without a space", "data: a\n\ndata:b\n\n", true},
		{"next event cut", "data: a\n\ndata: b\n", false},
		{"next line cut", "data: a\n\ndata: b", false},
		{"nothing left", "data: a\n\n", false},
		{"only a comment left", "data: a\n\n: keep-alive\n\n", false},
		{"comment then a whole event", "data: a\n\n: keep-alive\n\ndata: b\n\n", true},
		{"an event without data", "data: a\n\nevent: ping\n\n", false},
		{"a field that only starts with data", "data: a\n\ndatum: x\n\n", false},
		{"a four-letter field that is not data", "data: a\n\ntime: 1\n\n", false},
		{"a field named data and more", "data: a\n\ndataX: 1\n\n", false},
		{"a data line without a colon", "data: a\n\ndata\n\n", true},
		{"the done sentinel", "data: a\n\ndata: [DONE]\n\n", true},
		{"next event whole, lone cr", "data: a\r\rdata: b\r\r", true},
		{"next event cut, lone cr", "data: a\r\rdata: b\r", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tc.in))
			defer r.Release()
			if r.Buffered() {
				t.Fatal("Buffered before anything was read")
			}
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
			if got := r.Buffered(); got != tc.want {
				t.Errorf("Buffered = %v; want %v", got, tc.want)
			}
		})
	}
}

func TestWriterQueueFlushesOnce(t *testing.T) {
	rec := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
	w := NewWriter(rec)
	for _, d := range []string{`{"a":1}`, `{"b":2}`} {
		if err := w.Queue([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	if rec.flushes != 0 || !w.Queued() {
		t.Fatalf("queued events were flushed (%d flushes) or not marked queued", rec.flushes)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if rec.flushes != 1 || w.Queued() {
		t.Errorf("got %d flushes, queued %v; want 1 flush and nothing queued", rec.flushes, w.Queued())
	}
	if got, want := rec.Body.String(), "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestWriterMultiLineData: JSON with raw line breaks (an upstream event
// spread over several "data:" lines, which the Reader joins with "\n")
// leaves on one "data:" line, the breaks as spaces: SDKs that parse one JSON
// document per line (go-openai) read the same value, where one line per
// segment cut the event at its first line break.
func TestWriterMultiLineData(t *testing.T) {
	tests := []struct {
		name, data, want string
		reads            string // what a client reads
	}{
		{"one line", `{"a":1}`, "data: {\"a\":1}\n\n", `{"a":1}`},
		{"empty", "", "data: \n\n", ""},
		{"two lines", "{\"a\":1,\n\"b\":2}", "data: {\"a\":1, \"b\":2}\n\n", `{"a":1, "b":2}`},
		{"CRLF and blank lines", "{\r\n\"a\":\n\n1}\n", "data: {  \"a\":  1} \n\n", `{  "a":  1} `},
		// A client ends a line at a lone CR too: never a cut inside the event.
		{"a lone CR", "{\"choices\":[],\r\"x\":1}", "data: {\"choices\":[], \"x\":1}\n\n", `{"choices":[], "x":1}`},
		{"escaped breaks stay", `{"c":"a\nb\r"}`, "data: {\"c\":\"a\\nb\\r\"}\n\n", `{"c":"a\nb\r"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			if err := w.Queue([]byte(tc.data)); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tc.want {
				t.Errorf("wrote %q; want %q", got, tc.want)
			}
			if got := readAll(t, &buf); len(got) != 1 || got[0] != tc.reads {
				t.Errorf("a client reads %q; want [%q]", got, tc.reads)
			}
			if tc.data != "" && !gjson.Valid(tc.reads) {
				t.Errorf("a client reads %q, not JSON", tc.reads)
			}
			dw, data := NewWriter(io.Discard), []byte(tc.data)
			if allocs := testing.AllocsPerRun(100, func() { _ = dw.Queue(data) }); allocs != 0 {
				t.Errorf("%v allocs per event; want 0", allocs)
			}
			if strings.ContainsAny(tc.data, "\r\n") {
				return
			}
			// Data without a line break: QueueLine writes what Queue does.
			buf.Reset()
			if w := NewWriter(&buf); w.QueueLine(data) != nil || !w.Queued() {
				t.Fatalf("QueueLine failed or left nothing queued")
			}
			if got := buf.String(); got != tc.want {
				t.Errorf("QueueLine wrote %q; want %q", got, tc.want)
			}
		})
	}
}

type flushCounter struct {
	*httptest.ResponseRecorder
	flushes int
}

func (f *flushCounter) Flush() { f.flushes++; f.ResponseRecorder.Flush() }

func TestWriterFlushesEachEvent(t *testing.T) {
	rec := httptest.NewRecorder()
	w := NewWriter(rec)
	if err := w.Data([]byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed {
		t.Errorf("event not flushed")
	}
	if err := w.End(); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Body.String(), "data: {\"x\":1}\n\ndata: [DONE]\n\n"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestWriterEndLeavesDoneForTheServer: End writes [DONE] but does not
// flush it, so the server sends it with the end of the response.
func TestWriterEndLeavesDoneForTheServer(t *testing.T) {
	rec := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
	w := NewWriter(rec)
	if err := w.Data([]byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.End(); err != nil {
		t.Fatal(err)
	}
	if rec.flushes != 1 || !w.Queued() {
		t.Errorf("flushes %d, queued %v after End; want 1 (the event's), true", rec.flushes, w.Queued())
	}
	if got, want := rec.Body.String(), "data: {\"x\":1}\n\ndata: [DONE]\n\n"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestReaderAllocatesNothingPerEvent: nor does an event of one line the
// event takes whole (over longLine), within what the Reader keeps: its
// buffer and the spill buffer change places.
func TestReaderAllocatesNothingPerEvent(t *testing.T) {
	for _, chunk := range [][]byte{
		[]byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}` + "\n\n"),
		[]byte("data: " + strings.Repeat("x", longLine*3/2) + "\n\n"),
	} {
		r := NewReader(&repeatReader{chunk: chunk})
		for range 2 { // warm up the data and spill buffers
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%d-byte events: got %v allocs per event; want 0", len(chunk), allocs)
		}
		r.Release()
	}
}

// repeatReader yields chunk forever.
type repeatReader struct {
	chunk []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.chunk[r.off:])
		n += c
		r.off = (r.off + c) % len(r.chunk)
	}
	return n, nil
}

func BenchmarkReaderWriter(b *testing.B) {
	chunk := []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}` + "\n\n")
	r := NewReader(&repeatReader{chunk: chunk})
	w := NewWriter(io.Discard)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		ev, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Data(ev.Data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReaderLineEnds reads one chunk per op with each kind of line end
// the standard allows (OpenAI-style providers send LF, some proxies CRLF).
func BenchmarkReaderLineEnds(b *testing.B) {
	const event = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}`
	for _, eol := range []struct{ name, eol string }{{"lf", "\n"}, {"crlf", "\r\n"}, {"cr", "\r"}} {
		b.Run(eol.name, func(b *testing.B) {
			chunk := []byte(event + eol.eol + eol.eol)
			r := NewReader(&repeatReader{chunk: chunk})
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzReaderChunking checks that how the bytes are split never changes the
// events: providers' TCP segments cut events anywhere.
func FuzzReaderChunking(f *testing.F) {
	f.Add([]byte("data: {\"a\":\"\\u00e9\"}\n\ndata: [DONE]\n\n"), uint8(3))
	f.Add([]byte(": c\r\ndata: x\r\ndata: y\r\n\r\n"), uint8(1))
	f.Add([]byte("data: a\n\n: k\n\nevent: e\n\ndata:b\n\ndata: [DONE]\n\n"), uint8(15))
	f.Add([]byte("\ufeffdata: a\r\rdata: b\r\n\r\ndata: c\r\rdata: [DONE]\r\r"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		whole := readAllErr(bytes.NewReader(in))
		chunked := readAllErr(&stepReader{b: in, step: int(step%16) + 1})
		if strings.Join(whole, "\x00") != strings.Join(chunked, "\x00") {
			t.Errorf("whole %q; chunked %q", whole, chunked)
		}
		checkBuffered(t, in, int(step%16)+1)
		plain := readAllNoting(&stepReader{b: in, step: int(step%16) + 1}, DefaultMaxEventSize, false)
		asked := readAllNoting(&stepReader{b: in, step: int(step%16) + 1}, DefaultMaxEventSize, true)
		if strings.Join(plain, "\x00") != strings.Join(asked, "\x00") {
			t.Errorf("Next alone %q; asking Buffered before each Next %q", plain, asked)
		}
	})
}

// TestReaderBufferedThenNext: Next after Buffered said yes takes the lines
// Buffered found (Reader.ahead) rather than reading them again; the events,
// their names, the comments counted and the errors are those of Next
// alone, however many lines the event has (more than ahead holds
// included) and however its lines end.
func TestReaderBufferedThenNext(t *testing.T) {
	tests := []struct{ name, in string }{
		{"one line events", "data: a\n\ndata: b\n\ndata: [DONE]\n\n"},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n"},
		{"comments and names", "data: a\n\n: keep\n\nevent: e\ndata: b\n\nevent: f\n\ndata: c\n\n"},
		{"lines joined", "data: a\n\ndata: b\ndata: c\n\n"},
		{"more lines than ahead holds", "data: a\n\n: 1\n: 2\nid: 3\ndata: b\ndata: c\n\ndata: d\n\n"},
		{"four lines", "data: a\n\n: 1\ndata: b\ndata: c\n\ndata: d\n\n"},
		{"too large", "data: a\n\ndata: " + strings.Repeat("y", 64) + "\n\ndata: b\n\n"},
		{"the last event unended", "data: a\n\ndata: b\n"},
		{"lone cr", "data: a\r\rdata: b\r\r"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := readAllNoting(strings.NewReader(tc.in), 32, false)
			got := readAllNoting(strings.NewReader(tc.in), 32, true)
			if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
				t.Errorf("asking Buffered before each Next: %q; Next alone: %q", got, want)
			}
		})
	}
}

// readAllNoting is readAllMax that notes each event's name and the comments
// counted with its data; with ask, it asks Buffered before each Next, as a
// relay does.
func readAllNoting(src io.Reader, max int, ask bool) []string {
	sr := NewReader(src)
	sr.max = max
	defer sr.Release()
	var out []string
	for {
		if ask {
			sr.Buffered()
		}
		ev, err := sr.Next()
		if err != nil {
			return append(out, "err:"+err.Error())
		}
		out = append(out, string(ev.Name)+"|"+string(ev.Data)+"|"+strconv.Itoa(sr.Comments()))
	}
}

// checkBuffered holds Buffered to its promise: when it says an event is at
// hand, Next returns one without reading from the source (a relay that
// trusted it wrongly would hold events back while the provider thinks).
func checkBuffered(t *testing.T, in []byte, step int) {
	src := &stepReader{b: in, step: step}
	r := NewReader(src)
	defer r.Release()
	for {
		buffered, reads := r.Buffered(), src.reads
		if again := r.Buffered(); again != buffered {
			t.Fatalf("Buffered said %v, then %v with nothing read between", buffered, again)
		}
		_, err := r.Next()
		if buffered && (err != nil || src.reads != reads) {
			t.Fatalf("Buffered said an event was at hand, but Next read %d more times and returned %v",
				src.reads-reads, err)
		}
		if err != nil {
			return
		}
	}
}

func readAllErr(r io.Reader) []string { return readAllMax(r, DefaultMaxEventSize) }

// readAllMax is readAllErr with an event limit of max bytes.
func readAllMax(r io.Reader, max int) []string {
	sr := NewReader(r)
	sr.max = max
	defer sr.Release()
	var out []string
	for {
		ev, err := sr.Next()
		if err != nil {
			return append(out, "err:"+err.Error())
		}
		out = append(out, string(ev.Data))
	}
}

type stepReader struct {
	b     []byte
	step  int
	reads int
}

func (s *stepReader) Read(p []byte) (int, error) {
	s.reads++
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := min(s.step, len(p), len(s.b))
	copy(p, s.b[:n])
	s.b = s.b[n:]
	return n, nil
}

// TestReaderLongEventMemory: an event of one long data line (an image
// model's picture, a base64 data URL of tens of MiB) is held once while it
// is read and dispatched, not once in the line's spill buffer and again in
// the event's data, and not after it: once the next event is read, or the
// Reader released, the Reader keeps no buffer of its size (nor of a long
// comment's or event name's) for the rest of its stream. A stream of such
// pictures held twice their size to its end, and a sidecar's memory is
// limited (deploy/kubernetes.yaml: 256 MiB). The bounds are generous: a
// buffer grown by append has up to a quarter of its length to spare, and
// the test's own garbage is collected before each measure. Both ways to
// read a line are taken: the stream's first line (scanLine) and a line
// after the line-end convention is known (readLine).
func TestReaderLongEventMemory(t *testing.T) {
	const size = 30 << 20
	const kept = 512 << 10 // the Reader and its 8 KiB buffer, with room to spare
	mib := strings.Repeat("z", 1<<20)
	for _, tc := range []struct {
		name, before, eol string
		release           bool // right after the long event, not after the next one
	}{
		{"first line", "", "\n", true},
		{"after an event, crlf", "data: a\r\n\r\n", "\r\n", false},
		{"after a long comment and event name", ": " + mib + "\nevent: " + mib + "\n", "\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, want := longStream(tc.before, tc.eol, size)
			base := heaptest.Live()
			src := &heaptest.PeakReader{R: bytes.NewReader(in)}
			r := NewReader(src)
			defer r.Release()
			ev, err := r.Next()
			for err == nil && len(ev.Data) < size {
				ev, err = r.Next()
			}
			if err != nil || !bytes.Equal(ev.Data, want) {
				t.Fatalf("got %d bytes, %v; want the %d bytes of the long event", len(ev.Data), err, len(want))
			}
			peak := max(src.Peak, heaptest.Live()) - base
			if peak > size*13/10 {
				t.Errorf("%d bytes held at most for a %d-byte event; want at most 1.3 times the event", peak, len(want))
			}
			if tc.release {
				r.Release()
			} else if ev, err = r.Next(); err != nil || string(ev.Data) != `{"b":2}` {
				t.Fatalf("the event after the long one: %q, %v", ev.Data, err)
			}
			after := int64(heaptest.Live() - base)
			t.Logf("a %d MiB event: %.1f MiB held at most while it was read, %d bytes after", size>>20, float64(peak)/(1<<20), after)
			if after > kept {
				t.Errorf("%d bytes kept once the long event was read (released: %v); want at most %d", after, tc.release, kept)
			}
			runtime.KeepAlive(r) // and in and want: none may be collected while measured
			runtime.KeepAlive(in)
			runtime.KeepAlive(want)
		})
	}
}

// longStream is a stream of before, then an event of one data line of
// size bytes (its data, want), then a small event and [DONE], its lines
// ended by eol.
func longStream(before, eol string, size int) (in, want []byte) {
	want = bytes.Repeat([]byte("A"), size)
	in = append([]byte(before+"data: "), want...)
	in = append(in, eol+eol+`data: {"b":2}`+eol+eol+"data: [DONE]"+eol+eol...)
	return in, want
}

// TestReaderBareDataLineOverStaleBytes: a bare "data" line (a data field
// with an empty value) read where the buffer still holds an earlier
// line's bytes past it is data with an empty value. A stream's last line
// without its line end is the bufio buffer's last bytes, and what follows
// it there is left from an earlier read: here the ':' of "data:1234",
// which a test of five bytes past a four-byte line took for the line's
// own, and the value's slice then started past the line's end (a panic).
func TestReaderBareDataLineOverStaleBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		step int
		want []string
	}{
		{"data:1234\n\ndata", 11, []string{"1234", "", "err:EOF"}},
		{"data:1234\r\n\r\ndata", 13, []string{"1234", "", "err:EOF"}},
		{"data:1234\r\rdata", 11, []string{"1234", "", "err:EOF"}},
		{"data:1234\n\nevent:x\ndata", 11, []string{"1234", "", "err:EOF"}},
	} {
		got := readAllErr(&stepReader{b: []byte(tc.in), step: tc.step})
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%q in reads of %d: got %q; want %q", tc.in, tc.step, got, tc.want)
		}
	}
}
