package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestDueReadPastOtherKindsIsAFewPipelines: DueEvents reads the heads of a
// window two at a time until one shows how large the payloads are, then as
// many as fit a pipeline's bytes. Only the heads it returned told it their
// size, so the audit worker's read of its kind behind the due heads of
// other kinds (a relay behind: webhook deliveries of a few hundred bytes)
// read every one of them two at a time, a round trip each pair, at every
// poll. Every head read tells the size, returned or not: the read is the
// range read, the first pair, and the rest of the window in one pipeline.
func TestDueReadPastOtherKindsIsAFewPipelines(t *testing.T) {
	requireSharedRedis(t)
	s := openOn(t, storetest.NewClock(), Options{Addrs: []string{sharedAddr}})
	ctx := context.Background()
	const others = 40
	for i := range others {
		if err := s.EnqueueEvents(ctx, store.Event{ID: fmt.Sprintf("dp-w%d", i), Kind: "webhook", Key: fmt.Sprintf("webhook:DP-%d", i),
			Payload: []byte(`{"event":"order.paid","order_no":"DP"}`)}); err != nil {
			t.Fatalf("EnqueueEvents: %v", err)
		}
	}
	if err := s.EnqueueEvents(ctx, store.Event{ID: "dp-a", Kind: "audit", Key: "zz-DP-audit", Payload: []byte(`{"action":{}}`)}); err != nil {
		t.Fatalf("EnqueueEvents: %v", err)
	}
	// A first read dials the pool's connections (HELLO, CLIENT SETINFO
	// are round trips too); the second is a poll's.
	if _, err := s.DueEvents(ctx, time.Now().Add(time.Second), store.MaxListLimit, "audit"); err != nil {
		t.Fatalf("DueEvents: %v", err)
	}
	counter := &roundTrips{}
	s.Client().AddHook(counter)
	evs, err := s.DueEvents(ctx, time.Now().Add(time.Second), store.MaxListLimit, "audit")
	if err != nil {
		t.Fatalf("DueEvents: %v", err)
	}
	if len(evs) != 1 || evs[0].ID != "dp-a" {
		t.Fatalf("due: got %d events; want the audit event alone", len(evs))
	}
	if got := counter.n.Load(); got > 3 {
		t.Errorf("reading the audit event behind %d due webhook heads took %d round trips; want at most 3 (the range read, the first pair, the rest)", others, got)
	}
}

// TestDueReadOfLargeHeadsBehindSmallOnesIsBounded: the heads DueEvents
// met first (webhooks of a few hundred bytes) sized the pipeline that
// read the rest, so the audit events of long conversations behind them
// came back all in one reply, the window's whole size: at the real bound
// up to a thousand events of megabytes, a reply no read timeout lets
// through. A pipeline of several heads reads at most the bytes left of
// store.DueBytes; a longer head is read alone.
func TestDueReadOfLargeHeadsBehindSmallOnesIsBounded(t *testing.T) {
	requireSharedRedis(t)
	const bound, large, larges = 64 << 10, 12 << 10, 20
	store.LowerDueBytesForTest(t, bound)
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	ctx := context.Background()
	for i := range 2 + larges {
		e := store.Event{ID: fmt.Sprintf("lb-%d", i), Kind: "audit", Key: fmt.Sprintf("LB-%02d", i), Payload: []byte(`{"type":"order.paid"}`)}
		if i >= 2 {
			e.Payload = make([]byte, large)
		}
		if err := s.EnqueueEvents(ctx, e); err != nil {
			t.Fatalf("EnqueueEvents: %v", err)
		}
		clock.Advance(time.Millisecond)
	}
	replies := &replyBytes{}
	s.Client().AddHook(replies)
	evs, err := s.DueEvents(ctx, clock.Now(), store.MaxListLimit, "audit")
	if err != nil {
		t.Fatalf("DueEvents: %v", err)
	}
	if len(evs) < 3 {
		t.Fatalf("DueEvents: %d events; want the two small heads and large ones", len(evs))
	}
	if got := replies.most.Load(); got > bound {
		t.Errorf("one pipeline of heads brought back %d KB; want at most the bound, %d KB", got>>10, bound>>10)
	}
}
