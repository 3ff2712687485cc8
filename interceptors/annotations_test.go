package interceptors

import (
	"testing"
	"unicode/utf8"
)

// TestRawCharsCountsDecodedCharacters: the characters a round's text holds
// are counted in its raw JSON, escapes and all, as the text decodes: a
// provider that escapes every non-ASCII character (\u4e2d) or an emoji as
// a surrogate pair moves the next round's citations by as much as one that
// sends them raw.
func TestRawCharsCountsDecodedCharacters(t *testing.T) {
	for _, raw := range []string{
		``, `plain`, `好的，下单`, `\u597d\u7684`, `line\nbreak \"q\" \\ \/`,
		`smile \ud83d\ude00!`, `\uD83D\uDE00`, `😀 raw`, `lone \ud83d then`, `\udc00\ud83d`,
	} {
		if got, want := rawChars([]byte(raw)), utf8.RuneCountInString(decodeRaw([]byte(raw))); got != want {
			t.Errorf("rawChars(%s) = %d; want %d", raw, got, want)
		}
	}
}

// TestShiftAnnotations: every start_index and end_index of an annotation,
// on it or in its citation, moves; the rest stays byte for byte; nothing
// to move is nil.
func TestShiftAnnotations(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`[{"type":"url_citation","url_citation":{"end_index":17,"start_index":10,"title":"T","url":"https://x/10"}}]`,
			`[{"type":"url_citation","url_citation":{"end_index":24,"start_index":17,"title":"T","url":"https://x/10"}}]`},
		{`[ {"start_index": 0, "end_index": 3, "x": {"start_index": 1}} , {"type":"file"} ]`,
			`[ {"start_index": 7, "end_index": 10, "x": {"start_index": 8}} , {"type":"file"} ]`},
		{`[{"type":"file_citation"}]`, ``},
		{`[]`, ``},
		{`null`, ``},
	} {
		if got := string(ShiftAnnotations(tc.in, 7)); got != tc.want {
			t.Errorf("ShiftAnnotations(%s, 7) = %s; want %s", tc.in, got, tc.want)
		}
	}
}
