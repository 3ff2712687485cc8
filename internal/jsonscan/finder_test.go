package jsonscan

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// finderCases are texts and strings on which a Finder must agree with
// bytes.Contains: matches at either end, the pivot byte at the text's
// edges, near misses on either side of the pivot, and texts shorter than
// the string.
var finderCases = []struct{ text, sep string }{
	{`{"messages":[{"role":"assistant","tool_calls":[]}]}`, `"tool_calls"`},
	{`{"messages":[{"role":"assistant","tool_call":[]}]}`, `"tool_calls"`},
	{`"tool_calls"`, `"tool_calls"`},
	{`"tool_calls`, `"tool_calls"`},
	{`tool_calls"`, `"tool_calls"`},
	{`_calls"`, `"tool_calls"`},
	{`"tool_`, `"tool_calls"`},
	{`x"tool_calls"`, `"tool_calls"`},
	{`"tool_calls"x`, `"tool_calls"`},
	{`"tool__calls" "tool_calls"`, `"tool_calls"`},
	{`"tool_call_"tool_calls"`, `"tool_calls"`},
	{``, `"tool_calls"`},
	{`_`, `"tool_calls"`},
	{`{"type":"thinking","thinking":"k"}`, `"thinking"`},
	{`{"type":"thinkin","thinking ":"k"}`, `"thinking"`},
	{`kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"thinking"`, `"thinking"`},
	{`"thinking"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk`, `"thinking"`},
	{`"thinkin"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk`, `"thinking"`},
	{`aaaa`, `a`},
	{`bbbb`, `a`},
	{`"`, `"`},
	{strings.Repeat(`{"role":"user","content":"hi"},`, 40) + `"tool_calls"`, `"tool_calls"`},
	{strings.Repeat(`{"role":"user","content":"hi"},`, 40), `"tool_calls"`},
	{`{"refusal":null,"x":"refusal","refusal":"r"}`, `"refusal"`},
}

// TestFinderMatchesContains holds Finder.In to bytes.Contains, the check it
// replaces, and Finder.Index to bytes.Index, on every case and every
// prefix and suffix of each text.
func TestFinderMatchesContains(t *testing.T) {
	for _, tt := range finderCases {
		f := NewFinder(tt.sep)
		for i := 0; i <= len(tt.text); i++ {
			for _, b := range []string{tt.text[i:], tt.text[:i]} {
				if got, want := f.In([]byte(b)), bytes.Contains([]byte(b), []byte(tt.sep)); got != want {
					t.Errorf("NewFinder(%q).In(%q) = %v, bytes.Contains says %v", tt.sep, b, got, want)
				}
				if got, want := f.Index([]byte(b)), bytes.Index([]byte(b), []byte(tt.sep)); got != want {
					t.Errorf("NewFinder(%q).Index(%q) = %v, bytes.Index says %v", tt.sep, b, got, want)
				}
			}
		}
	}
}

// TestNewFinderPivot checks the pivot of the strings the turn looks for is
// a byte rarer than their first, '"': else a Finder would gain nothing.
func TestNewFinderPivot(t *testing.T) {
	for sep, want := range map[string]byte{`"tool_calls"`: '_', `"thinking"`: 'k', `"`: '"', `ab`: 'b'} {
		f := NewFinder(sep)
		if got := f.sep[f.pivot]; got != want {
			t.Errorf("NewFinder(%q) looks for %q, want %q", sep, got, want)
		}
	}
}

func FuzzFinder(f *testing.F) {
	for _, tt := range finderCases {
		f.Add(tt.text, tt.sep)
	}
	f.Fuzz(func(t *testing.T, text, sep string) {
		if sep == "" {
			return
		}
		if got, want := NewFinder(sep).In([]byte(text)), bytes.Contains([]byte(text), []byte(sep)); got != want {
			t.Fatalf("NewFinder(%q).In(%q) = %v, bytes.Contains says %v", sep, text, got, want)
		}
		if got, want := NewFinder(sep).Index([]byte(text)), bytes.Index([]byte(text), []byte(sep)); got != want {
			t.Fatalf("NewFinder(%q).Index(%q) = %v, bytes.Index says %v", sep, text, got, want)
		}
	})
}

// TestFinderBoundedOnPivotDenseText holds a Finder to about the work of
// bytes.Contains on texts where its pivot byte is everywhere (a body of
// underscores, or of k's, which a bot's text may be): looking by the
// pivot there compares the string at every byte, a call and a compare
// each, about a thousand times bytes.Contains' time on a megabyte. Past a
// few misses per 32 bytes it must hand the rest to bytes.Contains, and
// still give its answer, found or not, near either end.
func TestFinderBoundedOnPivotDenseText(t *testing.T) {
	const size = 64 << 10
	for _, tt := range []struct{ sep, fill string }{
		{`"tool_calls"`, "_"},
		{`"tool_calls"`, `"_`},
		{`"tool_calls"`, `"tool_call_`},
		{`"thinking"`, "k"},
		{`"thinking"`, `"thinkin k`},
	} {
		f := NewFinder(tt.sep)
		text := strings.Repeat(tt.fill, size/len(tt.fill))
		for _, b := range []string{text, tt.sep + text, text + tt.sep, text[:size/2] + tt.sep + text[size/2:]} {
			at, compared := f.index([]byte(b))
			if want := bytes.Index([]byte(b), []byte(tt.sep)); at != want {
				t.Errorf("NewFinder(%q).Index(%d bytes of %q) = %d, bytes.Index says %d",
					tt.sep, len(b), tt.fill, at, want)
			}
			if limit := 5 + len(b)/32; compared > limit {
				t.Errorf("NewFinder(%q) compared at %d places of %d bytes of %q; want at most %d, then bytes.Contains",
					tt.sep, compared, len(b), tt.fill, limit)
			}
		}
	}
}

// inKeyPlain is InKey's definition, read byte by byte: the string itself,
// or, stepping from escape to escape, a \u escape of one of its bytes but
// a quote (of any character, for a string past ASCII).
func inKeyPlain(b []byte, sep string) bool {
	if bytes.Contains(b, []byte(sep)) {
		return true
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+5 < len(b) && b[i+1] == 'u' {
			if !isASCII(sep) {
				return true
			}
			if n, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16); err == nil && n != '"' && strings.IndexByte(sep, byte(n)) >= 0 && n < 0x80 {
				return true
			}
		}
		i++ // the escaped byte
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestFinderInKey: a key spelled with a \u escape of any of its bytes, in
// either case of hex digit, may be the key; an escape of a byte it lacks,
// a quote's, an escaped backslash before "u005f" and an escape cut short
// at the text's end are not.
func TestFinderInKey(t *testing.T) {
	f := NewFinder(`"tool_calls"`)
	for _, c := range []struct {
		text string
		want bool
	}{
		{`{"tool_calls":[]}`, true},
		{`{"tool\u005fcalls":[]}`, true},
		{`{"tool\u005Fcalls":[]}`, true},
		{`{"\u0074ool_calls":[]}`, true},
		{`{"tool_c\u0061lls":[]}`, true},
		{`{"content":"a\nb\u003cc\u00e9\u4e2d"}`, false},
		// Python's json.dumps escapes every Chinese character: one whose
		// low byte is a byte of the key (乡 \u4e61 'a', 也 \u4e5f '_') is
		// none.
		{`{"content":"\u4e61\u4e5f"}`, false},
		{`{"content":"\u0022x"}`, false},
		// A character past ASCII whose low byte is one of the key's (ş
		// \u015f, ၟ \u105f '_') is none either.
		{`{"content":"\u015f\u105f"}`, false},
		{`{"content":"\\u005f"}`, false},
		{`{"content":"\u005`, false},
		{`{"content":"\u00`, false},
		{`{"content":"\\\u005f"}`, true},
		{`{"content":"\u00zz"}`, false},
		{``, false},
	} {
		if got := f.InKey([]byte(c.text)); got != c.want || got != inKeyPlain([]byte(c.text), f.sep) {
			t.Errorf("NewFinder(%q).InKey(%s) = %v; want %v", f.sep, c.text, got, c.want)
		}
	}
	if got := NewFinder(`"名字"`).InKey([]byte(`{"\u540d\u5b57":1}`)); !got {
		t.Errorf(`NewFinder("名字").InKey of its key spelled with escapes = false; want true`)
	}
}

// TestFinderEscapesFold: an escape of a letter of the string in either
// case counts ("\u0045rror" is "Error", which Go's encoding/json takes for
// "error"); Escapes counts the string's own bytes alone. The other "case"
// of a byte that is no letter ('_' and DEL differ by the same bit) is
// none.
func TestFinderEscapesFold(t *testing.T) {
	for _, c := range []struct {
		sep, text       string
		escapes, folded bool
	}{
		{`"error"`, `{"\u0045rror":{}}`, false, true},
		{`"error"`, `{"ERR\u004fR":{}}`, false, true},
		{`"error"`, `{"\u0065rror":{}}`, true, true},
		{`"error"`, `{"content":"\u0046\u0066"}`, false, false},
		{`"error"`, `{"content":"\\u0045"}`, false, false},
		{`"tool_calls"`, `{"tool\u005fcalls":[]}`, true, true},
		{`"tool_calls"`, `{"content":"\u007f"}`, false, false},
	} {
		f := NewFinder(c.sep)
		if got := f.Escapes([]byte(c.text)); got != c.escapes {
			t.Errorf("NewFinder(%q).Escapes(%s) = %v; want %v", c.sep, c.text, got, c.escapes)
		}
		if got := f.EscapesFold([]byte(c.text)); got != c.folded {
			t.Errorf("NewFinder(%q).EscapesFold(%s) = %v; want %v", c.sep, c.text, got, c.folded)
		}
	}
}

func FuzzFinderInKey(f *testing.F) {
	for _, s := range []string{`{"tool\u005fcalls":[]}`, `"\\u005f"`, `\u00`, `"a\nb"`} {
		f.Add(s, `"tool_calls"`)
	}
	f.Add(`{"\u540d":1}`, `"名"`)
	f.Fuzz(func(t *testing.T, text, sep string) {
		if sep == "" {
			return
		}
		if got, want := NewFinder(sep).InKey([]byte(text)), inKeyPlain([]byte(text), sep); got != want {
			t.Fatalf("NewFinder(%q).InKey(%q) = %v; the plain reading says %v", sep, text, got, want)
		}
	})
}

// BenchmarkFinder is the turn's question of a chat body with no tool
// calls (most bodies), by In and by InKey, whose search for escapes is
// the difference.
func BenchmarkFinder(b *testing.B) {
	body := []byte(`{"model":"gpt-test","messages":[` +
		`{"role":"system","content":"You are the shop assistant of a WeChat mini-program.\nAnswer briefly."},` +
		`{"role":"user","content":"What plans do you offer, and how much is the premium one?"}],` +
		`"temperature":0.7,"max_tokens":256,"user":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}`)
	f := NewFinder(`"tool_calls"`)
	b.Run("In", func(b *testing.B) {
		for b.Loop() {
			f.In(body)
		}
	})
	b.Run("InKey", func(b *testing.B) {
		for b.Loop() {
			f.InKey(body)
		}
	})
}
