package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// TestClaimWithALostReply: a claim whose reply is lost and that go-redis
// re-sends returns the event it leased; the re-sent run must not find the
// event leased (by itself) and leave it to nobody until the lease runs out.
func TestClaimWithALostReply(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	now := time.Now()
	withALostReply(t, func(sc *scripts) *goredis.Script { return sc.claimEvent },
		func(t *testing.T, s *Store) {
			if err := s.EnqueueEvents(ctx, store.Event{ID: "lr-claim", Kind: "webhook", Key: "LR-C"}); err != nil {
				t.Fatal(err)
			}
		},
		func(t *testing.T, s *Store) {
			evs, err := s.ClaimEvents(ctx, "webhook", now, time.Minute, 10)
			if err != nil || len(evs) != 1 || evs[0].ID != "lr-claim" {
				t.Fatalf("ClaimEvents: %v, %v; want lr-claim", evs, err)
			}
			if again, err := s.ClaimEvents(ctx, "webhook", now, time.Minute, 10); err != nil || len(again) != 0 {
				t.Errorf("a second claim: %v, %v; want nothing (leased)", again, err)
			}
		})
}
