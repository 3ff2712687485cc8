package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

func ev(id, kind string) store.Event {
	return store.Event{ID: id, Kind: kind, Payload: []byte(`{"id":"` + id + `"}`)}
}

func ids(evs []store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func sameIDs(t testing.TB, what string, got []store.Event, want ...string) {
	t.Helper()
	g := ids(got)
	if len(g) != len(want) {
		t.Fatalf("%s: got %v; want %v", what, g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("%s: got %v; want %v", what, g, want)
		}
	}
}

func testOutbox(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)

	due := func(t *testing.T) []store.Event {
		t.Helper()
		evs, err := st.DueEvents(ctx, clock.Now(), 100)
		mustNil(t, "DueEvents", err)
		return evs
	}

	t.Run("empty", func(t *testing.T) {
		sameIDs(t, "DueEvents", due(t))
		stats, err := st.OutboxStats(ctx)
		mustNil(t, "OutboxStats", err)
		if stats.Pending != 0 || stats.Keys != 0 {
			t.Errorf("stats: got %+v; want nothing pending", stats)
		}
	})

	t0 := clock.Now()
	o := NewOrder("OB-1", "shop", "u1", t0)
	mustNil(t, "CreateOrder", st.CreateOrder(ctx, o, ev("e1", "audit"), ev("e2", "webhook")))
	clock.Advance(time.Second)
	o.Status = store.StatusPaid
	mustNil(t, "UpdateOrder", st.UpdateOrder(ctx, o, store.StatusAwaitingPayment, ev("e3", "webhook")))

	t.Run("an order's events ride its writes, first one due", func(t *testing.T) {
		evs := due(t)
		sameIDs(t, "DueEvents", evs, "e1")
		if evs[0].Key != "OB-1" || evs[0].Kind != "audit" || string(evs[0].Payload) != `{"id":"e1"}` {
			t.Errorf("event: got %+v; want key OB-1, kind audit and its payload", evs[0])
		}
	})

	t.Run("a lost transition enqueues nothing", func(t *testing.T) {
		stale := *o
		stale.Status = store.StatusClosed
		err := st.UpdateOrder(ctx, &stale, store.StatusAwaitingPayment, ev("lost", "webhook"))
		wantErr(t, "UpdateOrder", err, store.ErrConflict)
		dup := NewOrder("OB-1", "shop", "u1", clock.Now())
		wantErr(t, "CreateOrder", st.CreateOrder(ctx, dup, ev("lost2", "webhook")), store.ErrExists)
		stats, err := st.OutboxStats(ctx)
		mustNil(t, "OutboxStats", err)
		if stats.Pending != 3 {
			t.Errorf("pending: got %d; want 3", stats.Pending)
		}
	})

	t.Run("an event keyed by another order is refused", func(t *testing.T) {
		e := ev("bad", "webhook")
		e.Key = "OB-other"
		if err := st.UpdateOrder(ctx, o, store.StatusPaid, e); err == nil {
			t.Errorf("UpdateOrder accepted an event keyed by another order")
		}
	})

	mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx,
		store.Event{ID: "k1", Kind: "webhook", Key: "OB-2"},
		store.Event{ID: "k2", Kind: "webhook", Key: "OB-2"},
		store.Event{ID: "d1", Kind: "audit"},
	))

	t.Run("one head per key", func(t *testing.T) {
		evs := due(t)
		got := map[string]string{}
		for _, e := range evs {
			got[e.Key] = e.ID
		}
		want := map[string]string{"OB-1": "e1", "OB-2": "k1", store.DefaultEventKey: "d1"}
		if len(got) != len(want) || len(evs) != len(want) {
			t.Fatalf("got %v; want heads %v", ids(evs), want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("key %s: got head %s; want %s", k, got[k], v)
			}
		}
		stats, err := st.OutboxStats(ctx)
		mustNil(t, "OutboxStats", err)
		if stats.Pending != 6 || stats.Keys != 3 || len(stats.Heads) != 3 || !stats.Oldest.Equal(t0) {
			t.Errorf("stats: got %+v; want 6 pending under 3 keys, oldest %v", stats, t0)
		}
	})

	t.Run("limit", func(t *testing.T) {
		evs, err := st.DueEvents(ctx, clock.Now(), 2)
		mustNil(t, "DueEvents", err)
		if len(evs) != 2 {
			t.Errorf("got %d events; want 2", len(evs))
		}
	})

	t.Run("retry holds the key back", func(t *testing.T) {
		mustNil(t, "RetryEvent", st.RetryEvent(ctx, "OB-1", "e1", clock.Now().Add(10*time.Second), 1, "503 from merchant"))
		for _, e := range due(t) {
			if e.Key == "OB-1" {
				t.Fatalf("key OB-1 handed out %s while its head waits for a retry", e.ID)
			}
		}
		stats, err := st.OutboxStats(ctx)
		mustNil(t, "OutboxStats", err)
		if stats.LastError != "503 from merchant" || !stats.LastErrorAt.Equal(clock.Now()) {
			t.Errorf("stats: got last error %q at %v; want the retry's", stats.LastError, stats.LastErrorAt)
		}
		clock.Advance(10 * time.Second)
		var head *store.Event
		for _, e := range due(t) {
			if e.Key == "OB-1" {
				head = &e
			}
		}
		if head == nil || head.ID != "e1" || head.Attempts != 1 || head.LastError != "503 from merchant" {
			t.Errorf("after the delay: got %+v; want e1 with attempt 1", head)
		}
	})

	t.Run("ack releases the next in order", func(t *testing.T) {
		for _, want := range []string{"e1", "e2", "e3"} {
			var head string
			for _, e := range due(t) {
				if e.Key == "OB-1" {
					head = e.ID
				}
			}
			if head != want {
				t.Fatalf("head of OB-1: got %q; want %q", head, want)
			}
			mustNil(t, "AckEvent", st.AckEvent(ctx, "OB-1", head))
		}
		mustNil(t, "AckEvent of an acknowledged event", st.AckEvent(ctx, "OB-1", "e1"))
		err := st.RetryEvent(ctx, "OB-1", "e1", clock.Now(), 2, "x")
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RetryEvent of an acknowledged event: got %v; want ErrNotFound", err)
		}
		for _, e := range due(t) {
			if e.Key == "OB-1" {
				t.Errorf("OB-1 still has %s due", e.ID)
			}
		}
	})

	t.Run("future events wait", func(t *testing.T) {
		e := store.Event{ID: "later", Kind: "webhook", Key: "OB-3", NextAt: clock.Now().Add(time.Minute)}
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, e))
		for _, e := range due(t) {
			if e.ID == "later" {
				t.Fatalf("an event due in a minute was handed out now")
			}
		}
		evs, err := st.DueEvents(ctx, clock.Now().Add(time.Minute), 100)
		mustNil(t, "DueEvents", err)
		found := false
		for _, e := range evs {
			found = found || e.ID == "later"
		}
		if !found {
			t.Errorf("the event was not handed out when due")
		}
	})

	t.Run("drain", func(t *testing.T) {
		for range 10 {
			evs, err := st.DueEvents(ctx, clock.Now().Add(time.Hour), 100)
			mustNil(t, "DueEvents", err)
			if len(evs) == 0 {
				break
			}
			for _, e := range evs {
				mustNil(t, "AckEvent", st.AckEvent(ctx, e.Key, e.ID))
			}
		}
		stats, err := st.OutboxStats(ctx)
		mustNil(t, "OutboxStats", err)
		if stats.Pending != 0 || stats.Keys != 0 || !stats.Oldest.IsZero() {
			t.Errorf("stats after drain: got %+v; want empty", stats)
		}
	})
}

// testOutboxHeads: OutboxHeads returns the head of every key under the
// prefixes asked for, oldest first, also beyond MaxListLimit, where
// OutboxStats.Heads stops: the webhook relay finds an order's dead letters
// with it after an outage that gave up more than that many orders.
func testOutboxHeads(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	const dead = store.MaxListLimit + 3
	// Keys that sort before, between and after the family asked for, with
	// older heads than its own, so that neither key order nor age can
	// decide what a capped list holds.
	for _, k := range []string{"A-1", "dea:1", "dead", "deadX/1", "zz-1"} {
		e := ev("other-"+k, "webhook")
		e.Key = k
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, e))
		clock.Advance(time.Millisecond)
	}
	clock.Advance(time.Second)
	batch := make([]store.Event, 0, 100)
	for i := range dead {
		e := ev(fmt.Sprintf("d%04d", i), "webhook")
		e.Key = fmt.Sprintf("dead:PG%04d/d%04d", i, i)
		e.CreatedAt = clock.Now().Add(time.Duration(i) * time.Millisecond)
		batch = append(batch, e)
		if len(batch) == cap(batch) || i == dead-1 {
			mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, batch...))
			batch = batch[:0]
		}
	}
	second := ev("d0000-second", "webhook")
	second.Key = "dead:PG0000/d0000"
	mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, second))

	got, err := st.OutboxHeads(ctx, "dead:")
	mustNil(t, "OutboxHeads", err)
	if len(got) != dead {
		t.Fatalf("OutboxHeads(dead:): %d heads; want %d (one per key, none capped)", len(got), dead)
	}
	for i, e := range got {
		if want := fmt.Sprintf("d%04d", i); e.ID != want {
			t.Fatalf("head %d: %s; want %s (one head per key, oldest first)", i, e.ID, want)
		}
	}
	got, err = st.OutboxHeads(ctx, "dead:PG0007/", "A-", "zz")
	mustNil(t, "OutboxHeads", err)
	sameIDs(t, "OutboxHeads of three prefixes", got, "other-A-1", "other-zz-1", "d0007")
	got, err = st.OutboxHeads(ctx, "none:")
	mustNil(t, "OutboxHeads", err)
	sameIDs(t, "OutboxHeads of an unused prefix", got)

	// OutboxHeadsApart: every other head, oldest first, and the keys apart
	// counted, once each however many events they hold.
	got, apart, err := st.OutboxHeadsApart(ctx, "dead:")
	mustNil(t, "OutboxHeadsApart", err)
	if apart != dead {
		t.Errorf("OutboxHeadsApart(dead:): %d keys apart; want %d", apart, dead)
	}
	for i, want := range []string{"other-A-1", "other-dea:1", "other-dead", "other-deadX/1", "other-zz-1"} {
		if i >= len(got) || got[i].ID != want {
			t.Fatalf("OutboxHeadsApart(dead:): heads %v; want the five others, oldest first", ids(got))
		}
	}
	if len(got) != 5 {
		t.Fatalf("OutboxHeadsApart(dead:): heads %v; want the five others", ids(got))
	}
	got, apart, err = st.OutboxHeadsApart(ctx, "dead:PG0007/", "A-", "zz")
	mustNil(t, "OutboxHeadsApart", err)
	if apart != 3 || len(got) != 3+dead-1 {
		t.Errorf("OutboxHeadsApart of three prefixes: %d heads, %d apart; want %d and 3", len(got), apart, 3+dead-1)
	}
	got, apart, err = st.OutboxHeadsApart(ctx)
	mustNil(t, "OutboxHeadsApart", err)
	if apart != 0 || len(got) != 5+dead {
		t.Errorf("OutboxHeadsApart of nothing: %d heads, %d apart; want every one, %d, and 0", len(got), apart, 5+dead)
	}

	// OutboxStatsApart: the summary of every other key, and the keys
	// apart counted, unread.
	stats, apart, err := st.OutboxStatsApart(ctx, "dead:")
	mustNil(t, "OutboxStatsApart", err)
	if apart != dead || stats.Keys != 5 || stats.Pending != 5 || len(stats.Heads) != 5 || stats.Heads[0].ID != "other-A-1" {
		t.Errorf("OutboxStatsApart(dead:): %d apart, %d keys, %d pending, heads %v; want %d apart and the five others", apart, stats.Keys, stats.Pending, ids(stats.Heads), dead)
	}
	stats, apart, err = st.OutboxStatsApart(ctx)
	mustNil(t, "OutboxStatsApart", err)
	if apart != 0 || stats.Keys != 5+dead || stats.Pending != 5+dead+1 {
		t.Errorf("OutboxStatsApart of nothing: %d apart, %d keys, %d pending; want 0, %d and %d, as OutboxStats", apart, stats.Keys, stats.Pending, 5+dead, 5+dead+1)
	}
}

// testAckEventAt: AckEventAt removes the event read, by its id and
// CreatedAt, and leaves a copy queued again after it under the same id (a
// webhook resend's), which AckEvent, comparing the id alone, removes.
func testAckEventAt(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	heads := func() []store.Event {
		t.Helper()
		got, err := st.OutboxHeads(ctx, "ACK-")
		mustNil(t, "OutboxHeads", err)
		return got
	}
	first := ev("e1", "webhook")
	first.Key, first.CreatedAt = "ACK-1", clock.Now().Add(1234567*time.Nanosecond)
	mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, first))
	read := heads()
	sameIDs(t, "queued", read, "e1")

	mustNil(t, "AckEventAt of another time", st.AckEventAt(ctx, "ACK-1", "e1", read[0].CreatedAt.Add(time.Nanosecond)))
	sameIDs(t, "after AckEventAt of another time", heads(), "e1")
	mustNil(t, "AckEventAt of another id", st.AckEventAt(ctx, "ACK-1", "e2", read[0].CreatedAt))
	sameIDs(t, "after AckEventAt of another id", heads(), "e1")
	mustNil(t, "AckEventAt", st.AckEventAt(ctx, "ACK-1", "e1", read[0].CreatedAt))
	sameIDs(t, "after AckEventAt", heads())

	again := first
	again.CreatedAt = clock.Now().Add(time.Second)
	if pending, err := st.EnqueueEventsOnce(ctx, []store.Event{again}); err != nil || len(pending) != 0 {
		t.Fatalf("EnqueueEventsOnce of the copy: pending %v, %v; want it added", pending, err)
	}
	mustNil(t, "AckEventAt of the event removed", st.AckEventAt(ctx, "ACK-1", "e1", read[0].CreatedAt))
	if got := heads(); len(got) != 1 || got[0].ID != "e1" || !got[0].CreatedAt.Equal(again.CreatedAt) {
		t.Fatalf("after AckEventAt of the event removed: %+v; want its copy still queued", got)
	}
	mustNil(t, "AckEvent", st.AckEvent(ctx, "ACK-1", "e1"))
	sameIDs(t, "after AckEvent", heads())
	if stats, err := st.OutboxStats(ctx); err != nil || stats.Pending != 0 {
		t.Errorf("stats: %+v, %v; want nothing pending", stats, err)
	}
}

// testDueKinds: DueEvents of kinds returns due heads of those kinds only, the
// longest due first, and heads of other kinds due before them neither count
// against limit nor hide them, however many there are: more than MaxListLimit
// here, more than any driver reads at once. (The audit worker reads its
// events so; webhook delivery queues that no relay drains must not starve it.)
func testDueKinds(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	now := clock.Now()
	var evs []store.Event
	for i := range store.MaxListLimit + 1 {
		evs = append(evs, store.Event{ID: uniq("dw", i), Kind: "webhook", Key: uniq("webhook:DK", i), NextAt: now.Add(-2 * time.Minute)})
	}
	evs = append(evs,
		store.Event{ID: "a-late", Kind: "audit", Key: "DK-A", NextAt: now.Add(-time.Minute)},
		store.Event{ID: "a-later", Kind: "audit", Key: "DK-A2", NextAt: now.Add(-time.Second)},
		store.Event{ID: "a-future", Kind: "audit", Key: "DK-F", NextAt: now.Add(time.Hour)},
		// A key's head is its only due event: the audit event behind a
		// webhook event is not handed out.
		store.Event{ID: "w-head", Kind: "webhook", Key: "DK-B", NextAt: now.Add(-3 * time.Minute)},
		store.Event{ID: "a-behind", Kind: "audit", Key: "DK-B"},
	)
	mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, evs...))
	due := func(t *testing.T, limit int, kinds ...string) []store.Event {
		t.Helper()
		evs, err := st.DueEvents(ctx, now, limit, kinds...)
		mustNil(t, "DueEvents", err)
		return evs
	}

	t.Run("heads of other kinds due before do not crowd a kind out", func(t *testing.T) {
		sameIDs(t, "DueEvents(audit), limit 1", due(t, 1, "audit"), "a-late")
		got := due(t, store.MaxListLimit, "audit")
		sameIDs(t, "DueEvents(audit)", got, "a-late", "a-later")
		if e := got[0]; e.Key != "DK-A" || e.Kind != "audit" || !e.NextAt.Equal(now.Add(-time.Minute)) {
			t.Errorf("event: got %+v; want a-late of DK-A as enqueued", e)
		}
	})
	t.Run("a kind nothing is due of", func(t *testing.T) {
		sameIDs(t, "DueEvents(refund)", due(t, 10, "refund"))
	})
	t.Run("several kinds, or none, share limit, the longest due first", func(t *testing.T) {
		for _, kinds := range [][]string{nil, {"audit", "webhook"}} {
			got := due(t, store.MaxListLimit, kinds...)
			if len(got) != store.MaxListLimit || got[0].ID != "w-head" {
				t.Fatalf("DueEvents(%v): %d events, first %v; want %d, w-head first", kinds, len(got), got[0].ID, store.MaxListLimit)
			}
			for _, e := range got[1:] {
				if e.Kind != "webhook" || !e.NextAt.Equal(now.Add(-2*time.Minute)) {
					t.Fatalf("DueEvents(%v): %s due %v among the first %d; want only the webhook heads due 2 minutes ago",
						kinds, e.ID, e.NextAt, store.MaxListLimit)
				}
			}
		}
	})
}

// testDueTies: heads due at once (fresh events: NextAt zero) are handed out
// oldest first, however their keys sort, and before heads given a due time:
// with more due heads than a read takes, a proposal's queue or the default
// key, created first, does not wait behind every order's newer event. A
// head given a due time is due from then, so of two such the earlier goes
// first.
func testDueTies(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	now := clock.Now()
	// Oldest first; the key names sort the other way ("PG" < "_" < "refund:").
	for _, e := range []store.Event{
		{ID: "t-late", Kind: "audit", Key: "A-TIMED", NextAt: now.Add(-time.Minute)},
		{ID: "t-early", Kind: "audit", Key: "B-TIMED", NextAt: now.Add(-time.Hour)},
		{ID: "f-refund", Kind: "audit", Key: store.ProposalEventKey("rf_tie")},
		{ID: "f-default", Kind: "audit"},
		{ID: "f-pg2", Kind: "audit", Key: "PG0002"},
		{ID: "f-pg1", Kind: "audit", Key: "PG0001"},
	} {
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, e))
		clock.Advance(time.Second)
	}
	now = clock.Now()
	order := []string{"f-refund", "f-default", "f-pg2", "f-pg1", "t-early", "t-late"}
	for limit := 1; limit <= len(order); limit++ {
		for _, kinds := range [][]string{nil, {"audit"}} {
			evs, err := st.DueEvents(ctx, now, limit, kinds...)
			mustNil(t, "DueEvents", err)
			sameIDs(t, fmt.Sprintf("DueEvents(%v), limit %d", kinds, limit), evs, order[:limit]...)
		}
	}
	for i, want := range order {
		evs, err := st.ClaimEvents(ctx, "audit", now, time.Hour, 1)
		mustNil(t, "ClaimEvents", err)
		sameIDs(t, fmt.Sprintf("claim %d of 1", i+1), evs, want)
	}
}

// testRefundProposalEvents: events passed with a refund proposal are
// enqueued in the same atomic step, on the proposal's key
// (store.ProposalEventKey), and that key is an outbox key like any other:
// due, claimed, retried and acknowledged. A taken id enqueues nothing.
func testRefundProposalEvents(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	key := store.ProposalEventKey("rf_ev1")
	p := &store.RefundProposal{RefundID: "rf_ev1", OrderNo: "RPE-1", Client: "shop", User: "u1", AmountFen: 100, OutRefundNo: "RFev1"}
	keyed := ev("p2", "webhook")
	keyed.Key = key
	mustNil(t, "PutRefundProposal", st.PutRefundProposal(ctx, p, time.Hour, ev("p1", "audit"), keyed))
	mustNil(t, "CreateOrder", st.CreateOrder(ctx, NewOrder("RPE-1", "shop", "u1", clock.Now()), ev("o1", "audit")))

	evs, err := st.DueEvents(ctx, clock.Now(), 100)
	mustNil(t, "DueEvents", err)
	byKey := map[string]string{}
	for _, e := range evs {
		byKey[e.Key] = e.ID
	}
	if len(evs) != 2 || byKey[key] != "p1" || byKey["RPE-1"] != "o1" {
		t.Fatalf("due: got %v; want p1 on %s and o1 on the order's key", byKey, key)
	}
	stats, err := st.OutboxStats(ctx)
	mustNil(t, "OutboxStats", err)
	if stats.Pending != 3 || stats.Keys != 2 {
		t.Errorf("stats: %d pending on %d keys; want 3 on 2", stats.Pending, stats.Keys)
	}

	t.Run("a taken id enqueues nothing", func(t *testing.T) {
		again := *p
		wantErr(t, "PutRefundProposal", st.PutRefundProposal(ctx, &again, time.Hour, ev("p-dup", "audit")), store.ErrExists)
		stats, err := st.OutboxStats(ctx)
		mustNil(t, "OutboxStats", err)
		if stats.Pending != 3 {
			t.Errorf("pending %d after a taken id; want 3", stats.Pending)
		}
	})
	t.Run("an event keyed elsewhere is refused and nothing is written", func(t *testing.T) {
		other := ev("x1", "audit")
		other.Key = "RPE-1"
		q := &store.RefundProposal{RefundID: "rf_ev2", OrderNo: "RPE-1", Client: "shop", User: "u1", AmountFen: 100, OutRefundNo: "RFev2"}
		if err := st.PutRefundProposal(ctx, q, time.Hour, other); err == nil {
			t.Fatal("PutRefundProposal with an event keyed by the order: nil; want an error")
		}
		if _, err := st.GetRefundProposal(ctx, "rf_ev2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("proposal after the refused write: %v; want ErrNotFound", err)
		}
	})
	t.Run("claimed, retried and acknowledged like any key", func(t *testing.T) {
		got, err := st.ClaimEvents(ctx, "audit", clock.Now(), time.Minute, 100)
		mustNil(t, "ClaimEvents", err)
		var claimed []string
		for _, e := range got {
			if e.Key == key {
				claimed = append(claimed, e.ID)
			}
		}
		if len(claimed) != 1 || claimed[0] != "p1" {
			t.Fatalf("claimed on %s: %v; want p1", key, claimed)
		}
		mustNil(t, "RetryEvent", st.RetryEvent(ctx, key, "p1", clock.Now().Add(time.Second), 1, "boom"))
		clock.Advance(2 * time.Second)
		mustNil(t, "AckEvent", st.AckEvent(ctx, key, "p1"))
		evs, err := st.DueEvents(ctx, clock.Now(), 100)
		mustNil(t, "DueEvents", err)
		var next []string
		for _, e := range evs {
			if e.Key == key {
				next = append(next, e.ID)
			}
		}
		if len(next) != 1 || next[0] != "p2" {
			t.Fatalf("due on %s after the ack: %v; want p2", key, next)
		}
		mustNil(t, "AckEvent", st.AckEvent(ctx, key, "p2"))
		stats, err := st.OutboxStats(ctx)
		mustNil(t, "OutboxStats", err)
		if stats.Pending != 1 || stats.Keys != 1 {
			t.Errorf("stats: %d pending on %d keys; want the order's one", stats.Pending, stats.Keys)
		}
		if _, err := st.GetRefundProposal(ctx, "rf_ev1"); err != nil {
			t.Errorf("proposal after its events left: %v; want it live", err)
		}
	})
}

// queued drains key's queue and returns the ids of its pending events, in
// queue order (DueEvents hands out a key's head only).
func queued(t *testing.T, st store.Store, now time.Time, key string) []string {
	t.Helper()
	var out []string
	for range 100 {
		evs, err := st.DueEvents(context.Background(), now.Add(time.Hour), store.MaxListLimit)
		mustNil(t, "DueEvents", err)
		head := ""
		for _, e := range evs {
			if e.Key == key {
				head = e.ID
			}
		}
		if head == "" {
			return out
		}
		out = append(out, head)
		mustNil(t, "AckEvent", st.AckEvent(context.Background(), key, head))
	}
	t.Fatalf("queue %s does not drain", key)
	return nil
}

// testRefundAnswerEvents: events passed with the consumption or the
// cancellation of a refund proposal (the audit record of the user's answer)
// are enqueued in the same atomic step as its tombstone, on the proposal's
// key, after the proposal's own; a call that does not end the proposal
// (gone, expired, another user's, unknown, an event keyed elsewhere)
// enqueues nothing, and of racing answers only the winner's events are
// enqueued.
func testRefundAnswerEvents(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	put := func(t *testing.T, id string, events ...store.Event) {
		t.Helper()
		p := &store.RefundProposal{RefundID: id, OrderNo: "RAE-" + id, Client: "shop", User: "u1", AmountFen: 100, OutRefundNo: "RF" + id}
		mustNil(t, "PutRefundProposal", st.PutRefundProposal(ctx, p, time.Hour, events...))
	}
	type answer func(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error)
	for _, a := range []struct {
		name string
		call answer
	}{{"consume", st.ConsumeRefundProposal}, {"cancel", st.CancelRefundProposal}} {
		t.Run(a.name, func(t *testing.T) {
			id := "rf_ans_" + a.name
			key := store.ProposalEventKey(id)
			put(t, id, ev(id+"-proposed", "audit"))
			keyed := ev(id+"-keyed", "webhook")
			keyed.Key = key
			p, err := a.call(ctx, id, "u1", ev(id+"-answered", "audit"), keyed)
			mustNil(t, a.name, err)
			if p == nil || p.RefundID != id {
				t.Fatalf("%s: got %+v; want proposal %s", a.name, p, id)
			}
			if got := queued(t, st, clock.Now(), key); len(got) != 3 || got[0] != id+"-proposed" || got[1] != id+"-answered" || got[2] != id+"-keyed" {
				t.Fatalf("queue %s: %v; want the proposal's event, then the answer's two", key, got)
			}
			_, err = a.call(ctx, id, "u1", ev(id+"-again", "audit"))
			wantErr(t, "a second answer", err, store.ErrGone)
			_, err = st.ConsumeRefundProposal(ctx, id, "u1", ev(id+"-late-confirm", "audit"))
			wantErr(t, "a confirmation after it", err, store.ErrGone)
			if got := queued(t, st, clock.Now(), key); len(got) != 0 {
				t.Errorf("queue %s after answers that lost: %v; want nothing", key, got)
			}
		})
	}
	t.Run("a call that does not end the proposal enqueues nothing", func(t *testing.T) {
		put(t, "rf_ans_live")
		put(t, "rf_ans_exp")
		other := ev("x-other", "audit")
		other.Key = "RAE-rf_ans_live"
		_, err := st.CancelRefundProposal(ctx, "rf_ans_live", "u1", other)
		if err == nil {
			t.Fatal("CancelRefundProposal with an event keyed by the order: nil; want an error")
		}
		_, err = st.ConsumeRefundProposal(ctx, "rf_ans_live", "u2", ev("x-user", "audit"))
		wantErr(t, "another user's", err, store.ErrNotFound)
		_, err = st.CancelRefundProposal(ctx, "rf_ans_none", "u1", ev("x-none", "audit"))
		wantErr(t, "an unknown id", err, store.ErrNotFound)
		if _, err := st.GetRefundProposal(ctx, "rf_ans_live"); err != nil {
			t.Errorf("proposal after the calls that failed: %v; want it live", err)
		}
		clock.Advance(time.Hour)
		_, err = st.ConsumeRefundProposal(ctx, "rf_ans_exp", "u1", ev("x-exp", "audit"))
		wantErr(t, "an expired proposal", err, store.ErrGone)
		for _, id := range []string{"rf_ans_live", "rf_ans_exp", "rf_ans_none", "RAE-rf_ans_live"} {
			key := store.ProposalEventKey(id)
			if id == "RAE-rf_ans_live" {
				key = id
			}
			if got := queued(t, st, clock.Now(), key); len(got) != 0 {
				t.Errorf("queue %s: %v; want nothing", key, got)
			}
		}
		stats, err := st.OutboxStats(ctx)
		mustNil(t, "OutboxStats", err)
		if stats.Pending != 0 {
			t.Errorf("pending %d after calls that ended no proposal; want 0", stats.Pending)
		}
	})
	t.Run("racing answers: only the winner's events", func(t *testing.T) {
		const id = "rf_ans_race"
		key := store.ProposalEventKey(id)
		put(t, id)
		var mu sync.Mutex
		winners := []string{}
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Go(func() {
				evID := fmt.Sprintf("race-%d", i)
				var err error
				if i%3 == 0 {
					_, err = st.CancelRefundProposal(ctx, id, "u1", ev(evID, "audit"))
				} else {
					_, err = st.ConsumeRefundProposal(ctx, id, "u1", ev(evID, "audit"))
				}
				if err != nil && !errors.Is(err, store.ErrGone) {
					t.Errorf("answer %d: %v", i, err)
				}
				if err == nil {
					mu.Lock()
					winners = append(winners, evID)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("winners %v; want one", winners)
		}
		if got := queued(t, st, clock.Now(), key); len(got) != 1 || got[0] != winners[0] {
			t.Errorf("queue %s: %v; want the winner's %s alone", key, got, winners[0])
		}
	})
}

// testDueBytesMixed: DueEvents stops once the payloads it returns reach
// store.DueBytes, whatever the sizes of the heads before them. The
// outbox holds webhooks of a few hundred bytes beside audit events that
// carry a turn's whole conversation (megabytes): a read that sized its
// batches by the small heads it met first took every large one behind
// them in one reply, the gigabytes the bound is there to keep out. What
// it returns are still the longest due, fresh heads or heads due at a
// time (a retry's): a large head it does not read with the small ones is
// read next, not passed over for the ones behind it.
func testDueBytesMixed(t *testing.T, open Opener) {
	const bound, large, smalls, larges = 4 << 10, 3 << 10, 2, 20
	store.LowerDueBytesForTest(t, bound)
	for _, stamped := range []bool{false, true} {
		t.Run(fmt.Sprintf("stamped=%v", stamped), func(t *testing.T) {
			ctx := context.Background()
			clock := NewClock()
			st := open(t, clock)
			for i := range smalls + larges {
				e := store.Event{ID: uniq("db", i), Kind: "audit", Key: uniq("DB-K", i), Payload: []byte(`{"small":1}`)}
				if i >= smalls {
					e.Payload = make([]byte, large)
				}
				if stamped {
					e.NextAt = clock.Now()
				}
				mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, e))
				clock.Advance(time.Millisecond)
			}
			for _, kinds := range [][]string{nil, {"audit"}} {
				evs, err := st.DueEvents(ctx, clock.Now(), store.MaxListLimit, kinds...)
				mustNil(t, "DueEvents", err)
				size := 0
				for i, e := range evs {
					if size >= bound {
						t.Fatalf("DueEvents(%v): %d events of %d bytes of payload, event %d read after %d bytes; want none after the bound, %d",
							kinds, len(evs), payloads(evs), i, size, bound)
					}
					if e.ID != uniq("db", i) {
						t.Fatalf("DueEvents(%v): %v; want the longest due first, from %s on", kinds, ids(evs), uniq("db", 0))
					}
					size += len(e.Payload)
				}
				if len(evs) < smalls+1 {
					t.Fatalf("DueEvents(%v): %v; want the small heads and a large one at least", kinds, ids(evs))
				}
			}
		})
	}
}

func payloads(evs []store.Event) int {
	n := 0
	for _, e := range evs {
		n += len(e.Payload)
	}
	return n
}
