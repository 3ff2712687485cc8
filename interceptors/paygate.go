package interceptors

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
)

// The top-level "paygate" member of a response is paygate's word to the bot
// (SPEC 2.3): bots deliver goods on its payment_confirmed. Whatever an
// upstream put there is a forgery, so every upstream chunk and body loses
// its own before paygate adds its extension: Capture does it on the turn
// path, DropPaygate on the others.

// DropPaygate returns data, an upstream chunk or body, without its
// top-level members that a JSON parser reads as "paygate", and those of its
// top-level "error" object (where paygate puts its word on an error
// answer): in any case (Go's
// encoding/json matches member names case-insensitively), spelled with
// escapes, and every one of them when the member repeats (most parsers keep
// the last). It returns data itself when there is none, which byte searches
// tell for almost every chunk; otherwise a new slice. Data that is not a
// JSON object is returned as is.
func DropPaygate(data []byte) []byte {
	s := unsafeString(data)
	if !hasPaygateWord(s) && !hasEscapedLetter(s) {
		return data
	}
	i := jsonscan.SkipSpace(s, 0)
	if i >= len(s) || s[i] != '{' || !gjson.Valid(s) {
		return data
	}
	spans := paygateSpans(s, i, nil)
	if len(spans) == 0 {
		return data
	}
	out := make([]byte, 0, len(data))
	pos := 0
	for _, sp := range spans {
		out = append(out, data[pos:sp[0]]...)
		pos = sp[1]
	}
	return append(out, data[pos:]...)
}

// isPaygateKey: a decoded key that is "paygate" in any case. No non-ASCII
// rune folds to one of its letters (only k and s have such), so a folded
// key has its seven bytes.
func isPaygateKey(k string) bool {
	return len(k) == len("paygate") && strings.EqualFold(k, "paygate")
}

// hasPaygateWord reports "paygate", in any ASCII case, right before a
// quote: the end of a key or of a string value (a quote inside a string is
// escaped). Its searches hop on 'y' and 'Y', rare in chunks. Together with
// hasEscapedLetter, it finds every key a parser reads as "paygate".
func hasPaygateWord(s string) bool {
	for _, y := range [...]byte{'y', 'Y'} {
		for off := 0; ; {
			i := strings.IndexByte(s[off:], y)
			if i < 0 {
				break
			}
			p := off + i
			off = p + 1
			if p >= 2 && p+5 < len(s) && s[p+5] == '"' && strings.EqualFold(s[p-2:p+5], "paygate") {
				return true
			}
		}
	}
	return false
}

// paygateSpans appends to spans the byte ranges that delete the "paygate"
// members (isPaygateKey) of the object at s[obj] and of its "error" object
// (any case, as for paygate), valid JSON, each with one
// separating comma, so that what is left is the same object without them.
// The ranges are in order and do not overlap.
func paygateSpans(s string, obj int, spans [][2]int) [][2]int {
	d := memberDropper{spans: spans, open: -1}
	for i := obj + 1; ; {
		m, ok := jsonscan.NextMember(s, i, true)
		if !ok {
			break
		}
		i = m.End
		name := jsonscan.KeyName(m.Key)
		d.member(m.KeyAt, m.End, isPaygateKey(name))
		// An error answer carries paygate's word inside its error object
		// (error.paygate, where the SDKs expose it): an upstream's there
		// is a forgery too. The error member is kept, so its inner ranges
		// fall between the ranges before it and those after.
		if len(name) == len("error") && strings.EqualFold(name, "error") && s[m.At] == '{' {
			d.spans = paygateSpans(s, m.At, d.spans)
		}
	}
	return d.finish()
}

// memberDropper computes the ranges that delete some members of an object,
// given its members in order: a member after a kept one goes with the
// separator before it (from the end of the previous member), one before any
// kept member with the separator after it (up to the next key).
type memberDropper struct {
	spans   [][2]int // the ranges so far
	prevEnd int      // the end of the previous member's value
	kept    bool     // a member before was kept
	open    int      // the key of a dropped member whose range ends at the next key; -1 if none
	openEnd int      // that member's end, if it is the last
}

// member takes the next member: its key at keyAt, its value ending at end.
func (d *memberDropper) member(keyAt, end int, drop bool) {
	if d.open >= 0 {
		d.spans = append(d.spans, [2]int{d.open, keyAt})
		d.open = -1
	}
	switch {
	case !drop:
		d.kept = true
	case d.kept:
		d.spans = append(d.spans, [2]int{d.prevEnd, end})
	default:
		d.open, d.openEnd = keyAt, end
	}
	d.prevEnd = end
}

// finish returns the ranges, once the last member was taken.
func (d *memberDropper) finish() [][2]int {
	if d.open >= 0 {
		d.spans = append(d.spans, [2]int{d.open, d.openEnd})
	}
	return d.spans
}
