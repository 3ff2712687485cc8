// Package jsonscan walks JSON by position: it finds an object's members
// and an array's elements, skips values by their brackets and quotes, and
// decodes nothing but an escaped key. The stream capture (interceptors)
// reads chunks with it on the per-chunk path, where a decode per chunk
// would allocate, and both it and the non-stream answer check (failover)
// refuse a JSON text that names a member they read twice or in another
// case with one walker (Ambiguous), so the two cannot drift apart.
//
// The walks follow structure only: the text is valid JSON (the caller
// checked), and where it is not they stop where the structure breaks.
package jsonscan

import (
	"math/bits"
	"strings"

	"github.com/tidwall/gjson"
)

// Member is an object member (or an array element, with no key) located
// in a JSON text.
type Member struct {
	KeyAt   int    // the key's opening quote; -1 for an array element
	Key     string // the key as written, without quotes
	At, End int    // the value
}

// NextMember returns the member of the object (or the element of the
// array) at or after i, and false at the closing bracket. The text is
// valid JSON (the caller checked), so the walk only follows structure.
func NextMember(s string, i int, object bool) (m Member, ok bool) {
	if m, ok = MemberStart(s, i, object); !ok {
		return m, false
	}
	if m.End = SkipValue(s, m.At); m.End < 0 {
		return m, false
	}
	return m, true
}

// MemberStart is NextMember without skipping the value, for a reader that
// descends into it: m.At is where the value starts and m.End is unset. At
// the closing bracket it returns false with m.End the index after the
// bracket; where the structure breaks, false with m.End -1.
func MemberStart(s string, i int, object bool) (m Member, ok bool) {
	for i < len(s) && (IsSpace(s[i]) || s[i] == ',') {
		i++
	}
	m.End = -1
	if i >= len(s) {
		return m, false
	}
	if s[i] == '}' || s[i] == ']' {
		m.End = i + 1
		return m, false
	}
	m.KeyAt = -1
	if object {
		if s[i] != '"' {
			return m, false
		}
		e := StringEnd(s, i+1)
		if e < 0 {
			return m, false
		}
		m.KeyAt, m.Key = i, s[i+1:e]
		i = SkipSpace(s, e+1)
		if i >= len(s) || s[i] != ':' {
			return m, false
		}
		i = SkipSpace(s, i+1)
	}
	if i >= len(s) {
		return m, false
	}
	m.At = i
	return m, true
}

// SkipValue returns the index after the JSON value at s[i], or -1.
func SkipValue(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '"':
		e := StringEnd(s, i+1)
		if e < 0 {
			return -1
		}
		return e + 1
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				e := StringEnd(s, j+1)
				if e < 0 {
					return -1
				}
				j = e
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(s) && s[j] != ',' && s[j] != '}' && s[j] != ']' && !IsSpace(s[j]) {
		j++
	}
	if j == i {
		return -1 // no value (`"content":,`): a caller reads its first byte
	}
	return j
}

// KeyName is a raw key as a parser sees it: a key spelled with escapes
// ("tool\u005fcalls") is decoded, so it cannot pass for another one.
// (Members that note a key the walk saw no escape in, to skip the search
// here, were measured: 554 instructions of a non-stream turn, not kept.)
func KeyName(raw string) string {
	if strings.IndexByte(raw, '\\') < 0 {
		return raw
	}
	return gjson.Parse(`"` + raw + `"`).Str
}

// StringEnd returns the index of the quote closing the JSON string whose
// contents start at from, or -1. Most strings in a chat body are short
// (keys, ids, roles): their first shortString bytes are read eight at a
// time (quoteOrEscape), which ends before a call to IndexByte would have
// paid off; longer ones are searched.
func StringEnd(s string, from int) int {
	i := from
	for end := min(len(s), from+shortString); i < end; {
		if len(s)-i >= 8 {
			stops := quoteOrEscape(load64(s, i))
			if stops == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(stops) >> 3
		}
		switch s[i] {
		case '"':
			return i
		case '\\':
			i += 2 // the escaped byte is not a delimiter
		default:
			i++
		}
	}
	if i >= len(s) {
		return -1
	}
	return stringEndSearch(s, from, i)
}

// shortString is how many bytes of a string StringEnd reads itself before
// it searches the rest.
const shortString = 32

// load64 is the eight bytes of s from i, the first lowest.
func load64(s string, i int) uint64 {
	b := s[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// quoteOrEscape has the high bit of each byte of x (eight bytes of a
// string, the first lowest) set that is '"' or '\\'. Above the lowest such
// byte a bit may be set wrongly (a borrow carries up), never below it, so
// its trailing zeros count exactly the bytes before it (as StringStops).
func quoteOrEscape(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	slash := x ^ (ones * '\\')
	return ((quote-ones)&^quote | (slash-ones)&^slash) & highs
}

// stringEndSearch is StringEnd for a string with no delimiter before at
// (at is not inside an escape): it searches for quotes and counts the
// backslashes before each.
func stringEndSearch(s string, from, at int) int {
	for {
		q := strings.IndexByte(s[at:], '"')
		if q < 0 {
			return -1
		}
		q += at
		n := 0
		for b := q - 1; b >= from && s[b] == '\\'; b-- {
			n++
		}
		if n%2 == 0 {
			return q
		}
		at = q + 1
	}
}

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func SkipSpace(s string, i int) int {
	for i < len(s) && IsSpace(s[i]) {
		i++
	}
	return i
}

// IsSpace reports whether c is JSON white space.
func IsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SetMember is the member key of the JSON object s, gjson's first; when
// that one is null or false, the first later one that is neither (later):
// a client reads a repeated key's last, and a relay that writes
// "error":null on every chunk, before the provider's own error member
// ("err\u006fr" or plain), sent an error every client reads, which
// gjson's first took for none: the provider's text, with the key it
// quoted, went to the bot unmasked (failover's errorObjectFound, proxy's
// errorShaped).
func SetMember(s, key string) (v gjson.Result, later bool) {
	v = gjson.Get(s, key)
	if !v.Exists() || v.Type != gjson.Null && v.Type != gjson.False {
		return v, false // absent (then there is no later one), or set
	}
	gjson.Parse(s).ForEach(func(k, m gjson.Result) bool {
		if k.Str == key && m.Type != gjson.Null && m.Type != gjson.False {
			v, later = m, true
			return false
		}
		return true
	})
	return v, later
}
