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

// TestRescheduleWithALostReply: a move whose reply is lost and that
// go-redis re-sends is reported as the move it was, and the event is due
// at its new time: the re-sent run must not find the event already moved
// (by itself), answer "not moved" and leave {idx}:ob naming the old time,
// where no claim looked for it until the pause an operator ended was over.
func TestRescheduleWithALostReply(t *testing.T) {
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
	if err := s.sc.reschedule.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	held := now.Add(time.Hour)
	if err := s.EnqueueEvents(ctx, store.Event{ID: "lr-move", Kind: "webhook", Key: "LR-M"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryEvent(ctx, "LR-M", "lr-move", held, 0, ""); err != nil {
		t.Fatal(err)
	}
	heads, err := s.OutboxHeads(ctx, "LR-M")
	if err != nil || len(heads) != 1 {
		t.Fatalf("OutboxHeads: %v, %v; want lr-move", heads, err)
	}
	sha := []byte(s.sc.reschedule.Hash())
	arm.Store(&sha)
	moved, err := s.RescheduleEvent(ctx, "LR-M", "lr-move", heads[0].NextAt, now)
	if arm.Load() != nil {
		t.Fatal("the script never ran: no reply was lost")
	}
	if err != nil || !moved {
		t.Errorf("RescheduleEvent: moved %v, %v; want moved", moved, err)
	}
	evs, err := s.ClaimEvents(ctx, "webhook", now, time.Minute, 10)
	if err != nil || len(evs) != 1 || evs[0].ID != "lr-move" {
		t.Errorf("ClaimEvents after the move: %v, %v; want lr-move, due now", evs, err)
	}
}
