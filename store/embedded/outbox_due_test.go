package embedded

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// notDue enqueues n events of kind on n keys of st, none due before a
// year from now: the backlog of a merchant outage (events backing off, dead
// letters that are never due).
func notDue(t testing.TB, st *DB, kind string, n int, now time.Time) {
	t.Helper()
	evs := make([]store.Event, 0, 500)
	for i := range n {
		evs = append(evs, store.Event{
			ID: fmt.Sprintf("evt_late%06d", i), Kind: kind, Key: fmt.Sprintf("late:%06d", i),
			Payload: []byte(`{"type":"order.paid","data":{"order":{"order_no":"PLATE","status":"paid","amount_fen":4999}}}`),
			NextAt:  now.Add(365 * 24 * time.Hour).Add(time.Duration(i) * time.Second),
		})
		if len(evs) == cap(evs) || i == n-1 {
			if err := st.EnqueueEvents(context.Background(), evs...); err != nil {
				t.Fatal(err)
			}
			evs = evs[:0]
		}
	}
}

// fastestClaim is the shortest of runs ClaimEvents calls on st: the write
// transaction every relay poll holds, bbolt's one writer with it. The
// fastest, so that the machine's other work does not count.
func fastestClaim(t testing.TB, st *DB, now time.Time, runs int) time.Duration {
	t.Helper()
	best := time.Duration(1<<63 - 1)
	for range runs {
		start := time.Now()
		if _, err := st.ClaimEvents(context.Background(), "webhook", now, time.Minute, 500); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

// TestClaimIgnoresTheNotDueBacklog: ClaimEvents, a write transaction that
// every relay poll and every order transition's Wake runs (and every order
// write waits behind), takes as long with twenty thousand heads that are not
// due (a merchant outage's backoff and dead letters) as with none. It read
// every head: with ten thousand dead letters each poll held the writer for
// 70-220 ms, and order writes (the notify path's) waited as long.
func TestClaimIgnoresTheNotDueBacklog(t *testing.T) {
	clock := storetest.NewClock()
	now := clock.Now()
	empty, backlog := openTest(t, clock), openTest(t, clock)
	notDue(t, backlog, "webhook", 20000, now)
	for _, st := range []*DB{empty, backlog} {
		if err := st.EnqueueEvents(context.Background(), store.Event{ID: "evt_due", Kind: "webhook", Key: "due"}); err != nil {
			t.Fatal(err)
		}
		got, err := st.ClaimEvents(context.Background(), "webhook", now, time.Minute, 500)
		if err != nil || len(got) != 1 || got[0].ID != "evt_due" {
			t.Fatalf("claim: %+v %v; want the one due event", got, err)
		}
	}
	base, behind := fastestClaim(t, empty, now, 15), fastestClaim(t, backlog, now, 15)
	t.Logf("fastest claim: %s with no backlog, %s with 20000 heads not due", base, behind)
	if behind > 2*base+5*time.Millisecond {
		t.Errorf("a claim over 20000 heads not due takes %s, over none %s; want about the same", behind, base)
	}
}

// dueByScan is what DueEvents answered before the due index: every head
// read, those due and of kinds kept, the longest due first, then the
// oldest, at most limit.
func dueByScan(t testing.TB, d *DB, now time.Time, limit int, kinds ...string) []string {
	t.Helper()
	var due []store.Event
	err := d.db.View(func(tx *bolt.Tx) error {
		return heads(tx, nil, func(_ []byte, e store.Event, _ int) error {
			if !e.NextAt.After(now) && store.OfKind(e, kinds) {
				due = append(due, e)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(due, func(i, j int) bool {
		if !due[i].NextAt.Equal(due[j].NextAt) {
			return due[i].NextAt.Before(due[j].NextAt)
		}
		return due[i].CreatedAt.Before(due[j].CreatedAt)
	})
	return eventIDs(due[:min(limit, len(due))])
}

func eventIDs(evs []store.Event) []string {
	ids := []string{}
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

// wantIndexAgrees fails unless d's due index is exactly what its outbox
// calls for.
func wantIndexAgrees(t testing.TB, d *DB, after string) {
	t.Helper()
	agrees := false
	if err := d.db.View(func(tx *bolt.Tx) error { _, agrees = dueIndexAgrees(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if !agrees {
		t.Fatalf("after %s: the due index disagrees with the outbox's heads", after)
	}
}

// wantDueAsScanned fails unless DueEvents and ClaimEvents answer, for
// several times and kinds, what a scan of every head finds.
func wantDueAsScanned(t testing.TB, d *DB, now time.Time, after string) {
	t.Helper()
	ctx := context.Background()
	for _, at := range []time.Time{now.Add(-time.Hour), now, now.Add(10 * time.Second), time.Date(9999, time.January, 1, 0, 0, 1, 0, time.UTC)} {
		for _, kinds := range [][]string{nil, {"webhook"}, {"audit"}, {"audit", "webhook"}} {
			for _, limit := range []int{1, 3, 1000} {
				got, err := d.DueEvents(ctx, at, limit, kinds...)
				if err != nil {
					t.Fatal(err)
				}
				if want := dueByScan(t, d, at, limit, kinds...); !slices.Equal(eventIDs(got), want) {
					t.Fatalf("after %s: DueEvents(%s, %d, %v) = %v; a scan of every head finds %v",
						after, at.Sub(now), limit, kinds, eventIDs(got), want)
				}
			}
		}
	}
}

// TestDueIndexFollowsTheHeads: after any mix of appends, claims, retries
// and acknowledgements the due index holds exactly one entry per key, for
// its head, and DueEvents answers what reading every head answered.
func TestDueIndexFollowsTheHeads(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	d := openTest(t, clock)
	rng := rand.New(rand.NewPCG(1, 2))
	now := clock.Now()
	kinds := []string{"webhook", "audit"}
	at := func() time.Time { // zero, past, future, or a dead letter's never
		switch rng.IntN(4) {
		case 0:
			return time.Time{}
		case 1:
			return now.Add(-time.Duration(rng.IntN(60)) * time.Second)
		case 2:
			return now.Add(time.Duration(rng.IntN(60)) * time.Second)
		}
		return time.Date(9999, time.January, 1, 0, 0, 0, 0, time.UTC)
	}
	for i := range 600 {
		key := fmt.Sprintf("k%02d", rng.IntN(25))
		var op string
		var err error
		switch rng.IntN(5) {
		case 0, 1:
			op = "append to " + key
			e := store.Event{ID: fmt.Sprintf("e%04d", i), Kind: kinds[rng.IntN(2)], Key: key, NextAt: at(),
				CreatedAt: now.Add(time.Duration(rng.IntN(5)) * time.Second)}
			if rng.IntN(2) == 0 {
				err = d.EnqueueEvents(ctx, e)
			} else {
				_, err = d.EnqueueEventsOnce(ctx, []store.Event{e})
			}
		case 2:
			op = "claim"
			_, err = d.ClaimEvents(ctx, kinds[rng.IntN(2)], now.Add(time.Duration(rng.IntN(30))*time.Second), time.Minute, 1+rng.IntN(4))
		case 3, 4:
			h, herr := d.OutboxHeads(ctx, key)
			if herr != nil {
				t.Fatal(herr)
			}
			if len(h) == 0 || h[0].Key != key {
				continue
			}
			if rng.IntN(2) == 0 {
				op = "ack the head of " + key
				err = d.AckEvent(ctx, key, h[0].ID)
			} else {
				op = "retry the head of " + key
				err = d.RetryEvent(ctx, key, h[0].ID, at(), 2, "no")
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		wantIndexAgrees(t, d, op)
		if i%20 == 0 {
			wantDueAsScanned(t, d, now, op)
		}
	}
	wantDueAsScanned(t, d, now, "the last operation")
}

// TestDueIndexBuiltAtOpen: a file written by a version without the due
// index gets it at Open; one that version wrote since the index was built
// (a downgrade, then an upgrade: an event appended, a head acknowledged, a
// head retried, none of them indexed) gets it rebuilt. Its due events are
// claimed, and no other.
func TestDueIndexBuiltAtOpen(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	now := clock.Now()
	path := filepath.Join(t.TempDir(), "old.db")
	d := openAt(t, path, clock)
	notDue(t, d, "webhook", 50, now)
	for _, e := range []store.Event{
		{ID: "evt_a", Kind: "webhook", Key: "A"}, {ID: "evt_a2", Kind: "webhook", Key: "A"},
		{ID: "evt_b", Kind: "webhook", Key: "B", NextAt: now.Add(time.Hour)},
		{ID: "aud_c", Kind: "audit", Key: "C"},
	} {
		if err := d.EnqueueEvents(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bOutboxDue); err != nil {
			return err
		}
		return tx.DeleteBucket(bOutboxDueOf)
	}); err != nil {
		t.Fatal(err)
	}
	d = reopen(t, d, path, clock)
	wantIndexAgrees(t, d, "Open without an index")
	wantDueAsScanned(t, d, now, "Open without an index")

	// What a version without the index writes, straight into the outbox.
	raw := func(what string, f func(b *bolt.Bucket) error) {
		t.Helper()
		if err := d.db.Update(func(tx *bolt.Tx) error { return f(tx.Bucket(bOutbox)) }); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	raw("append D", func(b *bolt.Bucket) error {
		v, err := marshal(store.Event{ID: "evt_d", Kind: "webhook", Key: "D", CreatedAt: now})
		if err != nil {
			return err
		}
		return b.Put(join(enc("D"), u64(1<<40)), v)
	})
	raw("ack A's head", func(b *bolt.Bucket) error {
		k, _ := b.Cursor().Seek(enc("A"))
		return b.Delete(k)
	})
	raw("retry B's head now", func(b *bolt.Bucket) error {
		k, v := b.Cursor().Seek(enc("B"))
		var e store.Event
		if err := unmarshal(v, &e); err != nil {
			return err
		}
		e.NextAt = now
		v, err := marshal(e)
		if err != nil {
			return err
		}
		return b.Put(bytes.Clone(k), v)
	})
	d = reopen(t, d, path, clock)
	wantIndexAgrees(t, d, "Open after writes without the index")
	wantDueAsScanned(t, d, now, "Open after writes without the index")
	got, err := d.ClaimEvents(ctx, "webhook", now, time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	if ids := eventIDs(got); !slices.Equal(ids, []string{"evt_a2", "evt_b", "evt_d"}) && !slices.Equal(ids, []string{"evt_a2", "evt_d", "evt_b"}) {
		t.Errorf("claimed %v; want evt_a2, evt_b and evt_d (A's head acknowledged, B retried now, D appended)", ids)
	}
}
