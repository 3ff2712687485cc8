package failover

import (
	"testing"
	"time"
)

// TestProviderHeadKeptInOrder: the head an attempt got is what tells a
// provider that answers meanwhile from a silent one (round.silent). Two
// attempts that record their heads out of order (the later head stored
// first) left the earlier one's time, and a round that began between the
// two took the provider for silent although it had answered since; a
// head is kept only when it is the latest, on the monotonic clock.
func TestProviderHeadKeptInOrder(t *testing.T) {
	t0 := time.Now()
	started := t0.Add(time.Second)
	later := t0.Add(2 * time.Second)
	var p provider
	if p.headSince(started) {
		t.Fatal("a provider with no head recorded answered")
	}
	p.noteHead(later)
	p.noteHead(t0) // recorded after, though it came first
	if !p.headSince(started) {
		t.Error("the head that came after the round began was lost to one recorded out of order")
	}
	if p.headSince(later.Add(time.Nanosecond)) {
		t.Error("a head counted for a round that began after it")
	}
}
