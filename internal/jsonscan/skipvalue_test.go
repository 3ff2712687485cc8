package jsonscan

import "testing"

// TestSkipValue: the index after the value at s[i], or -1 when there is
// none there, as its doc says: an empty scalar ("content":,) was returned
// as a value of no bytes, and ReadAnswer's setters, which read a value's
// first byte, panicked on it (index out of range [0] with length 0).
func TestSkipValue(t *testing.T) {
	for _, c := range []struct {
		s    string
		i    int
		want int
	}{
		{`"ab",`, 0, 4},
		{`{"a":[1,"]"]} `, 0, 13},
		{`12.5}`, 0, 4},
		{`true]`, 0, 4},
		{`,`, 0, -1},
		{`}`, 0, -1},
		{` 1`, 0, -1},
		{``, 0, -1},
		{`"open`, 0, -1},
		{`[1,2`, 0, -1},
	} {
		if got := SkipValue(c.s, c.i); got != c.want {
			t.Errorf("SkipValue(%q, %d) = %d; want %d", c.s, c.i, got, c.want)
		}
	}
}
