package failover

import (
	"fmt"
	"testing"
)

// TestChoiceSet: a stream asked for several choices is whole when every
// choice it showed has finished, whichever order they come in and however
// many a chunk carries.
func TestChoiceSet(t *testing.T) {
	ch := func(i int, finish string) string {
		f := "null"
		if finish != "" {
			f = `"` + finish + `"`
		}
		return fmt.Sprintf(`{"index":%d,"delta":{"content":"x"},"finish_reason":%s}`, i, f)
	}
	ev := func(choices ...string) string {
		s := `{"object":"chat.completion.chunk","choices":[`
		for i, c := range choices {
			if i > 0 {
				s += ","
			}
			s += c
		}
		return s + `]}`
	}
	tests := []struct {
		name   string
		n      int
		events []string
		whole  bool
	}{
		{"both finish", 2, []string{ev(ch(0, "")), ev(ch(1, "")), ev(ch(0, "stop")), ev(ch(1, "length"))}, true},
		{"one finished, the other cut", 2, []string{ev(ch(0, "")), ev(ch(1, "")), ev(ch(0, "stop")), ev(ch(1, ""))}, false},
		{"a choice shown after the other finished", 2, []string{ev(ch(0, "")), ev(ch(0, "stop")), ev(ch(1, ""))}, false},
		{"n ignored: one choice", 3, []string{ev(ch(0, "")), ev(ch(0, "stop"))}, true},
		{"several choices in one chunk", 2, []string{ev(ch(0, ""), ch(1, "")), ev(ch(0, "stop"), ch(1, "stop"))}, true},
		{"an empty finish_reason is none", 2, []string{ev(ch(0, "")), ev(ch(0, "stop")), ev(ch(1, ""))}, false},
		{"no choices yet", 2, []string{`{"choices":[]}`}, false},
		{"an index past n is not waited for", 2, []string{ev(ch(0, "")), ev(ch(5, "")), ev(ch(0, "stop"))}, true},
		{"a choice past 64", 100, []string{ev(ch(70, "")), ev(ch(3, "stop")), ev(ch(70, "stop"))}, true},
		{"a choice past 64, cut", 100, []string{ev(ch(70, "")), ev(ch(3, "stop"))}, false},
		{"a huge n", 1 << 30, []string{ev(ch(0, "stop"))}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChoiceSet(tc.n)
			var whole bool
			for _, e := range tc.events {
				whole = c.note([]byte(e))
			}
			if whole != tc.whole {
				t.Errorf("whole = %v; want %v", whole, tc.whole)
			}
		})
	}
}
