package h1

import (
	"net/http"
	"strings"
	"testing"
)

// badNameBytes and badValueBytes are checkHeaders' tests a byte at a time,
// as it made them before it read eight bytes at a time.
func badNameBytes(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return true
		}
	}
	return false
}

func badValueBytes(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return true
		}
	}
	return false
}

// headerCheckCases put every byte value at each offset of the 8-byte words
// the checks read, and in the tail after them.
func headerCheckCases() []string {
	cases := []string{"", "Authorization", "Bearer sk-test-0123456789abcdefghijklmnopqrstuvwxyz", "application/json"}
	for c := range 256 {
		for _, n := range []int{0, 1, 6, 7, 8, 9, 15, 16, 17} {
			for _, tail := range []int{0, 3, 8} {
				cases = append(cases, strings.Repeat("a", n)+string([]byte{byte(c)})+strings.Repeat("b", tail))
			}
		}
	}
	return cases
}

func TestHeaderChecksMatchByteLoops(t *testing.T) {
	for _, s := range headerCheckCases() {
		if got, want := badName(s), badNameBytes(s); got != want {
			t.Errorf("badName(%q) = %v, want %v", s, got, want)
		}
		if got, want := badValue(s), badValueBytes(s); got != want {
			t.Errorf("badValue(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzHeaderChecks(f *testing.F) {
	for _, s := range headerCheckCases()[:64] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := badName(s), badNameBytes(s); got != want {
			t.Errorf("badName(%q) = %v, want %v", s, got, want)
		}
		if got, want := badValue(s), badValueBytes(s); got != want {
			t.Errorf("badValue(%q) = %v, want %v", s, got, want)
		}
	})
}

// TestCheckHeadersRefuses: a name or value the checks refuse fails the
// request, wherever in it the byte is.
func TestCheckHeadersRefuses(t *testing.T) {
	for _, c := range []struct {
		name, key, value string
		ok               bool
	}{
		{"plain", "Authorization", "Bearer sk-0123456789abcdefghij", true},
		{"CR late in a value", "Authorization", "Bearer sk-0123456789abcdef\rX-Evil: 1", false},
		{"LF in the tail", "X-A", "0123456789abcdef\n", false},
		{"NUL first", "X-A", "\x00abcdefghij", false},
		{"tab and DEL in a value", "X-A", "a\tb\x7fc", true},
		{"empty name", "", "v", false},
		{"colon in a name", "X-Long-Header-Name:", "v", false},
		{"space in a name", "X Long", "v", false},
		{"DEL in a name", "X-Long-Header\x7f", "v", false},
		{"UTF-8 in a name", "X-Lönger-Header", "v", false},
	} {
		h := http.Header{c.key: {c.value}}
		if err := checkHeaders(h); (err == nil) != c.ok {
			t.Errorf("%s: checkHeaders(%q: %q) = %v", c.name, c.key, c.value, err)
		}
	}
}
