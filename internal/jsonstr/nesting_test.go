package jsonstr

import (
	"strings"
	"testing"
)

func TestNestedOver(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		name  string
		s     string
		limit int
		want  bool
	}{
		{"at the limit", deep(5), 5, false},
		{"one over", deep(6), 5, true},
		{"brackets in a string", `{"a":"[[[[[[[[[[[[","b":1}`, 5, false},
		{"escaped quote in a string", `{"a":"\"[[[[[[[[[[[[","b":1}`, 5, false},
		{"escaped backslash ends the string", `["\\",[[[[[[]]]]]]]`, 5, true},
		{"siblings do not add up", strings.Repeat("[[[]]]", 10), 5, false},
		{"unterminated string ends the walk", `["[[[[[[[[[[`, 5, false},
		{"short text", "[[[", 5, false},
	} {
		if got := NestedOver(tc.s, tc.limit); got != tc.want {
			t.Errorf("%s: NestedOver(%q, %d) = %v; want %v", tc.name, tc.s, tc.limit, got, tc.want)
		}
	}
}
