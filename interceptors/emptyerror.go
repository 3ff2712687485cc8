package interceptors

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
)

// DropEmptyError returns data, an upstream chunk, without its top-level
// "error" members that say nothing ({}, "" or []): some relays put one on
// every chunk (beside its choices, even empty ones, its usage, Azure's
// prompt_filter_results), which failover does not take for an error, and which the Node SDK, testing the member's truth, raises as one
// ({} and [] are true in JavaScript). It returns data itself when there is
// none, which one byte search tells for almost every chunk (jsonscan.ErrorKey:
// a key spelled with escapes, "err\u006fr", is one too, which the SDK and
// the capture read as error); otherwise a new slice. Data that is not a
// JSON object is returned as is.
func DropEmptyError(data []byte) []byte {
	if !jsonscan.ErrorKey.InKey(data) {
		return data
	}
	s := unsafeString(data)
	i := jsonscan.SkipSpace(s, 0)
	if i >= len(s) || s[i] != '{' || !gjson.Valid(s) {
		return data
	}
	d := memberDropper{open: -1}
	drop := false
	for j := i + 1; ; {
		m, ok := jsonscan.NextMember(s, j, true)
		if !ok {
			break
		}
		j = m.End
		empty := jsonscan.KeyName(m.Key) == "error" && saysNothing(s[m.At:m.End])
		drop = drop || empty
		d.member(m.KeyAt, m.End, empty)
	}
	if !drop {
		return data
	}
	out := make([]byte, 0, len(data))
	pos := 0
	for _, sp := range d.finish() {
		out = append(out, data[pos:sp[0]]...)
		pos = sp[1]
	}
	return append(out, data[pos:]...)
}

// saysNothing: a raw value that is "", {} or [] (blanks inside allowed).
func saysNothing(v string) bool {
	switch v[0] {
	case '"':
		return len(v) == 2
	case '{', '[':
		return strings.TrimSpace(v[1:len(v)-1]) == ""
	}
	return false
}
