package redis

import (
	"context"
	"net"
	"sync/atomic"
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
	var arm atomic.Pointer[[]byte]
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr, MaxRetries: 1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &lossyConn{Conn: nc, arm: &arm}, nil
		}})
	prefix := testPrefix()
	s := newStore(c, Options{KeyPrefix: prefix, RepairInterval: -1})
	t.Cleanup(func() {
		_ = s.Close()
		dropShared(t, prefix)
	})
	if err := s.sc.claimEvent.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.EnqueueEvents(ctx, store.Event{ID: "lr-claim", Kind: "webhook", Key: "LR-C"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sha := []byte(s.sc.claimEvent.Hash())
	arm.Store(&sha)
	evs, err := s.ClaimEvents(ctx, "webhook", now, time.Minute, 10)
	if arm.Load() != nil {
		t.Fatal("the script never ran: no reply was lost")
	}
	if err != nil || len(evs) != 1 || evs[0].ID != "lr-claim" {
		t.Fatalf("ClaimEvents: %v, %v; want lr-claim", evs, err)
	}
	if again, err := s.ClaimEvents(ctx, "webhook", now, time.Minute, 10); err != nil || len(again) != 0 {
		t.Errorf("a second claim: %v, %v; want nothing (leased)", again, err)
	}
}
