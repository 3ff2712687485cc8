package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestFreshHeadsOfAnEarlierVersion: earlier versions scored a fresh head 0
// in {idx}:ob and wrote elements without created_ms. Such a head is still
// due and handed out beside the heads this version scores by creation, and
// once its queue changes it is scored as the oldest.
func TestFreshHeadsOfAnEarlierVersion(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr})
	defer c.Close()

	// The state an earlier version's EnqueueEvents left: the element, the
	// queue's version, and the index entry scored 0.
	old := store.Event{ID: "old", Kind: "audit", Key: "OLD-1", CreatedAt: clock.Now().Add(-time.Hour)}
	raw := `{"id":"old","next_ms":0,"ev":{"id":"old","kind":"audit","key":"OLD-1","payload":null,"attempts":0,` +
		`"next_at":"0001-01-01T00:00:00Z","created_at":"` + old.CreatedAt.Format(time.RFC3339Nano) + `"}}`
	_, ob, obv := s.k.orderTag("OLD-1")
	if _, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.RPush(ctx, ob, raw)
		p.Set(ctx, obv, 1, 0)
		p.ZAdd(ctx, s.k.idx("ob"), goredis.Z{Score: 0, Member: "OLD-1"})
		p.HSet(ctx, s.k.idx("obv"), "OLD-1", 1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"NEW-2", "NEW-1"} {
		if err := s.EnqueueEvents(ctx, store.Event{ID: "e-" + k, Kind: "audit", Key: k}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	scoreOf := func(member string) float64 {
		t.Helper()
		v, err := c.ZScore(ctx, s.k.idx("ob"), member).Result()
		if err != nil {
			t.Fatalf("score of %s: %v", member, err)
		}
		return v
	}
	if n2, n1 := scoreOf("NEW-2"), scoreOf("NEW-1"); !(n2 < n1 && n1 < 0) {
		t.Errorf("fresh heads scored %v (NEW-2, older) and %v (NEW-1); want both below 0, the older lower", n2, n1)
	}

	due, err := s.DueEvents(ctx, clock.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	sameEventIDs(t, "DueEvents", due, "old", "e-NEW-2", "e-NEW-1")

	// Its queue changes: the element, still without created_ms, is scored
	// as the oldest there can be.
	if err := s.EnqueueEvents(ctx, store.Event{ID: "old-2", Kind: "audit", Key: "OLD-1"}); err != nil {
		t.Fatal(err)
	}
	if got := scoreOf("OLD-1"); got != -freshBase {
		t.Errorf("the earlier version's head rescored %v; want %v", got, float64(-freshBase))
	}
	evs, err := s.ClaimEvents(ctx, "audit", clock.Now(), time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	sameEventIDs(t, "ClaimEvents, limit 1", evs, "old")
	if err := s.AckEvent(ctx, "OLD-1", "old"); err != nil {
		t.Fatal(err)
	}
	due, err = s.DueEvents(ctx, clock.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	sameEventIDs(t, "DueEvents after the ack, limit 1", due, "e-NEW-2")
}

// TestFreshBaseLua: the scripts' fresh_base is freshBase.
func TestFreshBaseLua(t *testing.T) {
	if freshBaseLua != strconv.FormatInt(freshBase, 10) {
		t.Fatalf("freshBaseLua %s; want %d", freshBaseLua, int64(freshBase))
	}
}

func sameEventIDs(t *testing.T, what string, evs []store.Event, want ...string) {
	t.Helper()
	var got []string
	for _, e := range evs {
		got = append(got, e.ID)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: got %v; want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: got %v; want %v", what, got, want)
		}
	}
}
