package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestOutboxHeadsApartCountsNoEmptiedKey: an acknowledgement whose index
// sync fails (its connection cut right after the script) leaves {idx}:ob
// naming an emptied key, until a read of due events heals it or the next
// write on that queue; a dead letter is never due and its key never written
// again (one per event), so the entry stays. OutboxHeadsApart counted the
// index's names: the relay's paygate_webhook_dead_letters gauge kept
// counting a dead letter resent long ago, while GET /admin/api/webhooks,
// which reads the heads (OutboxHeads), said there was none.
func TestOutboxHeadsApartCountsNoEmptiedKey(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	never := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []store.Event
	for _, id := range []string{"evt_gone", "evt_kept"} {
		evs = append(evs, store.Event{ID: id, Key: "dead:PG1/" + id, Kind: "webhook", Payload: []byte(`{}`),
			CreatedAt: clock.Now(), NextAt: never})
	}
	evs = append(evs, store.Event{ID: "evt_live", Key: "live:PG2", Kind: "webhook", Payload: []byte(`{}`),
		CreatedAt: clock.Now(), NextAt: clock.Now().Add(time.Hour)})
	if err := s.EnqueueEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	h := &writerHook{money: s.sc.ack.Hash(), syncs: []string{s.sc.syncIndex.Hash()}}
	s.Client().AddHook(h)
	if err := s.AckEvent(ctx, "dead:PG1/evt_gone", "evt_gone"); err != nil {
		t.Fatal(err)
	}
	if !h.dead.Load() {
		t.Fatal("the hook did not see the acknowledgement")
	}
	h.dead.Store(false)
	if n, err := s.Client().ZScore(ctx, s.k.idx("ob"), "dead:PG1/evt_gone").Result(); err != nil {
		t.Fatalf("the index no longer names the emptied key (%v, %v): the test cut no sync", n, err)
	}
	dead, err := s.OutboxHeads(ctx, "dead:")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		heads, n, err := s.OutboxHeadsApart(ctx, "dead:")
		if err != nil {
			t.Fatal(err)
		}
		if n != len(dead) || len(heads) != 1 {
			t.Fatalf("OutboxHeadsApart(dead:): %d heads, %d keys apart; want 1 and %d, the dead letters OutboxHeads reads", len(heads), n, len(dead))
		}
	}
	if err := s.Client().ZScore(ctx, s.k.idx("ob"), "dead:PG1/evt_gone").Err(); !errors.Is(err, goredis.Nil) {
		t.Errorf("the index still names the emptied key (%v); want its entry healed", err)
	}
}
