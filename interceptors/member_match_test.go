package interceptors

import (
	"fmt"
	"testing"

	"github.com/paygate/paygate/internal/jsonscan"
)

// TestMatchByLenIsTheFullSearch: match's search of chatMembers by a key's
// length (chatByLen) finds what matchName's search of all of them finds,
// for each name, once and repeated, its other cases, and other keys.
func TestMatchByLenIsTheFullSearch(t *testing.T) {
	keys := []string{"", "x", "mode", "models", "Model", "MODEL", "metadata2", "max_tokenz", "reasoning_effort", "temperature"}
	for _, name := range chatMembers {
		keys = append(keys, name, name+"s", name[1:])
	}
	for _, k := range keys {
		for _, twice := range []bool{false, true} {
			m := jsonscan.Member{Key: k, At: 1, End: 2}
			var got, want [len(chatMembers)]jsonscan.Member
			var r, old memberMatch
			errOf := func(err error) string { return fmt.Sprint(err) }
			g := errOf(r.match(m, chatMembers[:], chatChecked, got[:], nil))
			w := errOf(old.matchName(m, k, foldable(k), chatMembers[:], chatChecked, want[:]))
			if twice {
				g = errOf(r.match(m, chatMembers[:], chatChecked, got[:], nil))
				w = errOf(old.matchName(m, k, foldable(k), chatMembers[:], chatChecked, want[:]))
			}
			if g != w || got != want {
				t.Errorf("match(%q, twice %v) = %s, %v; the full search %s, %v", k, twice, g, got, w, want)
			}
		}
	}
	if byLenOf(passthroughMembers[:]) != nil {
		t.Errorf("passthroughMembers take chatMembers' byLen")
	}
	// A prefix of chatMembers shares its array but not its indexes: byLen
	// would name members past its end (f[j] out of range, a panic).
	for n := range len(chatMembers) {
		if byLenOf(chatMembers[:n]) != nil {
			t.Errorf("chatMembers[:%d] takes chatMembers' byLen", n)
		}
	}
}
