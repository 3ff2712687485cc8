package jsonscan

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Finder tells whether a JSON text holds one fixed string, such as a
// quoted key (`"tool_calls"`), as bytes.Contains does. bytes.Contains
// looks for the string's first byte and compares from each one it finds;
// a quoted key's first byte is '"', which a JSON text has every few bytes,
// so after a few misses it falls back to comparing at every position of the
// text: on a short chat request about 6 instructions a byte, paid on every
// turn by checks that find nothing. A Finder looks instead for the string's
// byte that is rarest in JSON chat bodies (pivot, by jsonByteRank) and
// compares only around those, which skips most of the text 32 bytes at a
// time. On a text the pivot is common in (a run of underscores) it hands
// the rest to bytes.Contains after a few misses per 32 bytes, so that it
// is never much slower than bytes.Contains.
type Finder struct {
	sep   string
	sepb  []byte // sep, for bytes.Index on a text the pivot is common in
	pivot int    // the index in sep of the byte IndexByte looks for
	// own has bit c set for each ASCII byte c of sep but '"' (InKey);
	// fold has those and each letter's other case (EscapesFold); wide:
	// sep has a byte past ASCII.
	own, fold [2]uint64
	wide      bool
}

// ErrorKey finds the string "error", a key or a value, spelled plainly or
// with escapes ("err\u006fr", which gjson and every SDK read as error):
// the gate before a provider's error is looked for, and its text masked
// (failover's scans, proxy's forwarded mask, interceptors' DropEmptyError).
var ErrorKey = NewFinder(`"error"`)

// NewFinder is the Finder of sep, which must not be empty.
func NewFinder(sep string) Finder {
	if sep == "" {
		panic("jsonscan: NewFinder of an empty string")
	}
	p := 0
	for i := 1; i < len(sep); i++ {
		if jsonByteRank(sep[i]) < jsonByteRank(sep[p]) {
			p = i
		}
	}
	f := Finder{sep: sep, sepb: []byte(sep), pivot: p}
	for i := 0; i < len(sep); i++ {
		switch c := sep[i]; {
		case c >= utf8.RuneSelf:
			f.wide = true
		case c != '"':
			f.own[c>>6] |= 1 << (c & 63)
			f.fold[c>>6] |= 1 << (c & 63)
			if l := c | 0x20; l >= 'a' && l <= 'z' {
				c ^= 0x20
				f.fold[c>>6] |= 1 << (c & 63)
			}
		}
	}
	return f
}

// InKey reports whether b may hold the Finder's string, a quoted key, as
// a key of a JSON text: b holds it (In), or a \u escape of one of its
// bytes, with which a key is spelled ("tool\u005fcalls") that every
// parser, gjson's paths and the provider's among them, reads as the key
// itself. A reader that skips a body on no asks this, not In: the turn
// asked In whether a bot's follow-up could carry tool calls at all, and
// on no restored no kept payment exchange and counted no payment since
// the user's message, so the model, shown none, ran a second
// create_order for the user's one message. An escape of another byte (a
// newline's \n, the \u003c of Go's HTML escaping) is no; for a string
// with a byte past ASCII, any \u escape is yes.
func (f Finder) InKey(b []byte) bool {
	return f.In(b) || f.Escapes(b)
}

// Escapes reports whether b holds a \u escape of a byte of the Finder's
// string (of any character, when it is wide): InKey without In, for a
// caller whose own search stands for In (failover's `rror"`, a superset of
// `"error"`'s matches). It steps from backslash to backslash past each
// one's escaped byte, so the text of "\\u005f" (an escaped backslash) is
// none.
func (f Finder) Escapes(b []byte) bool {
	return f.escapes(b, &f.own)
}

// EscapesFold is Escapes with an escape of a letter of the Finder's
// string in its other case counted too: a key written "\u0045rror" is
// "Error", which a reader that matches keys without regard to case (Go's
// encoding/json, go-openai's) takes for "error". Escapes, reading only the
// string's own bytes, said no, and the key's error text went unmasked.
func (f Finder) EscapesFold(b []byte) bool {
	return f.escapes(b, &f.fold)
}

// escapes is Escapes of the escapes of the bytes in set (own or fold).
func (f Finder) escapes(b []byte, set *[2]uint64) bool {
	for i := 0; ; i += 2 {
		j := bytes.IndexByte(b[i:], '\\')
		if j < 0 {
			return false
		}
		if i += j; i+5 >= len(b) {
			return false
		}
		if b[i+1] == 'u' && f.escaped(b[i+2:i+6], set) {
			return true
		}
	}
}

// escaped reports whether u, the four bytes after a \u, escape a byte in
// set, the Finder's string's (any character, when it is wide): what
// Escapes asks at each escape.
func (f Finder) escaped(u []byte, set *[2]uint64) bool {
	if f.wide {
		return true
	}
	if u[0] != '0' || u[1] != '0' {
		return false
	}
	c := Unhex(u[2])<<4 | Unhex(u[3])
	return c < utf8.RuneSelf && set[c>>6]&(1<<(c&63)) != 0
}

// Unhex is the value of the hexadecimal digit c; 0xff for another byte,
// which puts a byte made of two past ASCII (InKey). The readers of a \u
// escape in text already checked (valid JSON, a percent escape checked
// by its caller) take it too.
func Unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

// In reports whether b holds the Finder's string, as bytes.Contains(b, sep).
func (f Finder) In(b []byte) bool {
	at, _ := f.index(b)
	return at >= 0
}

// Index is the index in b of the Finder's string's first instance, as
// bytes.Index(b, sep): -1 when b does not hold it. A caller that must
// look at what follows each instance (a key's value) finds them one
// after another with it.
func (f Finder) Index(b []byte) int {
	at, _ := f.index(b)
	return at
}

// index is Index, and how many places of b it compared the string at.
func (f Finder) index(b []byte) (at, compared int) {
	n, p := len(f.sep), f.pivot
	c := f.sep[p]
	// i is where the pivot byte of a match at i-p would be; the last match
	// starts at len(b)-n, so its pivot is at len(b)-n+p.
	for i, last := p, len(b)-n+p; i <= last; i++ {
		j := bytes.IndexByte(b[i:last+1], c)
		if j < 0 {
			return -1, compared
		}
		i += j
		compared++
		// The string's first and last bytes first: a pivot met in another
		// word ("function" for "refusal"'s f) is told apart by them
		// without a call to compare the rest.
		if at := i - p; b[at] == f.sep[0] && b[at+n-1] == f.sep[n-1] && string(b[at:at+n]) == f.sep {
			return at, compared
		}
		if compared > 4+i>>5 {
			// The pivot is common in this text (a run of underscores, of
			// k's): a call and a compare at each would cost up to a
			// thousand times bytes.Contains. The starts up to i-p are
			// ruled out; bytes.Index, whose own worst case is bounded,
			// looks at the rest.
			k := bytes.Index(b[i-p+1:], f.sepb)
			if k < 0 {
				return -1, compared
			}
			return i - p + 1 + k, compared
		}
	}
	return -1, compared
}

// jsonByteRank orders bytes by how often a JSON chat body holds them, the
// rarest first: bytes not in jsonCommon (0), then jsonCommon's from its
// end to its start. The order need not be exact; a string's pivot need
// only be rarer than its first byte, '"'.
func jsonByteRank(c byte) int {
	return strings.IndexByte(jsonCommon, c) + 1
}

// jsonCommon are the bytes JSON chat bodies hold most, in the order of
// English letter frequency after JSON's own punctuation, the most common
// last.
const jsonCommon = `zqxjkvbpygfwmucldrhsnioate,:" `
