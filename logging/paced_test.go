package logging

import (
	"testing"
	"time"
)

// TestPacedTake: the first line of a kind passes, repeats within Every are
// left out and counted, the next past Every passes with that count, and
// kinds are paced apart.
func TestPacedTake(t *testing.T) {
	p := &Paced{Every: 10 * time.Second}
	t0 := time.Unix(1_800_000_000, 0)
	take := func(kind string, at time.Duration, wantLeft int, wantOK bool) {
		t.Helper()
		if left, ok := p.Take(kind, t0.Add(at)); left != wantLeft || ok != wantOK {
			t.Errorf("Take(%s, +%v) = %d, %v; want %d, %v", kind, at, left, ok, wantLeft, wantOK)
		}
	}
	take("a", 0, 0, true)
	take("a", time.Second, 0, false)
	take("a", 9*time.Second, 0, false)
	take("b", 9*time.Second, 0, true) // another kind is not held by a's
	take("a", 10*time.Second, 2, true)
	take("a", 11*time.Second, 0, false)
	take("a", -time.Minute, 1, true) // a clock stepped back
}
