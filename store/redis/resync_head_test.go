package redis

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// mostReply keeps the most bytes of string replies one command (not a
// pipeline) brought back.
type mostReply struct{ most atomic.Int64 }

func (r *mostReply) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *mostReply) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

func (r *mostReply) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		n := int64(0)
		if c, ok := cmd.(*goredis.Cmd); ok {
			vs, _ := c.Val().([]any)
			for _, v := range vs {
				if s, ok := v.(string); ok {
					n += int64(len(s))
				}
			}
		}
		for m := r.most.Load(); n > m && !r.most.CompareAndSwap(m, n); m = r.most.Load() {
		}
		return err
	}
}

// TestConflictResyncReadsNoHead: a write that loses its compare-and-set
// (UpdateOrder from a status the order has left, two replicas racing on
// one payment) resyncs the order's indexes from its tag, which needs the
// order and the outbox's version and due time, not its head: an order's
// queue holds its audit events, each carrying its turn's conversation
// (7 MB queued for one of 4 MB), and the resync read that head whole on
// the write's error path, as Repair did for each member it resynced.
func TestConflictResyncReadsNoHead(t *testing.T) {
	requireSharedRedis(t)
	const payload = 256 << 10
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	ctx := context.Background()
	o := storetest.NewOrder("RH-1", "shop", "u1", clock.Now())
	if err := s.CreateOrder(ctx, o, store.Event{ID: "rh-audit", Kind: "audit", Payload: make([]byte, payload)}); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	replies := &mostReply{}
	s.Client().AddHook(replies)
	paid := *o
	paid.Status = store.StatusPaid
	if err := s.UpdateOrder(ctx, &paid, store.StatusPaid); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateOrder from a status the order is not in: %v; want a conflict", err)
	}
	if got := replies.most.Load(); got >= payload {
		t.Errorf("the conflict's resync brought back %d KB in one reply; want no head (its payload is %d KB)", got>>10, payload>>10)
	}
}
