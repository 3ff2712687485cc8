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
		if _, err := relay.EnqueueEventsOnce(ctx, []store.Event{cp}); err != nil {
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

// stepHooks runs afterIndex once, right after the first read of {idx}:ob
// (a ZRANGE), and afterHeads once, right after the first pipeline of
// scripts that follows (the heads' read; a new connection's set-up is a
// pipeline too) on the client it hooks.
type stepHooks struct {
	index, heads           atomic.Bool
	afterIndex, afterHeads func(ctx context.Context) error
	err                    chan error
}

func (h *stepHooks) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *stepHooks) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if strings.EqualFold(cmd.Name(), "zrange") && h.index.CompareAndSwap(false, true) {
			h.err <- h.afterIndex(ctx)
		}
		return err
	}
}

func (h *stepHooks) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		if h.index.Load() && len(cmds) > 0 && strings.EqualFold(cmds[0].Name(), "evalsha") &&
			h.heads.CompareAndSwap(false, true) {
			h.err <- h.afterHeads(ctx)
		}
		return err
	}
}

// TestOutboxStatsCountsAnEventMovedIntoAQueueReadEmpty: the delivery queue
// an event moves to may already be named by the index while empty: its
// last event was acknowledged and the index not yet told (the ack's sync
// still to run, or failed and left to Repair). OutboxStats read it empty,
// then the event was enqueued on its order's queue and moved there before
// the index was read again. Taking every key read once as read for good,
// OutboxStats did not read that queue again and found the event nowhere:
// Pending 0 with it queued for delivery. A key read empty is read again
// while the index still names it.
func TestOutboxStatsCountsAnEventMovedIntoAQueueReadEmpty(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	prefix := testPrefix()
	st := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	relay := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	// The delivery queue's last event, acknowledged without the index's
	// sync (AckEvent's script alone): the index still names the queue.
	first := store.Event{ID: "mv-1", Kind: "webhook", Key: "webhook:MV-2"}
	if err := relay.EnqueueEvents(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.run(ctx, "ack event", relay.sc.ack, relay.k.queueKeys(first.Key), first.ID, queueHold(0)); err != nil {
		t.Fatal(err)
	}
	if n, err := relay.c.ZScore(ctx, relay.k.idx("ob"), first.Key).Result(); err != nil {
		t.Fatalf("the index does not name the emptied queue (score %v): %v", n, err)
	}
	ev := store.Event{ID: "mv-2", Kind: "webhook", Key: "MV-2"}
	hook := &stepHooks{
		err:        make(chan error, 2),
		afterIndex: func(ctx context.Context) error { return relay.EnqueueEvents(ctx, ev) },
		afterHeads: func(ctx context.Context) error {
			cp := ev
			cp.Key = first.Key
			if _, err := relay.EnqueueEventsOnce(ctx, []store.Event{cp}); err != nil {
				return err
			}
			return relay.AckEvent(ctx, ev.Key, ev.ID)
		},
	}
	st.Client().AddHook(hook)
	got, err := st.OutboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !hook.index.Load() || !hook.heads.Load() {
		t.Fatalf("OutboxStats read the index: %v, the heads after it: %v", hook.index.Load(), hook.heads.Load())
	}
	for range 2 {
		if err := <-hook.err; err != nil {
			t.Fatalf("the enqueue or the move: %v", err)
		}
	}
	if got.Pending != 1 || len(got.Heads) != 1 || got.Heads[0].Key != first.Key {
		t.Errorf("OutboxStats with the event moved into a queue it read empty: pending %d, heads %v; want 1, [mv-2]", got.Pending, ids(got.Heads))
	}
}
