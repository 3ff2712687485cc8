package sse

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// specEvents parses in as the WHATWG standard's event stream
// interpretation does, written plainly, with the Reader's two documented
// departures: after a first line end of LF or CRLF only LF ends a line (one
// CR before it is stripped), and an event whose data came before the end of
// input is dispatched.
func specEvents(in []byte) []string {
	in = bytes.TrimPrefix(in, bom)
	var lines [][]byte
	crMode, known := false, false
	for len(in) > 0 {
		if known && !crMode {
			i := bytes.IndexByte(in, '\n')
			if i < 0 {
				lines = append(lines, bytes.TrimSuffix(in, []byte("\r")))
				break
			}
			lines = append(lines, trimEOL(in[:i+1]))
			in = in[i+1:]
			continue
		}
		i := bytes.IndexAny(in, "\r\n")
		if i < 0 {
			lines = append(lines, in)
			break
		}
		lines = append(lines, in[:i])
		next := i + 1
		if in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			next = i + 2
		}
		if !known && (in[i] == '\n' || i+1 < len(in)) {
			known, crMode = true, in[i] == '\r' && next == i+1
		}
		in = in[next:]
	}
	var out []string
	var data, name []byte
	has, comments := false, 0
	for _, l := range lines {
		switch {
		case len(l) == 0:
			if has {
				out = append(out, string(name)+"|"+string(data)+"|"+strconv.Itoa(comments))
			}
			data, name, has = data[:0], name[:0], false
			continue
		case l[0] == ':':
			comments++
			continue
		}
		field, value := l, []byte(nil)
		if i := bytes.IndexByte(l, ':'); i >= 0 {
			field, value = l[:i], bytes.TrimPrefix(l[i+1:], []byte(" "))
		}
		switch string(field) {
		case "data":
			if has {
				data = append(data, '\n')
			}
			data, has = append(data, value...), true
		case "event":
			name = append(name[:0], value...)
		}
	}
	if has {
		out = append(out, string(name)+"|"+string(data)+"|"+strconv.Itoa(comments))
	}
	return append(out, "err:EOF")
}

// FuzzReaderAsSpecSays holds the Reader to a plain reading of the
// standard (specEvents): each event's name, data and the comments counted
// before it, whatever the reads' sizes, asking Buffered before each Next
// or not.
func FuzzReaderAsSpecSays(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\ndata: [DONE]\n\n"), uint8(3))
	f.Add([]byte("\ufeffdata: a\r\rdata: b\r\n\r\ndata: c\r\rdata: [DONE]\r\r"), uint8(2))
	f.Add([]byte("event: e\n\n: k\ndata\ndata:x\ndata:  y\nid: 1\nretry: 5\n\ndata: z"), uint8(1))
	f.Add([]byte("data: a\r\n\r\ndata: b\rc\r\n\r\n"), uint8(7))
	f.Add([]byte("data: ~\r\n\r\n: ~\r\nevent: ~\r\ndata: a\r\ndata: ~\r\n\r\ndata: ~"), uint8(9))
	f.Add([]byte("data: a\r\rdata: ~\r: ~\rdata: b\r\r"), uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		// Each '~' (up to four) is a run of them longer than the
		// Reader's buffer and than longLine: the lines that spill, and
		// the events that take the spill buffer.
		size := int(step%16) + 1 // the reads' size
		if n := bytes.Count(in, []byte("~")); n > 0 && n <= 4 {
			in = bytes.ReplaceAll(in, []byte("~"), bytes.Repeat([]byte("~"), longLine+1+int(step)*997))
			size = (size-1)*701 + 1
		}
		want := strings.Join(specEvents(in), "\x00")
		for _, ask := range []bool{false, true} {
			got := strings.Join(readAllNoting(&stepReader{b: in, step: size}, DefaultMaxEventSize, ask), "\x00")
			if got != want {
				t.Errorf("asking Buffered %v: got %q; the standard %q", ask, got, want)
			}
		}
	})
}
