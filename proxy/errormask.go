package proxy

import (
	"bytes"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/logging"
)

// sseErrorMask masks the secrets in the error events of an event stream
// relayed read by read, and drops its comment lines: a forwarded stream (a
// streamed Responses API call, a legacy completion), which failover pipes
// without reading its events. Comment lines (": OPENROUTER PROCESSING",
// keep-alives) go nowhere (SPEC 5: go-openai reads them as error text),
// each with its line end; the blank line after one stays, and dispatches
// nothing. Both are done in the one pass over each line.
// OpenAI's Responses stream reports a failure as "event: error" with
// {"type":"error","code","message"}, or as response.failed with the
// Response's "error"; providers quote the request's key in such text, and
// it reached the bot byte for byte where a chat stream's error event is
// masked (Server.redacted). An error event's lines are masked as an
// error's text is (the configured secrets and any Bearer credential);
// every other line, the answer itself, goes on untouched, as a chat
// answer does.
//
// The stream is read per line, a line held until its end (LF, CR or CRLF)
// has arrived, so that a secret split across two reads is seen whole: a
// client parses an event only at its blank line, so holding a line back
// delays nothing it could use. A line over maxMaskedLine (an image in an
// event, a long Response's completed event) is not held whole: it is
// relayed as it comes, its configured secrets masked, each part cut where
// it splits no secret (logging.Redactor.Cut).
//
// An event's data may come over several data lines, which a client joins
// with "\n" and parses as one: {"error": on one line, the message and the
// key quoted on the next; line by line, no line is an error. So a data line
// is held, in m.out past hold, until its event's blank line: a client
// parses the event only then, so this too delays nothing it could use. An
// event with a second data line (multi) is judged at its blank line by its
// joined data, and each of its lines masked when that is error-shaped; the
// common event, one data line, is relayed at its blank line as it is. An
// event held past maxMaskedLine as a whole is relayed as a long line is,
// its configured secrets masked, and so is the rest of it (longEvent).
//
// A UTF-8 byte order mark before the stream's first line (a relay on
// Windows, a .NET server) is dropped, as a client drops it (the event
// stream standard) and as the mark before a JSON answer is: read as the
// first line's first byte, it hid the line's ":" and its "event" name, so
// a first comment line (": OPENROUTER PROCESSING") reached the bot.
type sseErrorMask struct {
	redact     *logging.Redactor
	line       []byte // the current line's bytes not relayed yet
	out        []byte // what next returns: reused
	errorEvent bool   // the current event is named "error"
	long       bool   // the current line outgrew maxMaskedLine
	// held: the current event's lines from its first data line on, in
	// m.out from hold, wait for its blank line (sent: the bytes of m.out
	// the last call returned); multi: it has more than one data line;
	// named: an "event: error" line came after its held data, which the
	// client reads as the error all the same.
	held, multi, named bool
	hold, sent         int
	// longEvent: a line of the current event, or the event held, outgrew
	// maxMaskedLine: the rest of it is relayed as a long line is.
	longEvent bool
	joined    []byte // a multi event's data, joined as a client does
	comment   bool   // the current line is a comment: dropped to its end
	skipLF    bool   // the last line ended at CR: an LF next is its end too
	dropLF    bool   // that line was a comment: its LF is dropped too
	lastCR    bool   // the last byte an earlier call relayed is a bare CR
	// final: the current event is a stream's last (finalEvent); done:
	// such an event has ended, and no line came after it.
	final, done bool
	// open: a line of the current event was relayed (in part, when long),
	// and the blank line that ends the event was not.
	open bool
	// started: the stream's first bytes were read past a byte order mark
	// (dropped) or its absence; bom counts the mark's bytes read so far
	// (the reads may split it).
	started bool
	bom     int
}

// utf8BOM is the byte order mark an event stream may start with.
const utf8BOM = "\ufeff"

// skipBOM returns p without the stream's leading byte order mark, or the
// part of it p holds, once. Bytes that began like the mark and then
// differ from it are no mark: they are held as the first line's start.
func (m *sseErrorMask) skipBOM(p []byte) []byte {
	for ; len(p) > 0 && !m.started; p = p[1:] {
		if p[0] != utf8BOM[m.bom] {
			m.started = true
			m.line = append(m.line, utf8BOM[:m.bom]...)
			return p
		}
		if m.bom++; m.bom == len(utf8BOM) {
			m.started = true
		}
	}
	return p
}

// maxMaskedLine bounds a line held whole: an error event is far smaller.
const maxMaskedLine = 1 << 20

// next returns what of p can be relayed now, error events masked; the
// bytes of a line not ended yet are kept for the next call (or end). The
// result is valid until the next call.
func (m *sseErrorMask) next(p []byte) []byte {
	m.keepHeld()
	if !m.started {
		p = m.skipBOM(p)
	}
	for len(p) > 0 {
		if m.skipLF {
			m.skipLF = false
			if p[0] == '\n' {
				if !m.dropLF {
					m.out = append(m.out, '\n')
				}
				m.dropLF = false // the dropped comment's LF
				p = p[1:]
				continue
			}
		}
		// A line starts a comment with its first byte: nothing of the
		// line is held or relayed yet.
		if !m.comment && !m.long && len(m.line) == 0 && p[0] == ':' {
			m.comment = true
			if m.afterCR() {
				// The line before ended at a bare CR, and the client
				// sits right after it: an LF after the comment (a
				// blank line, which ends the event) would be that CR's
				// LF to the client, the event going on (the provider's
				// next event read as part of it) or, at the stream's
				// end, never dispatched. The LF the client may wait
				// for is sent now, which ends no line of its own.
				m.out = append(m.out, '\n')
			}
		}
		i := lineEnd(p)
		if m.comment {
			if i < 0 {
				break // the rest of the read is the comment's
			}
			m.comment = false
			// A comment that ends at CR may have its LF next: dropped
			// too.
			m.skipLF, m.dropLF = p[i] == '\r', p[i] == '\r'
			p = p[i+1:]
			continue
		}
		if i < 0 {
			m.line = append(m.line, p...)
			if m.long || len(m.line) > maxMaskedLine || m.held && len(m.out)-m.hold+len(m.line) > maxMaskedLine {
				m.relayLong()
			}
			break
		}
		line := p[:i]
		if len(m.line) > 0 || m.long {
			m.line = append(m.line, line...)
			line = m.line
		}
		m.endLine(line)
		m.out = append(m.out, p[i])
		m.skipLF, m.dropLF = p[i] == '\r', false
		p = p[i+1:]
	}
	if len(m.out) > 0 {
		m.lastCR = m.out[len(m.out)-1] == '\r'
	}
	m.sent = len(m.out)
	if m.held {
		m.sent = m.hold
	}
	return m.out[:m.sent]
}

// keepHeld starts m.out anew with the held bytes the last call did not
// return, moved to its start.
func (m *sseErrorMask) keepHeld() {
	m.out = m.out[:copy(m.out, m.out[m.sent:])]
	m.hold, m.sent = 0, 0
}

// afterCR reports whether the last byte relayed is a line end at a bare
// CR (a line's bytes never hold a CR: it ends the line).
func (m *sseErrorMask) afterCR() bool {
	if len(m.out) > 0 {
		return m.out[len(m.out)-1] == '\r'
	}
	return m.lastCR
}

// end returns the last line of a stream that ended without its line end.
func (m *sseErrorMask) end() []byte {
	m.keepHeld()
	if !m.started {
		// Only the first bytes of a mark came: they are the stream.
		m.started, m.line = true, append(m.line, utf8BOM[:m.bom]...)
	}
	if len(m.line) > 0 || m.long {
		m.endLine(m.line)
	}
	return m.relayHeld()
}

// cut returns the held lines of the event a stream was cut inside, judged
// as at its blank line, to be relayed before the cut as they were before
// holding (a line not ended is not). The result is valid until the next
// call.
func (m *sseErrorMask) cut() []byte {
	m.keepHeld()
	return m.relayHeld()
}

// relayHeld returns m.out with the held event, a multi or named one
// masked when it is an error: a client may dispatch an event the stream
// ends in.
func (m *sseErrorMask) relayHeld() []byte {
	if m.multi || m.named {
		m.maskHeld()
	}
	m.held, m.multi, m.named = false, false, false
	return m.out
}

// endLine appends a whole line (its end not included) to m.out, masked
// when it belongs to an error event, and notes the event's name.
func (m *sseErrorMask) endLine(line []byte) {
	m.done = false
	m.open = m.long || len(line) > 0
	data := !m.long && isField(line, "data")
	if data && !m.longEvent {
		if m.held {
			m.multi = true
		} else {
			m.held, m.hold = true, len(m.out)
		}
	}
	switch {
	case m.long:
		m.out = append(m.out, m.values(line)...)
		m.long = false
	case len(line) == 0:
		m.relayHeld()
		m.longEvent = false
		m.errorEvent = false // the event ends
		m.done, m.final = m.final, false
	case isField(line, "event"):
		m.errorEvent = string(fieldValue(line)) == "error"
		m.named = m.named || m.held && m.errorEvent
		m.final = m.final || finalEvent(fieldValue(line))
		m.out = append(m.out, line...)
	// A line that is no data field is judged whole: go-openai takes an
	// indented data line for one and keeps any other line as error text,
	// raised at the stream's end, and a relay's error written mid-stream
	// as a bare JSON object handed a Go bot the key it quoted. gjson reads
	// the object past a "data:" before it as errorShaped's lookups need.
	case m.errorEvent || data && errorShaped(fieldValue(line)) || !data && errorShaped(line):
		m.out = append(m.out, m.redact.String(string(line))...)
	default:
		if data && finalData(fieldValue(line)) {
			m.final = true
		}
		if m.longEvent {
			line = m.values(line)
		}
		m.out = append(m.out, line...)
	}
	m.line = m.line[:0]
	if m.held && len(m.out)-m.hold > maxMaskedLine {
		m.release()
	}
}

// release relays the held event, over maxMaskedLine, as a long line is:
// its configured secrets masked, and those of the rest of the event.
func (m *sseErrorMask) release() {
	if m.held {
		m.out = append(m.out[:m.hold], m.values(m.out[m.hold:])...)
	}
	m.held, m.multi, m.named, m.longEvent = false, false, false, true
}

// maskHeld masks each held line of a named event, or of a multi event
// whose data, its data lines' values joined with "\n" as a client joins
// them, is error-shaped.
func (m *sseErrorMask) maskHeld() {
	held := m.out[m.hold:]
	if m.named {
		m.maskLines(held)
		return
	}
	m.joined = m.joined[:0]
	first := true
	for rest := held; len(rest) > 0; {
		line, _, rest2 := cutLine(rest)
		if isField(line, "data") {
			if !first {
				m.joined = append(m.joined, '\n')
			}
			first = false
			m.joined = append(m.joined, fieldValue(line)...)
		}
		rest = rest2
	}
	if errorShaped(m.joined) {
		m.maskLines(held)
	}
}

// maskLines masks each of the held lines, held = m.out[m.hold:].
func (m *sseErrorMask) maskLines(held []byte) {
	var masked []byte
	for rest := held; len(rest) > 0; {
		line, end, rest2 := cutLine(rest)
		masked = append(append(masked, m.redact.String(string(line))...), end...)
		rest = rest2
	}
	m.out = append(m.out[:m.hold], masked...)
}

// cutLine cuts b's first line and its end (LF, CR or CRLF; none at b's
// end) from the rest.
func cutLine(b []byte) (line, end, rest []byte) {
	i := lineEnd(b)
	if i < 0 {
		return b, nil, nil
	}
	j := i + 1
	if b[i] == '\r' && j < len(b) && b[j] == '\n' {
		j++
	}
	return b[:i], b[i:j], b[j:]
}

// ended reports whether the stream relayed so far ends with the end of
// its last event (finalEvent), nothing after it: a provider, or a relay in
// front of it, that then drops the connection without the body's proper
// end (the last chunk) has sent the whole answer, as a chat stream that
// ends after its finish reason has (SPEC 5).
func (m *sseErrorMask) ended() bool {
	return m.done && len(m.line) == 0 && !m.long && !m.comment
}

// between reports whether what was relayed so far ends at the end of an
// event (or is nothing): the client holds no event in part, and one written
// now is read as an event of its own. Held bytes (a line not ended yet, a
// comment) never reached the client.
func (m *sseErrorMask) between() bool {
	return !m.open && !m.long
}

// finalEvent reports the name of the event that ends a forwarded stream:
// a Response's end (completed, incomplete or failed), a streamed
// transcription's, speech's or image's last event.
func finalEvent(name []byte) bool {
	switch string(name) {
	case "response.completed", "response.incomplete", "response.failed",
		"transcript.text.done", "speech.audio.done", "image_generation.completed", "image_edit.completed":
		return true
	}
	return false
}

// finalData reports the data of a stream's last event: a legacy
// completion's [DONE], or an object whose "type", its first member as
// every provider writes it, is a finalEvent name. Only its first bytes are
// read: the last event of a Response repeats the whole answer.
func finalData(d []byte) bool {
	if string(d) == "[DONE]" {
		return true
	}
	rest, ok := bytes.CutPrefix(d, []byte(`{"type":"`))
	if !ok {
		return false
	}
	name, _, ok := bytes.Cut(rest, []byte(`"`))
	return ok && finalEvent(name)
}

// relayLong relays the held line but its last bytes, which may begin a
// secret the next read completes, its configured secrets masked: once a
// line is over maxMaskedLine, at each read.
func (m *sseErrorMask) relayLong() {
	m.release()
	m.long = true
	cut := m.redact.Cut(m.line, len(m.line)-max(m.redact.Longest()-1, 0))
	m.out = append(m.out, m.values(m.line[:cut])...)
	m.line = m.line[:copy(m.line, m.line[cut:])]
}

// values is b with the configured secrets masked; b itself without one.
func (m *sseErrorMask) values(b []byte) []byte {
	if !m.redact.Has(b) {
		return b
	}
	return []byte(m.redact.Values(string(b)))
}

// lineEnd is the index of p's first LF or CR; -1 with neither.
func lineEnd(p []byte) int {
	i := bytes.IndexByte(p, '\n')
	head := p
	if i >= 0 {
		head = p[:i]
	}
	if j := bytes.IndexByte(head, '\r'); j >= 0 {
		return j
	}
	return i
}

// isField reports whether an event stream line is the field name's.
func isField(line []byte, name string) bool {
	return len(line) >= len(name) && string(line[:len(name)]) == name &&
		(len(line) == len(name) || line[len(name)] == ':')
}

// fieldValue is a field line's value: after the colon and one space.
func fieldValue(line []byte) []byte {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return nil
	}
	v := line[i+1:]
	if len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	return v
}

// errorShaped reports an event's data that is an error: an object of
// "type" or "object" "error", or one with an "error" member that is set,
// at the top level, in its "response" (the Responses API's
// response.failed) or on one of its "choices" (OpenRouter's legacy
// completion whose provider failed mid-stream, which failover reads as an
// error too: its choiceError). The byte check first spares the answer's events any
// lookup: each of those holds the string "error", a key or a value, which
// a provider may spell with escapes ("err\u006fr", read by gjson and the
// bot's SDK as error): jsonscan.ErrorKey.InKey finds both, where a search for
// `rror"` missed the escaped one and relayed its text, a key it quoted,
// unmasked.
//
// An "error" key in another case ("Error", "ERROR") is one too
// (errorKeyCased): Go's encoding/json, go-openai's, reads it as the error.
// So is one in another case spelled with escapes ("\u0045rror", Error):
// jsonscan.ErrorKey.EscapesFold finds it, where InKey, reading escapes of
// "error"'s own bytes alone, and errorKeyCased, of plain ones, both missed
// it and relayed its text, a key it quoted, unmasked.
func errorShaped(data []byte) bool {
	if !errorKeyCased(data) && !jsonscan.ErrorKey.In(data) && !jsonscan.ErrorKey.EscapesFold(data) {
		return false
	}
	// Read in place: nothing read is kept past the call, and the bytes
	// versions copy each member found, a Responses event's whole
	// "response" (its answer's text, on response.completed) among them.
	// A loose line (sseErrorMask.endLine: an indented "data:") is read
	// from its object on.
	if i := bytes.IndexByte(data, '{'); i > 0 {
		data = data[i:]
	}
	str := unsafe.String(unsafe.SliceData(data), len(data))
	r := gjson.GetMany(str, "type", "object")
	return r[0].Str == "error" || r[1].Str == "error" || casedErrorSet(gjson.Parse(str), true)
}

// errorKeyCased reports whether b holds "error" as a key in another case
// than its own ("Error", as a .NET relay writes it, "ERROR"), which Go's
// encoding/json matches without regard to case: go-openai reads it as a
// Response's error, or a stream event's, and gets the text it quotes.
// Each upper-case E, R and O is looked at where it would stand in such a
// key; an event without one costs three byte scans. (Spelled with a \u
// escape too, such a key is found by jsonscan.ErrorKey.EscapesFold.)
func errorKeyCased(b []byte) bool {
	const key = `"error"`
	for _, c := range [...]byte{'E', 'R', 'O'} {
		for i := 0; i < len(b); i++ {
			j := bytes.IndexByte(b[i:], c)
			if j < 0 {
				break
			}
			i += j
			for k := 1; k < len(key)-1; k++ {
				if key[k] == c|0x20 && errorKeyAt(b, i-k) {
					return true
				}
			}
		}
	}
	return false
}

// errorKeyQuoted is errorKeyCased for a JSON answer, read at each quote
// rather than each upper-case letter: an answer may be megabytes of
// base64 (embeddings), which holds an E, R or O every seven bytes and few
// quotes. It finds "error" in its own case too.
func errorKeyQuoted(b []byte) bool {
	for i := 0; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return false
		}
		if i += j; errorKeyAt(b, i) {
			return true
		}
	}
	return false
}

// errorKeyAt reports whether b holds "error" in any case, quoted, at at.
func errorKeyAt(b []byte, at int) bool {
	const n = len(`"error"`)
	return at >= 0 && at+n <= len(b) && b[at] == '"' && b[at+n-1] == '"' && bytes.EqualFold(b[at+1:at+n-1], errorWord)
}

var errorWord = []byte("error")

// casedErrorSet reports an object v with a set member whose key is
// "error" in any case (errorKeyCased), or, with nested, such a member of
// its "response" or of one of its "choices", each key in any case too.
// Every member is read, so a set one after a relay's null counts (the bot's
// parser reads the last), and keys are read decoded ("err\u006fr" is one).
func casedErrorSet(v gjson.Result, nested bool) (set bool) {
	v.ForEach(func(k, m gjson.Result) bool {
		switch {
		case strings.EqualFold(k.Str, "error"):
			set = isSet(m)
		case nested && strings.EqualFold(k.Str, "response"):
			set = casedErrorSet(m, false)
		case nested && strings.EqualFold(k.Str, "choices"):
			m.ForEach(func(_, c gjson.Result) bool {
				set = casedErrorSet(c, false)
				return !set
			})
		}
		return !set
	})
	return set
}

// isSet reports a member that is present and neither null nor false.
func isSet(r gjson.Result) bool {
	return r.Exists() && r.Type != gjson.Null && r.Type != gjson.False
}

// maskAnswerError masks the secrets in the "error" member of a forwarded
// JSON answer: a failed background Response ("status": "failed", "error":
// {code, message}) or fine-tuning job comes with 200 and is the answer
// (failover.answerError), and its error text is a provider's, which may
// quote the key. Only that member is masked (each set one, where a relay
// wrote its own too), as an error's text is; the rest of the answer goes
// on untouched. A body without `"error"`, in any case (errorKeyQuoted) or
// with escapes in any case (jsonscan.ErrorKey.EscapesFold: "\u0045rror"),
// costs two byte scans.
func (s *Server) maskAnswerError(body []byte) []byte {
	if !errorKeyQuoted(body) && !jsonscan.ErrorKey.EscapesFold(body) {
		return body
	}
	// Each set member is masked: the bot's parser reads the last, a
	// provider's after a relay's null or set one, and Go's encoding/json
	// one in another case (errorKeyCased).
	str := unsafe.String(unsafe.SliceData(body), len(body))
	var out []byte
	last := 0
	gjson.Parse(str).ForEach(func(k, e gjson.Result) bool {
		if !strings.EqualFold(k.Str, "error") || !isSet(e) || e.Index <= 0 {
			return true
		}
		if masked := s.redact.String(e.Raw); masked != e.Raw {
			out = append(append(out, body[last:e.Index]...), masked...)
			last = e.Index + len(e.Raw)
		}
		return true
	})
	if out == nil {
		return body
	}
	return append(out, body[last:]...)
}
