package jsonstr

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAppend(t *testing.T) {
	tests := []struct {
		name, in, want string // want: the string the JSON decodes to
	}{
		{"plain", "hello", "hello"},
		{"quote and backslash", `a"b\c`, `a"b\c`},
		{"newline, tab, return", "a\nb\tc\rd", "a\nb\tc\rd"},
		{"other control characters", "\x00\x01\x08\x0c\x1f", "\x00\x01\x08\x0c\x1f"},
		{"DEL stays", "a\x7fb", "a\x7fb"},
		{"invalid UTF-8 becomes U+FFFD", "a\xffb\xc3", "a\ufffdb\ufffd"},
		{"line and paragraph separators", "a\u2028b\u2029c", "a\u2028b\u2029c"},
		{"astral rune", "pay 💴 now", "pay 💴 now"},
		{"Chinese", "退款成功", "退款成功"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := Append([]byte("x"), tc.in)
			if out[0] != 'x' {
				t.Fatalf("the prefix was overwritten: %q", out)
			}
			enc := out[1:]
			var got string
			if err := json.Unmarshal(enc, &got); err != nil {
				t.Fatalf("%q is not a JSON string: %v", enc, err)
			}
			if got != tc.want {
				t.Errorf("%q decodes to %q; want %q", enc, got, tc.want)
			}
			if strings.ContainsAny(string(enc), "\u2028\u2029") {
				t.Errorf("%q holds a raw U+2028 or U+2029", enc)
			}
		})
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff\x00", "\u2028", "退"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := Append(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q is not a JSON string: %v", enc, err)
		}
		// encoding/json is the reference: the same string after a round
		// trip, each invalid byte as U+FFFD.
		ref, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%q decodes to %q; encoding/json's %q to %q", enc, got, ref, want)
		}
	})
}
