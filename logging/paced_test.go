package logging

import (
	"fmt"
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

// TestPacedKindsBounded: a caller that paces by words it was sent (WeChat
// Pay's error code, cut short) cannot make a Paced remember without
// bound: past maxPacedKinds the new kinds share one pacing, kinds whose
// window has passed make room again, and a remembered kind keeps its own.
func TestPacedKindsBounded(t *testing.T) {
	p := &Paced{Every: time.Minute}
	t0 := time.Unix(1_800_000_000, 0)
	if _, ok := p.Take("known", t0); !ok {
		t.Fatal("the first line of a kind was left out")
	}
	let := 0
	for i := range 10_000 {
		if _, ok := p.Take(fmt.Sprintf("code %d", i), t0); ok {
			let++
		}
	}
	if n := len(p.last); n > maxPacedKinds+1 {
		t.Errorf("10,000 kinds in one minute: %d remembered; want at most %d", n, maxPacedKinds+1)
	}
	if want := maxPacedKinds - 1 + 1; let != want {
		t.Errorf("10,000 kinds in one minute: %d lines let through; want %d (the room left, then one for the rest)", let, want)
	}
	if _, ok := p.Take("known", t0.Add(time.Second)); ok {
		t.Error("a remembered kind's repeat within Every was let through")
	}
	// A minute on, the kinds whose window passed make room: a new kind
	// is its own again.
	if _, ok := p.Take("new after a minute", t0.Add(time.Minute)); !ok {
		t.Error("a new kind a minute on was left out")
	}
	if _, ok := p.Take("another new after a minute", t0.Add(time.Minute)); !ok {
		t.Error("a second new kind a minute on shared the first's pacing")
	}
}
