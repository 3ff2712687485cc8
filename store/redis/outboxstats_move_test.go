package redis

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// afterIndexRead runs move once, right after the first read of {idx}:ob
// (a ZRANGE) on the client it hooks.
type afterIndexRead struct {
	fired atomic.Bool
	move  func(ctx context.Context) error
	err   chan error
}

func (a *afterIndexRead) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (a *afterIndexRead) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if strings.EqualFold(cmd.Name(), "zrange") && a.fired.CompareAndSwap(false, true) {
			a.err <- a.move(ctx)
		}
		return err
	}
}

func (a *afterIndexRead) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestOutboxStatsCountsAnEventMovedDuringTheRead: another replica's relay
// moves an event from its order's queue to the order's delivery queue (a
// copy enqueued there, then the original acknowledged) between
// OutboxStats' read of the index and its read of the heads. Reading only
// the keys the index named first, OutboxStats found the order's queue
// empty and not the delivery queue: Pending 0 while the event was being
// delivered, and a test waiting for the outbox to drain went on with its
// POST still held.
func TestOutboxStatsCountsAnEventMovedDuringTheRead(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	prefix := testPrefix()
	st := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	relay := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	ev := store.Event{ID: "mv-1", Kind: "webhook", Key: "MV-1"}
	if err := st.EnqueueEvents(ctx, ev); err != nil {
		t.Fatal(err)
	}
	hook := &afterIndexRead{err: make(chan error, 1), move: func(ctx context.Context) error {
		cp := ev
		cp.Key = "webhook:" + ev.Key
		if _, err := relay.EnqueueEventOnce(ctx, cp); err != nil {
			return err
		}
		return relay.AckEvent(ctx, ev.Key, ev.ID)
	}}
	st.Client().AddHook(hook)
	got, err := st.OutboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !hook.fired.Load() {
		t.Fatal("OutboxStats read no index")
	}
	if err := <-hook.err; err != nil {
		t.Fatalf("the move: %v", err)
	}
	if got.Pending != 1 || len(got.Heads) != 1 || got.Heads[0].Key != "webhook:MV-1" {
		t.Errorf("OutboxStats with the event moved during its read: pending %d, heads %v; want 1, [webhook:MV-1]", got.Pending, ids(got.Heads))
	}
}
