package failover

import (
	"bytes"
	"encoding/binary"
	"math/bits"

	"github.com/paygate/paygate/internal/jsonscan"
)

// eventMarks is what scanEvent finds in an event's data on the pass that
// validates it, so that the per-event checks after it (eventError,
// hasFinish) need no scan of their own.
type eventMarks uint8

const (
	// markErrorTail: the data holds keyErrorTail (`rror"`), which in
	// valid JSON ends a string (a key or a value) whose raw text ends
	// with "rror": errorObject's first test.
	markErrorTail eventMarks = 1 << iota
	// markResourceFinish: the data holds keyResourceFinish, a string
	// whose raw text is, or ends with an escaped quote and,
	// insufficient_system_resource.
	markResourceFinish
	// markFinish: hasFinish(data).
	markFinish
	// markEscape: a string scanned holds an escape (answerScanner clears
	// it before a key, to read the key's name without a search for one).
	markEscape
	// markErrorEscape: the data holds a \u escape of a byte of "error"
	// (jsonscan.ErrorKey.Escapes): a key or value "err\u006fr", which gjson and
	// every client read as error, has no keyErrorTail, and errorObject
	// must look at it all the same, or a provider's error event went on as
	// a chunk, its text (a key it quoted) unmasked.
	markErrorEscape
	// markLineBreak: the data holds a raw CR or LF. In valid JSON either
	// is only whitespace between tokens (inside a string it is escaped),
	// so the walk sees each where it skips whitespace; an event without
	// one goes out on its "data:" line with no search for line breaks
	// (sse.Writer.QueueLine).
	markLineBreak
)

// scanEvent reports whether data is valid JSON nesting at most maxNesting
// deep (validJSON), and, when it is, its marks, in one pass over it: the
// per-event path validated every event (gjson.Valid), then scanned it for
// an error (two bytes.Contains) and for a finish_reason (bytes.Index),
// each a pass of its own. The validation is gjson.Valid's, byte for byte
// (TestScanEventMatches holds it to gjson.Valid, jsonstr.NestedOver,
// bytes.Contains and hasFinish). Marks of data that is not valid mean
// nothing.
func scanEvent(data []byte) (eventMarks, bool) {
	var m eventMarks
	i, ok := scanAny(data, 0, 0, &m)
	if !ok {
		return m, false
	}
	if m&markEscape != 0 && jsonscan.ErrorKey.Escapes(data) {
		// Asked here, once for the event's escapes, and not at each
		// escape in scanString: a call there cost every string of every
		// event a stack frame (+37 instructions an event, callgrind).
		m |= markErrorEscape
	}
	return m, skipSpaceMarked(data, i, &m) == len(data)
}

// scanAny validates the value at data[i] (whitespace before it skipped);
// depth counts the arrays and objects open around it.
func scanAny(data []byte, i, depth int, m *eventMarks) (int, bool) {
	for ; i < len(data); i++ {
		switch data[i] {
		case ' ', '\t':
			continue
		case '\n', '\r':
			*m |= markLineBreak
			continue
		case '{':
			return scanObject(data, i+1, depth+1, m)
		case '[':
			return scanArray(data, i+1, depth+1, m)
		case '"':
			return scanString(data, i+1, m)
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return jsonscan.ScanNumber(data, i)
		case 't':
			return jsonscan.ScanWord(data, i+1, "rue")
		case 'f':
			return jsonscan.ScanWord(data, i+1, "alse")
		case 'n':
			return jsonscan.ScanWord(data, i+1, "ull")
		default:
			return i, false
		}
	}
	return i, false
}

// scanObject validates an object's members from data[i], after its "{".
func scanObject(data []byte, i, depth int, m *eventMarks) (int, bool) {
	if depth > maxNesting {
		return i, false
	}
	i = skipSpaceMarked(data, i, m)
	if i >= len(data) {
		return i, false
	}
	if data[i] == '}' {
		return i + 1, true
	}
	for {
		if data[i] != '"' {
			return i, false
		}
		start := i + 1
		var ok bool
		if i, ok = scanString(data, start, m); !ok {
			return i, false
		}
		// i-1 is the key's closing quote: hasFinish's `"finish_reason"`
		// is this key, its raw text finish_reason, or ending with an
		// escaped quote and finish_reason. Its last letter is looked at
		// first: no other key of a chunk ends in "n".
		finishKey := data[i-2] == 'n' && i-1-len(finishTail) >= 0 &&
			string(data[i-len(finishTail):i]) == finishTail && data[i-1-len(finishTail)] == '"'
		i = skipSpaceMarked(data, i, m)
		if i >= len(data) || data[i] != ':' {
			return i, false
		}
		i = skipSpaceMarked(data, i+1, m)
		if finishKey && i+1 < len(data) && data[i] == '"' && data[i+1] != '"' {
			*m |= markFinish
		}
		if i, ok = scanAny(data, i, depth, m); !ok {
			return i, false
		}
		i = skipSpaceMarked(data, i, m)
		if i >= len(data) {
			return i, false
		}
		switch data[i] {
		case '}':
			return i + 1, true
		case ',':
			i = skipSpaceMarked(data, i+1, m)
			if i >= len(data) {
				return i, false
			}
		default:
			return i, false
		}
	}
}

// scanArray validates an array's elements from data[i], after its "[".
func scanArray(data []byte, i, depth int, m *eventMarks) (int, bool) {
	if depth > maxNesting {
		return i, false
	}
	i = skipSpaceMarked(data, i, m)
	if i >= len(data) {
		return i, false
	}
	if data[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = scanAny(data, i, depth, m); !ok {
			return i, false
		}
		i = skipSpaceMarked(data, i, m)
		if i >= len(data) {
			return i, false
		}
		switch data[i] {
		case ']':
			return i + 1, true
		case ',':
			i++
		default:
			return i, false
		}
	}
}

// scanString validates a string from data[i], after its opening quote, and
// returns the index after its closing quote. At the closing quote it marks
// the string ending as keyErrorTail and keyResourceFinish match: the
// quote closes the string (an escaped one follows a backslash), so the
// bytes before it are the string's, or the needle's opening quote.
//
// It skips the bytes that are the string's own (all but '"', '\\' and
// those below ' ') eight at a time (jsonscan.StringStops), one at a time in the
// last seven bytes of data and in the eight after an escape;
// TestScanStringMatches and FuzzScanString hold it to the byte-by-byte
// walk it replaced.
func scanString(data []byte, i int, m *eventMarks) (int, bool) {
	for {
		for len(data)-i >= 8 {
			if s := jsonscan.StringStops(binary.LittleEndian.Uint64(data[i:])); s != 0 {
				i += bits.TrailingZeros64(s) >> 3
				goto stop
			}
			i += 8
		}
		for ; i < len(data); i++ {
			if c := data[i]; c == '"' || c == '\\' || c < ' ' {
				goto stop
			}
		}
		return i, false
	stop:
		switch c := data[i]; {
		case c == '"':
			// The string's last byte is looked at first: most strings end
			// in neither needle's last letter and need no other test.
			if i > 0 {
				switch data[i-1] {
				case 'r':
					if i >= 4 && string(data[i-4:i]) == "rror" {
						*m |= markErrorTail
					}
				case 'e':
					if n := len(keyResourceFinish) - 1; i >= n && string(data[i-n:i]) == string(keyResourceFinish[:n]) {
						*m |= markResourceFinish
					}
				}
			}
			return i + 1, true
		case c < ' ':
			return i, false
		}
		// A backslash.
		*m |= markEscape
		i++
		if i == len(data) {
			return i, false
		}
		switch data[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			for range 4 {
				i++
				if i >= len(data) || !jsonscan.IsHex(data[i]) {
					return i, false
				}
			}
		default:
			return i, false
		}
		// Escapes come close together (a tool call's arguments are
		// escaped JSON): the next stop is looked for a byte at a time,
		// as the words' test costs more than it saves for a few bytes.
		i++
		for end := min(i+8, len(data)); i < end; i++ {
			if c := data[i]; c == '"' || c == '\\' || c < ' ' {
				goto stop
			}
		}
	}
}

// errorTailsNull reports whether every keyErrorTail (`rror"`) in data,
// valid JSON, ends a key whose value is null: "error":null, which relays
// and OpenAI-compatible servers put on every chunk. Such an event holds no
// error for errorObject to find (a null "error" is none, at the top or in
// a choice, and neither "type" nor "object" nor a finish_reason is the
// string "error" or "network_error", which are values, not keys), so its
// markErrorTail can be cleared: errorObjectFound ran on each such chunk,
// gjson's scans and an allocation an event, and the relay searched it for
// an empty error member (interceptors.DropEmptyError) that null is not.
// Each `rror"` closes a string (the byte before its quote is no
// backslash); any doubt (a value, a non-null value) answers false.
func errorTailsNull(data []byte) bool {
	found := false
	for off := 0; ; {
		i := bytes.Index(data[off:], keyErrorTail)
		if i < 0 {
			return found
		}
		j := skipSpace(data, off+i+len(keyErrorTail))
		if j >= len(data) || data[j] != ':' {
			return false
		}
		j = skipSpace(data, j+1)
		if len(data)-j < 4 || string(data[j:j+4]) != "null" {
			return false
		}
		found, off = true, j+4
	}
}

// skipSpaceMarked is skipSpace for scanEvent's walk: it marks a CR or LF
// it skips (markLineBreak). A byte past ' ' is no space: the common case,
// a member's quote, a colon or a value, is that one test, and the rest
// (whitespace, seldom in a chunk) a call.
func skipSpaceMarked(b []byte, i int, m *eventMarks) int {
	if i < len(b) && b[i] > ' ' {
		return i
	}
	return skipSpaceMarking(b, i, m)
}

// skipSpaceMarking is skipSpaceMarked past its first test.
//
//go:noinline
func skipSpaceMarking(b []byte, i int, m *eventMarks) int {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t':
		case '\n', '\r':
			*m |= markLineBreak
		default:
			return i
		}
	}
	return i
}
