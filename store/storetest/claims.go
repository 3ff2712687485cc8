package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// testOutboxClaims: ClaimEvents leases the due heads of one kind, so that
// consumers side by side (replicas) never hold the same event at once, and
// an event whose consumer never settles it comes due again after the lease;
// EnqueueEventsOnce of one event is idempotent by id.
func testOutboxClaims(t *testing.T, open Opener) {
	ctx := context.Background()
	const lease = 30 * time.Second

	claim := func(t *testing.T, st store.Store, now time.Time) []store.Event {
		t.Helper()
		evs, err := st.ClaimEvents(ctx, "webhook", now, lease, 100)
		mustNil(t, "ClaimEvents", err)
		return evs
	}

	t.Run("a claim leases the due heads of its kind only", func(t *testing.T) {
		clock := NewClock()
		st := open(t, clock)
		now := clock.Now()
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx,
			store.Event{ID: "w1", Kind: "webhook", Key: "CL-1", Payload: []byte(`{"n":1}`)},
			store.Event{ID: "w2", Kind: "webhook", Key: "CL-1"},
			store.Event{ID: "a1", Kind: "audit", Key: "CL-2"},
			store.Event{ID: "w3", Kind: "webhook", Key: "CL-3", NextAt: now.Add(time.Hour)},
		))
		evs := claim(t, st, now)
		sameIDs(t, "ClaimEvents", evs, "w1")
		if e := evs[0]; e.Key != "CL-1" || e.Kind != "webhook" || string(e.Payload) != `{"n":1}` || !e.NextAt.Equal(now.Add(lease)) {
			t.Errorf("claimed event: got %+v; want w1 of CL-1 with its payload, leased until %v", e, now.Add(lease))
		}
		due, err := st.DueEvents(ctx, now, 100)
		mustNil(t, "DueEvents", err)
		sameIDs(t, "DueEvents while w1 is leased", due, "a1")
		sameIDs(t, "a second claim", claim(t, st, now))
		sameIDs(t, "a claim just before the lease ends", claim(t, st, now.Add(lease-time.Millisecond)))
		stats, err := st.OutboxStats(ctx)
		mustNil(t, "OutboxStats", err)
		for _, h := range stats.Heads {
			if h.ID == "w1" && (!h.NextAt.Equal(now.Add(lease)) || h.Attempts != 0) {
				t.Errorf("stored head: got %+v; want w1 due at the lease's end, no attempt counted", h)
			}
		}
		mustNil(t, "AckEvent", st.AckEvent(ctx, "CL-1", "w1"))
		sameIDs(t, "a claim after the ack", claim(t, st, now), "w2")
	})

	t.Run("older heads of another kind do not crowd a small claim out", func(t *testing.T) {
		// A relay claims only as many events as it has free workers (one,
		// here); audit records due before it, not yet taken by their own
		// worker, must not hide its event.
		clock := NewClock()
		st := open(t, clock)
		now := clock.Now()
		var evs []store.Event
		for i := range 20 {
			evs = append(evs, store.Event{ID: fmt.Sprintf("a%d", i), Kind: "audit", Key: fmt.Sprintf("CO-A%d", i)}) // due at once
		}
		evs = append(evs, // due later than the audit heads, and due now
			store.Event{ID: "w1", Kind: "webhook", Key: "CO-W1", NextAt: now.Add(-time.Second)},
			store.Event{ID: "w2", Kind: "webhook", Key: "CO-W2", NextAt: now.Add(-time.Second)})
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, evs...))
		got, err := st.ClaimEvents(ctx, "webhook", now, lease, 1)
		mustNil(t, "ClaimEvents", err)
		if len(got) != 1 || got[0].Kind != "webhook" {
			t.Fatalf("a claim of 1 behind 20 due audit heads: got %+v; want one webhook event", got)
		}
		rest, err := st.ClaimEvents(ctx, "webhook", now, lease, 1)
		mustNil(t, "ClaimEvents", err)
		if len(rest) != 1 || rest[0].ID == got[0].ID {
			t.Errorf("the second claim of 1: got %+v; want the other webhook event", rest)
		}
	})

	t.Run("more due heads of another kind than any read window do not crowd a claim out", func(t *testing.T) {
		// Audit records pile up while their worker cannot append (a chain
		// store down, a worker starved): more of them than a driver reads
		// at once must not hide a webhook event due after them, nor be
		// touched by the claim.
		clock := NewClock()
		st := open(t, clock)
		now := clock.Now()
		var evs []store.Event
		for i := range store.MaxListLimit + 1 {
			evs = append(evs, store.Event{ID: uniq("ca", i), Kind: "audit", Key: uniq("CO-MA", i), NextAt: now.Add(-2 * time.Minute)})
		}
		evs = append(evs, store.Event{ID: "w-late", Kind: "webhook", Key: "CO-MW", NextAt: now.Add(-time.Minute)})
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, evs...))
		got, err := st.ClaimEvents(ctx, "webhook", now, lease, 1)
		mustNil(t, "ClaimEvents", err)
		sameIDs(t, fmt.Sprintf("a claim of 1 behind %d due audit heads", store.MaxListLimit+1), got, "w-late")
		due, err := st.DueEvents(ctx, now, store.MaxListLimit)
		mustNil(t, "DueEvents", err)
		if len(due) != store.MaxListLimit || due[0].Kind != "audit" || !due[0].NextAt.Equal(now.Add(-2*time.Minute)) {
			t.Errorf("due after the claim: %d events, first %+v; want %d audit heads, untouched", len(due), due[0], store.MaxListLimit)
		}
	})

	t.Run("an unsettled event comes due again after its lease", func(t *testing.T) {
		clock := NewClock()
		st := open(t, clock)
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, store.Event{ID: "lost", Kind: "webhook", Key: "CL-4"}))
		sameIDs(t, "first claim", claim(t, st, clock.Now()), "lost")
		clock.Advance(lease)
		evs := claim(t, st, clock.Now())
		sameIDs(t, "claim once the lease ran out", evs, "lost")
		if evs[0].Attempts != 0 {
			t.Errorf("attempts: got %d; want 0 (a lost lease is not an attempt)", evs[0].Attempts)
		}
		sameIDs(t, "claim under the new lease", claim(t, st, clock.Now()))
	})

	t.Run("a retry replaces the lease", func(t *testing.T) {
		clock := NewClock()
		st := open(t, clock)
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, store.Event{ID: "r1", Kind: "webhook", Key: "CL-5"}))
		sameIDs(t, "claim", claim(t, st, clock.Now()), "r1")
		mustNil(t, "RetryEvent", st.RetryEvent(ctx, "CL-5", "r1", clock.Now().Add(5*time.Second), 1, "502"))
		sameIDs(t, "claim before the retry is due", claim(t, st, clock.Now().Add(4*time.Second)))
		evs := claim(t, st, clock.Now().Add(5*time.Second))
		sameIDs(t, "claim when the retry is due", evs, "r1")
		if evs[0].Attempts != 1 || evs[0].LastError != "502" {
			t.Errorf("claimed retry: got %+v; want attempt 1, last error 502", evs[0])
		}
	})

	t.Run("a claimer's retry is written only under its lease", func(t *testing.T) {
		// Claimer A's lease runs out (its POST stalled) and B claims the
		// event: A's retry must not replace B's lease, which kept a third
		// claimer off the event while B's POST was in flight.
		clock := NewClock()
		st := open(t, clock)
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, store.Event{ID: "s1", Kind: "webhook", Key: "CL-8"}))
		a := claim(t, st, clock.Now())
		sameIDs(t, "A's claim", a, "s1")
		clock.Advance(lease + time.Second)
		b := claim(t, st, clock.Now())
		sameIDs(t, "B's claim once A's lease ran out", b, "s1")
		if err := st.RetryClaimedEvent(ctx, "CL-8", "s1", a[0].NextAt, clock.Now().Add(5*time.Second), 1, "503"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("A's retry under B's lease: %v; want ErrConflict", err)
		}
		// A's give-back at stop keeps the count and error B's claim has:
		// still not A's to write.
		if err := st.RetryClaimedEvent(ctx, "CL-8", "s1", a[0].NextAt, clock.Now(), 0, ""); !errors.Is(err, store.ErrConflict) {
			t.Errorf("A's give-back under B's lease: %v; want ErrConflict", err)
		}
		sameIDs(t, "a claim after A's retry was due, within B's lease", claim(t, st, clock.Now().Add(6*time.Second)))
		retry := clock.Now().Add(5 * time.Second)
		mustNil(t, "B's retry", st.RetryClaimedEvent(ctx, "CL-8", "s1", b[0].NextAt, retry, 1, "502"))
		mustNil(t, "B's retry re-sent", st.RetryClaimedEvent(ctx, "CL-8", "s1", b[0].NextAt, retry, 1, "502"))
		// Due when B's is, but another count or error: not B's write re-sent.
		for _, o := range []struct {
			attempts int
			lastErr  string
		}{{2, "502"}, {1, "500"}} {
			if err := st.RetryClaimedEvent(ctx, "CL-8", "s1", b[0].NextAt, retry, o.attempts, o.lastErr); !errors.Is(err, store.ErrConflict) {
				t.Errorf("another retry (attempt %d, %q) under B's lease once B's was written: %v; want ErrConflict", o.attempts, o.lastErr, err)
			}
		}
		evs := claim(t, st, retry)
		sameIDs(t, "a claim when B's retry is due", evs, "s1")
		if evs[0].Attempts != 1 || evs[0].LastError != "502" {
			t.Errorf("claimed retry: got %+v; want B's attempt 1, last error 502", evs[0])
		}
		mustNil(t, "AckEvent", st.AckEvent(ctx, "CL-8", "s1"))
		if err := st.RetryClaimedEvent(ctx, "CL-8", "s1", evs[0].NextAt, retry, 2, "503"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a retry of an acknowledged event: %v; want ErrNotFound", err)
		}
	})

	t.Run("a lease given back is no failure", func(t *testing.T) {
		// A relay that stops gives its leases back with RetryEvent and the
		// event's own count and error: the operator's view (FailedAt,
		// OutboxStats.LastErrorAt) must not show a failure that never was,
		// nor move an earlier one's time.
		clock := NewClock()
		st := open(t, clock)
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, store.Event{ID: "g1", Kind: "webhook", Key: "CL-7"}))
		evs := claim(t, st, clock.Now())
		sameIDs(t, "claim", evs, "g1")
		clock.Advance(time.Second)
		mustNil(t, "RetryEvent (give back)", st.RetryEvent(ctx, "CL-7", "g1", clock.Now(), evs[0].Attempts, evs[0].LastError))
		head := func(t *testing.T) (store.Event, store.OutboxStats) {
			t.Helper()
			stats, err := st.OutboxStats(ctx)
			mustNil(t, "OutboxStats", err)
			for _, h := range stats.Heads {
				if h.ID == "g1" {
					return h, stats
				}
			}
			t.Fatalf("g1 not among the heads %v", ids(stats.Heads))
			return store.Event{}, stats
		}
		if h, stats := head(t); !h.FailedAt.IsZero() || !stats.LastErrorAt.IsZero() || h.Attempts != 0 {
			t.Errorf("after a give-back: failed_at %v, last error at %v, attempts %d; want no failure recorded", h.FailedAt, stats.LastErrorAt, h.Attempts)
		}
		sameIDs(t, "claim after the give-back", claim(t, st, clock.Now()), "g1")
		failed := clock.Now()
		mustNil(t, "RetryEvent (failure)", st.RetryEvent(ctx, "CL-7", "g1", failed, 1, "502"))
		clock.Advance(time.Minute)
		evs = claim(t, st, clock.Now())
		sameIDs(t, "claim of the retry", evs, "g1")
		mustNil(t, "RetryEvent (give back)", st.RetryEvent(ctx, "CL-7", "g1", clock.Now(), evs[0].Attempts, evs[0].LastError))
		if h, stats := head(t); !h.FailedAt.Equal(failed) || !stats.LastErrorAt.Equal(failed) || h.Attempts != 1 || h.LastError != "502" {
			t.Errorf("after a failure then a give-back: failed_at %v, last error at %v, attempt %d %q; want the failure's %v, 1, 502",
				h.FailedAt, stats.LastErrorAt, h.Attempts, h.LastError, failed)
		}
	})

	t.Run("limit", func(t *testing.T) {
		clock := NewClock()
		st := open(t, clock)
		for i := range 5 {
			mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, store.Event{ID: uniq("lim", i), Kind: "webhook", Key: uniq("CL-L", i)}))
		}
		evs, err := st.ClaimEvents(ctx, "webhook", clock.Now(), lease, 2)
		mustNil(t, "ClaimEvents", err)
		if len(evs) != 2 {
			t.Fatalf("claimed %v; want 2 events", ids(evs))
		}
		rest := claim(t, st, clock.Now())
		if len(rest) != 3 {
			t.Fatalf("then claimed %v; want the 3 others", ids(rest))
		}
		for _, a := range evs {
			for _, b := range rest {
				if a.ID == b.ID {
					t.Errorf("%s claimed twice", a.ID)
				}
			}
		}
	})

	t.Run("enqueue once", func(t *testing.T) {
		clock := NewClock()
		st := open(t, clock)
		e := store.Event{ID: "copy", Kind: "webhook", Key: "CL-6", Payload: []byte(`{}`)}
		// once enqueues e alone and reports whether it was appended; when
		// it was not, the id found queued must be e's.
		once := func() (bool, error) {
			t.Helper()
			pending, err := st.EnqueueEventsOnce(ctx, []store.Event{e})
			if err == nil && len(pending) > 0 && (len(pending) != 1 || pending[0] != e.ID) {
				t.Errorf("EnqueueEventsOnce: pending %v; want [%s] or none", pending, e.ID)
			}
			return err == nil && len(pending) == 0, err
		}
		for i, want := range []bool{true, false} {
			added, err := once()
			mustNil(t, "EnqueueEventsOnce", err)
			if added != want {
				t.Errorf("enqueue %d: added %v; want %v", i+1, added, want)
			}
		}
		mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, store.Event{ID: "after", Kind: "webhook", Key: "CL-6"}))
		if added, err := once(); err != nil || added {
			t.Errorf("enqueue behind another event: added %v, %v; want not added (it is still queued)", added, err)
		}
		stats, err := st.OutboxStats(ctx)
		mustNil(t, "OutboxStats", err)
		if stats.Pending != 2 {
			t.Errorf("pending: got %d; want 2 (the copy once, then the next event)", stats.Pending)
		}
		sameIDs(t, "claim", claim(t, st, clock.Now()), "copy")
		mustNil(t, "AckEvent", st.AckEvent(ctx, "CL-6", "copy"))
		sameIDs(t, "claim after the ack", claim(t, st, clock.Now()), "after")
		if added, err := once(); err != nil || !added {
			t.Errorf("enqueue after the ack: added %v, %v; want added", added, err)
		}
	})

	t.Run("enqueue events once, with their record", func(t *testing.T) {
		clock := NewClock()
		st := open(t, clock)
		ev := func(id, kind string) store.Event {
			return store.Event{ID: id, Kind: kind, Key: "CL-7", Payload: []byte(`{}`)}
		}
		pending, err := st.EnqueueEventsOnce(ctx, []store.Event{ev("a", "webhook"), ev("b", "webhook")}, ev("rec1", "audit"))
		if err != nil || len(pending) != 0 {
			t.Fatalf("first: pending %v, %v; want all appended", pending, err)
		}
		// b is queued: nothing is appended, its record neither.
		pending, err = st.EnqueueEventsOnce(ctx, []store.Event{ev("c", "webhook"), ev("b", "webhook")}, ev("rec2", "audit"))
		if err != nil || len(pending) != 1 || pending[0] != "b" {
			t.Fatalf("with b queued: pending %v, %v; want [b]", pending, err)
		}
		// Several found: the ids in the order given, on every driver,
		// not in the order the queue holds them.
		pending, err = st.EnqueueEventsOnce(ctx, []store.Event{ev("c", "webhook"), ev("b", "webhook"), ev("a", "webhook")}, ev("rec2", "audit"))
		if err != nil || !slices.Equal(pending, []string{"b", "a"}) {
			t.Fatalf("with a and b queued: pending %v, %v; want [b a]", pending, err)
		}
		if _, err := st.EnqueueEventsOnce(ctx, []store.Event{ev("d", "webhook"), {ID: "x", Kind: "audit", Key: "CL-8"}}); err == nil {
			t.Error("events of two keys: no error; want one (one atomic step takes one key)")
		}
		heads, err := st.OutboxHeads(ctx, "CL-")
		mustNil(t, "OutboxHeads", err)
		if len(heads) != 1 || heads[0].ID != "a" {
			t.Fatalf("heads %v; want a on CL-7 only", ids(heads))
		}
		var got []string
		for range 4 {
			evs, err := st.DueEvents(ctx, clock.Now(), 10)
			mustNil(t, "DueEvents", err)
			for _, e := range evs {
				got = append(got, e.ID)
				mustNil(t, "AckEvent", st.AckEvent(ctx, e.Key, e.ID))
			}
		}
		if fmt.Sprint(got) != "[a b rec1]" {
			t.Errorf("queued %v; want [a b rec1]: the events, then their record, and nothing of the refused call", got)
		}
	})

	t.Run("concurrent claimers never share an event", func(t *testing.T) {
		clock := NewClock()
		st := open(t, clock)
		outboxClaimRace(t, ctx, []store.Store{st, st}, clock, lease)
	})
}

// outboxClaimRace: claimers goroutines per store claim and acknowledge, all at
// one instant, the events of many keys (several per key) until none is left:
// every event is claimed exactly once, and never before the one ahead of it
// on its key was acknowledged.
func outboxClaimRace(t *testing.T, ctx context.Context, sts []store.Store, clock *Clock, lease time.Duration) {
	t.Helper()
	const keys, perKey, claimers = 20, 3, 4
	for k := range keys {
		var evs []store.Event
		for i := range perKey {
			evs = append(evs, store.Event{ID: fmt.Sprintf("%s-%d", uniq("CL-R", k), i), Kind: "webhook", Key: uniq("CL-R", k)})
		}
		mustNil(t, "EnqueueEvents", sts[0].EnqueueEvents(ctx, evs...))
	}
	now := clock.Now()
	deadline := time.Now().Add(30 * time.Second)
	var mu sync.Mutex
	claimed := map[string]int{}
	acked := map[string]int{} // key -> events acknowledged (or being)
	var wg sync.WaitGroup
	for i := range claimers * len(sts) {
		st := sts[i%len(sts)]
		wg.Go(func() {
			for time.Now().Before(deadline) {
				evs, err := st.ClaimEvents(ctx, "webhook", now, lease, 7)
				if err != nil {
					t.Errorf("ClaimEvents: %v", err)
					return
				}
				for _, e := range evs {
					mu.Lock()
					claimed[e.ID]++
					if want := fmt.Sprintf("%s-%d", e.Key, acked[e.Key]); e.ID != want {
						t.Errorf("claimed %s; want %s, the next of its key", e.ID, want)
					}
					acked[e.Key]++ // before the ack: the next head is claimable after it
					mu.Unlock()
					if err := st.AckEvent(ctx, e.Key, e.ID); err != nil {
						t.Errorf("AckEvent: %v", err)
						return
					}
				}
				mu.Lock()
				done := len(claimed) == keys*perKey
				mu.Unlock()
				if done {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) != keys*perKey {
		t.Errorf("%d events claimed; want %d", len(claimed), keys*perKey)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("event %s claimed %d times under one lease", id, n)
		}
	}
}

// testReschedule: RescheduleEvent moves an event's NextAt only while it is
// the one the caller read: attempts, last error and FailedAt kept, and the
// event due at its new time; a claim, a retry or another move since, or
// an event no longer pending, leaves everything as it is.
func testReschedule(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	now := clock.Now()
	held := now.Add(time.Hour)
	mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx,
		store.Event{ID: "h1", Kind: "webhook", Key: "RS-1"},
		store.Event{ID: "h2", Kind: "webhook", Key: "RS-2"}))
	mustNil(t, "RetryEvent", st.RetryEvent(ctx, "RS-1", "h1", held, 1, "429"))
	mustNil(t, "RetryEvent", st.RetryEvent(ctx, "RS-2", "h2", held, 0, ""))
	before, err := st.OutboxHeads(ctx, "RS-1")
	mustNil(t, "OutboxHeads", err)
	if len(before) != 1 {
		t.Fatalf("heads of RS-1: %d; want 1", len(before))
	}
	failedAt := before[0].FailedAt
	clock.Advance(time.Minute)

	moved, err := st.RescheduleEvent(ctx, "RS-1", "h1", held.Add(time.Nanosecond), clock.Now())
	mustNil(t, "RescheduleEvent", err)
	if moved {
		t.Errorf("RescheduleEvent from a time the event does not have: moved; want left alone")
	}
	moved, err = st.RescheduleEvent(ctx, "RS-1", "nope", held, clock.Now())
	mustNil(t, "RescheduleEvent", err)
	if moved {
		t.Errorf("RescheduleEvent of an id not queued: moved")
	}
	// The one read, as OutboxHeads returned it.
	moved, err = st.RescheduleEvent(ctx, "RS-1", "h1", before[0].NextAt, clock.Now())
	mustNil(t, "RescheduleEvent", err)
	if !moved {
		t.Fatalf("RescheduleEvent from its NextAt: not moved")
	}
	// The same call again (a re-send after a lost reply): what it did.
	moved, err = st.RescheduleEvent(ctx, "RS-1", "h1", before[0].NextAt, clock.Now())
	mustNil(t, "RescheduleEvent", err)
	if !moved {
		t.Errorf("RescheduleEvent re-sent after it moved the event: not moved; want moved, as the first call")
	}
	due, err := st.DueEvents(ctx, clock.Now(), 100)
	mustNil(t, "DueEvents", err)
	sameIDs(t, "DueEvents after the move", due, "h1")
	if e := due[0]; e.Attempts != 1 || e.LastError != "429" || !e.FailedAt.Equal(failedAt) || !e.NextAt.Equal(clock.Now()) {
		t.Errorf("moved event: attempts %d, last error %q, failed at %v, next at %v; want 1, \"429\", %v, %v",
			e.Attempts, e.LastError, e.FailedAt, e.NextAt, failedAt, clock.Now())
	}
	// Claimed since it was read: the claim stands.
	claimed, err := st.ClaimEvents(ctx, "webhook", clock.Now(), 30*time.Second, 100)
	mustNil(t, "ClaimEvents", err)
	sameIDs(t, "ClaimEvents", claimed, "h1")
	moved, err = st.RescheduleEvent(ctx, "RS-1", "h1", clock.Now(), clock.Now())
	mustNil(t, "RescheduleEvent", err)
	if moved {
		t.Errorf("RescheduleEvent of a claimed event from its time before the claim: moved")
	}
	sameIDs(t, "a claim while h1 is leased", mustClaim(t, st, clock.Now()))
	// Acknowledged: nothing to move.
	mustNil(t, "AckEvent", st.AckEvent(ctx, "RS-1", "h1"))
	moved, err = st.RescheduleEvent(ctx, "RS-1", "h1", held, clock.Now())
	mustNil(t, "RescheduleEvent", err)
	if moved {
		t.Errorf("RescheduleEvent of an acknowledged event: moved")
	}
	// h2, never attempted, still waits for its time.
	sameIDs(t, "h2 before its time", mustClaim(t, st, clock.Now()))
}

func mustClaim(t *testing.T, st store.Store, now time.Time) []store.Event {
	t.Helper()
	evs, err := st.ClaimEvents(context.Background(), "webhook", now, 30*time.Second, 100)
	mustNil(t, "ClaimEvents", err)
	return evs
}

// testRescheduleLeased: a leased event is never moved, even by a caller
// that read it leased (its NextAt the lease's end): a relay whose clock is
// behind the claimer's, or that read the head just after a claim, took
// that time for a pause's hold, and the event, made due, was claimed and
// POSTed by a second relay while the first one's POST was in flight. An
// event whose lease was given back (a relay's hold: RetryEvent) is moved.
func testRescheduleLeased(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	mustNil(t, "EnqueueEvents", st.EnqueueEvents(ctx, store.Event{ID: "l1", Kind: "webhook", Key: "RL-1"}))
	sameIDs(t, "ClaimEvents", mustClaim(t, st, clock.Now()), "l1")
	heads, err := st.OutboxHeads(ctx, "RL-1")
	mustNil(t, "OutboxHeads", err)
	if len(heads) != 1 {
		t.Fatalf("heads of RL-1: %d; want 1", len(heads))
	}
	moved, err := st.RescheduleEvent(ctx, "RL-1", "l1", heads[0].NextAt, clock.Now())
	mustNil(t, "RescheduleEvent", err)
	if moved {
		t.Errorf("RescheduleEvent of a leased event from its lease's end: moved; want left to its claimer")
	}
	sameIDs(t, "a claim while l1 is leased", mustClaim(t, st, clock.Now()))
	// Its claimer holds it back for an hour: no longer leased.
	held := clock.Now().Add(time.Hour)
	mustNil(t, "RetryEvent", st.RetryEvent(ctx, "RL-1", "l1", held, 0, ""))
	moved, err = st.RescheduleEvent(ctx, "RL-1", "l1", held, clock.Now())
	mustNil(t, "RescheduleEvent", err)
	if !moved {
		t.Errorf("RescheduleEvent of an event held back after its claim: not moved")
	}
	sameIDs(t, "a claim after the move", mustClaim(t, st, clock.Now()), "l1")
}
