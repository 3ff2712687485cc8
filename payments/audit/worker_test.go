package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
)

// replicas opens n stores on e's backend, as n paygate processes would: the
// embedded file allows one process, so its replicas share the one handle;
// Redis replicas each get their own client.
func (e *env) replicas(t *testing.T, n int) []testStore {
	t.Helper()
	out := []testStore{e.store()}
	for len(out) < n {
		if e.driver == "embedded" {
			out = append(out, e.store())
			continue
		}
		out = append(out, e.place.Open())
	}
	return out
}

// chainEvents maps each record's event id to its seq and checks the chain.
func chainEvents(t *testing.T, st store.Audit) (map[string]uint64, []Record) {
	t.Helper()
	if _, err := Verify(context.Background(), st, VerifyOptions{}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	ids := map[string]uint64{}
	var out []Record
	for _, r := range readAll(t, st) {
		rec, err := Decode(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := ids[rec.EventID]; dup {
			t.Errorf("event %s appended twice: records %d and %d", rec.EventID, prev, r.Seq)
		}
		ids[rec.EventID] = r.Seq
		out = append(out, rec)
	}
	return ids, out
}

// TestWorkersConcurrentGapFree: four replicas' Workers drain events that
// eight producers enqueue meanwhile; every event is in the chain exactly once,
// the chain is gap-free and verifies, and each order's records keep their
// enqueue order.
func TestWorkersConcurrentGapFree(t *testing.T) {
	const producers, perProducer, replicas = 8, 25, 4
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			stores := e.replicas(t, replicas)
			workers := make([]*Worker, replicas)
			logs := &logtest.Buffer{} // no replica takes another's appends for a cut
			for i := range workers {
				workers[i] = newTestWorker(t, stores[i], func(o *WorkerOptions) { o.Logger = logging.New(logs, slog.LevelDebug, nil) })
			}
			ctx, cancel := context.WithCancel(context.Background())
			var running sync.WaitGroup
			for _, w := range workers {
				running.Add(1)
				go func() { defer running.Done(); w.Run(ctx) }()
			}
			var prod sync.WaitGroup
			for p := range producers {
				prod.Add(1)
				go func() {
					defer prod.Done()
					for i := range perProducer {
						// Two orders per producer, so a key's queue holds several events.
						a := Action{Time: time.Now(), Name: "order.created", User: fmt.Sprintf("oU%d", p),
							OrderNo: fmt.Sprintf("PG-%d-%d", p, i%2), Quantity: i + 1, AmountFen: int64(100 * (i + 1))}
						ev, err := ActionEvent(a, nil)
						if err != nil {
							t.Error(err)
							return
						}
						if err := stores[p%replicas].EnqueueEvents(ctx, ev); err != nil {
							t.Error(err)
							return
						}
						workers[(p+i)%replicas].Wake()
					}
				}()
			}
			prod.Wait()
			cancel()
			running.Wait()
			// Whatever the loops left, all replicas finish concurrently.
			var fin sync.WaitGroup
			for _, w := range workers {
				fin.Add(1)
				go func() {
					defer fin.Done()
					if _, err := w.Drain(context.Background()); err != nil {
						t.Errorf("drain: %v", err)
					}
				}()
			}
			fin.Wait()

			if strings.Contains(logs.String(), "audit chain cut") {
				t.Errorf("a cut reported while replicas appended: %s", logs.String())
			}
			st, err := stores[0].OutboxStats(context.Background())
			if err != nil || st.Pending != 0 {
				t.Fatalf("outbox after drain: %+v %v; want nothing pending", st, err)
			}
			ids, recs := chainEvents(t, stores[0])
			if len(ids) != producers*perProducer || len(recs) != producers*perProducer {
				t.Fatalf("chain: %d records, %d distinct events; want %d", len(recs), len(ids), producers*perProducer)
			}
			last := map[string]int{}
			for _, r := range recs {
				if r.Quantity <= last[r.OrderNo] {
					t.Errorf("order %s: record of step %d after step %d", r.OrderNo, r.Quantity, last[r.OrderNo])
				}
				last[r.OrderNo] = r.Quantity
			}
		})
	}
}

// TestCrashBeforeAppend: the transition committed its event, then the
// process died before any Worker ran. The restarted process appends it once.
func TestCrashBeforeAppend(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			for i := range 3 {
				enqueue(t, st, mustEvent(t, Action{Name: "order.created", User: "oAlice", OrderNo: fmt.Sprintf("PG%d", i), AmountFen: 4999}, `[{"role":"user","content":"hi"}]`))
			}
			if got := drainAll(t, newTestWorker(t, st, nil)); got != 3 {
				t.Fatalf("restarted worker processed %d; want 3", got)
			}
			if got := drainAll(t, newTestWorker(t, st, nil)); got != 0 {
				t.Errorf("another restart processed %d; want 0", got)
			}
			if ids, _ := chainEvents(t, st); len(ids) != 3 {
				t.Errorf("chain has %d events; want 3", len(ids))
			}
		})
	}
}

// crash is what the afterAppend hook panics with: the process dies after the
// append, before the text is kept and the event acknowledged.
type crash struct{}

func drainUntilCrash(t *testing.T, w *Worker) {
	t.Helper()
	defer func() {
		if r := recover(); r != (crash{}) {
			t.Fatalf("drain: got panic %v; want the simulated crash", r)
		}
	}()
	_, err := w.Drain(context.Background())
	t.Fatalf("drain returned %v; want the simulated crash", err)
}

// TestCrashAfterAppend: the record was appended but the process died before
// the text was kept and the event acknowledged. The restarted process (or
// another replica that got there first, having appended more records) finds
// the record, keeps the text, acknowledges the event and appends nothing
// twice.
func TestCrashAfterAppend(t *testing.T) {
	cases := []struct {
		name  string
		later int // events appended by another replica before the restart
	}{
		{name: "restart", later: 0},
		{name: "another replica appended more first", later: 5},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e := newEnv(t, driver)
					st := e.store()
					text := `[{"role":"user","content":"buy the monthly plan"}]`
					enqueue(t, st, mustEvent(t, Action{Name: "order.created", User: "oAlice", OrderNo: "PG-crash", AmountFen: 4999}, text))
					w1 := newTestWorker(t, st, nil)
					w1.afterAppend = func(store.Event, uint64) error { panic(crash{}) }
					drainUntilCrash(t, w1)
					if recs := readAll(t, st); len(recs) != 1 {
						t.Fatalf("after the crash: %d records; want 1", len(recs))
					}
					if _, err := st.GetAuditText(context.Background(), 1); !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("text before the restart: %v; want not kept yet", err)
					}
					// The event of the crashed append is still pending; another
					// replica appends other orders' events.
					other := newTestWorker(t, st, nil)
					for i := range c.later {
						enqueue(t, st, mustEvent(t, Action{Name: "order.paid", User: "oBob", OrderNo: fmt.Sprintf("PG-other-%d", i), AmountFen: 100}, ""))
					}
					if c.later > 0 {
						if got := drainAll(t, other); got != c.later+1 {
							t.Errorf("other replica processed %d; want %d (its events and the pending one)", got, c.later+1)
						}
					}
					if got := drainAll(t, newTestWorker(t, st, nil)); c.later == 0 && got != 1 {
						t.Errorf("restarted worker processed %d; want 1 (found in the chain)", got)
					}
					ids, _ := chainEvents(t, st)
					if len(ids) != 1+c.later {
						t.Errorf("chain has %d events; want %d", len(ids), 1+c.later)
					}
					got, err := st.GetAuditText(context.Background(), 1)
					if err != nil || string(got) != text {
						t.Errorf("text of record 1: got %q %v; want %q", got, err, text)
					}
					stats, err := st.OutboxStats(context.Background())
					if err != nil || stats.Pending != 0 {
						t.Errorf("outbox: %+v %v; want nothing pending", stats, err)
					}
				})
			}
		})
	}
}

// flakyAppend applies an append and then reports the store unavailable, as
// a Redis write whose replica wait timed out does.
type flakyAppend struct {
	testStore
	mu    sync.Mutex
	fails int
}

func (f *flakyAppend) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	if err := f.testStore.AppendAudit(ctx, rec); err != nil {
		return err
	}
	return appliedButUnavailable(&f.mu, &f.fails)
}

// appliedButUnavailable is what an append that went through reports while
// *left (guarded by mu) is above zero, spending one: the ErrUnavailable of
// a Redis write applied on the primary whose replica wait timed out, else
// nil. It exists so the single and the batch append wrappers fail the
// worker the same way the store does, in one place.
func appliedButUnavailable(mu *sync.Mutex, left *int) error {
	mu.Lock()
	defer mu.Unlock()
	if *left > 0 {
		*left--
		return fmt.Errorf("wait for replicas: %w", store.ErrUnavailable)
	}
	return nil
}

// TestAppliedButUnavailable: an append reported failed that in fact landed is
// found in the chain on the retry, not appended again.
func TestAppliedButUnavailable(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := &flakyAppend{testStore: e.store(), fails: 1}
			enqueue(t, st, mustEvent(t, Action{Name: "order.created", User: "oAlice", OrderNo: "PG1", AmountFen: 4999}, ""))
			var clock time.Duration
			w := newTestWorker(t, st, func(o *WorkerOptions) { o.Now = func() time.Time { return time.Now().Add(clock) } })
			if n, err := w.Drain(context.Background()); n != 0 || !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("first drain: got %d %v; want 0 and ErrUnavailable", n, err)
			}
			clock = time.Minute // past the retry backoff
			if got := drainAll(t, w); got != 1 {
				t.Fatalf("retry processed %d; want 1", got)
			}
			if ids, _ := chainEvents(t, st); len(ids) != 1 {
				t.Errorf("chain has %d events; want 1", len(ids))
			}
		})
	}
}

// TestWorkerLeavesOtherKinds: a webhook event ahead in an order's queue is
// not the audit Worker's; the order's audit event waits behind it while other
// orders' audit events go on.
func TestWorkerLeavesOtherKinds(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			ctx := context.Background()
			enqueue(t, st, store.Event{ID: "evt_hook", Kind: "webhook", Key: "PG1", Payload: []byte(`{}`)})
			enqueue(t, st, mustEvent(t, Action{Name: "order.paid", OrderNo: "PG1", User: "oA"}, ""))
			enqueue(t, st, mustEvent(t, Action{Name: "order.paid", OrderNo: "PG2", User: "oB"}, ""))
			w := newTestWorker(t, st, nil)
			if got := drainAll(t, w); got != 1 {
				t.Fatalf("drain with a webhook ahead: %d; want 1 (PG2 only)", got)
			}
			due, err := st.DueEvents(ctx, time.Now(), 10)
			if err != nil || len(due) != 1 || due[0].ID != "evt_hook" {
				t.Fatalf("due after drain: %+v %v; want the webhook event untouched", due, err)
			}
			if err := st.AckEvent(ctx, "PG1", "evt_hook"); err != nil {
				t.Fatal(err)
			}
			if got := drainAll(t, w); got != 1 {
				t.Fatalf("drain after the webhook went: %d; want 1", got)
			}
			_, recs := chainEvents(t, st)
			if len(recs) != 2 || recs[0].OrderNo != "PG2" || recs[1].OrderNo != "PG1" {
				t.Errorf("chain: %+v; want PG2 then PG1", recs)
			}
		})
	}
}

// TestSeenIndexRereadsForOldEvents: after the index forgot old records, an
// event created long ago makes it read the chain back far enough to find its
// record.
func TestSeenIndexRereadsForOldEvents(t *testing.T) {
	e := newEnv(t, "embedded")
	st := e.store()
	ctx := context.Background()
	base := time.Now()
	var head store.AuditHead
	for i := range 1200 {
		at := base.Add(time.Duration(i) * time.Minute)
		rec, err := Seal(head, Record{EventID: fmt.Sprintf("evt_%d", i), AppendedAt: at, Action: Action{Time: at, Name: "order.paid"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AppendAudit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		head = store.AuditHead{Seq: rec.Seq, Hash: rec.Hash}
	}
	var s seenIndex
	s.ids = map[string]uint64{}
	// Recent events: only the tail is read.
	if _, err := s.cover(ctx, st, head, base.Add(1190*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ids["evt_1195"]; !ok {
		t.Errorf("evt_1195 not in the index")
	}
	if _, ok := s.ids["evt_100"]; ok || len(s.entries) > 600 {
		t.Errorf("index holds %d entries (evt_100 present: %v); want only the recent tail", len(s.entries), ok)
	}
	// An old event: the index reads back to it.
	if _, err := s.cover(ctx, st, head, base.Add(100*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := s.ids["evt_100"]; got != 101 {
		t.Errorf("evt_100: got seq %d; want 101", got)
	}
	// A recent event again: the old entries are forgotten.
	if _, err := s.cover(ctx, st, head, base.Add(1190*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ids["evt_100"]; ok {
		t.Errorf("evt_100 still remembered after pruning")
	}
}

// TestWorkerSetsAsideOtherKinds: an event of another kind at the head of an
// order's queue is left to its consumer, holding back the order's audit
// event behind it, unless SetAside moves it out of the way (as it does for
// a webhook event that no relay took: webhooks turned off); then the audit
// event reaches the chain and the other event is kept where it was moved.
func TestWorkerSetsAsideOtherKinds(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, driver)
			st := e.store()
			enqueue(t, st, store.Event{ID: "evt_hook", Kind: "webhook", Key: "PG1", Payload: []byte(`{}`)})
			enqueue(t, st, mustEvent(t, Action{Name: "refund.succeeded", OrderNo: "PG1", User: "oA"}, ""))

			if got := drainAll(t, newTestWorker(t, st, nil)); got != 0 {
				t.Fatalf("drain without SetAside: %d appended; want 0 (the webhook event is its consumer's)", got)
			}
			refuse := func(context.Context, store.Event) (bool, error) { return false, nil }
			if got := drainAll(t, newTestWorker(t, st, func(o *WorkerOptions) { o.SetAside = refuse })); got != 0 {
				t.Fatalf("drain with SetAside declining: %d appended; want 0", got)
			}

			var offered []string
			w := newTestWorker(t, st, func(o *WorkerOptions) {
				o.SetAside = func(ctx context.Context, e store.Event) (bool, error) {
					offered = append(offered, e.Key+"/"+e.ID)
					if strings.HasPrefix(e.Key, "parked:") {
						return false, nil
					}
					cp := e
					cp.Key = "parked:" + e.Key
					if err := st.EnqueueEvents(ctx, cp); err != nil {
						return false, err
					}
					return true, st.AckEvent(ctx, e.Key, e.ID)
				}
			})
			if got := drainAll(t, w); got != 1 {
				t.Fatalf("drain: %d appended; want 1", got)
			}
			if _, recs := chainEvents(t, st); len(recs) != 1 || recs[0].OrderNo != "PG1" || recs[0].Name != "refund.succeeded" {
				t.Errorf("chain: %+v; want PG1's refund.succeeded", recs)
			}
			due, err := st.DueEvents(ctx, time.Now(), 10)
			if err != nil || len(due) != 1 || due[0].ID != "evt_hook" || due[0].Key != "parked:PG1" {
				t.Fatalf("due after drain: %+v %v; want the webhook event kept where it was set aside", due, err)
			}
			if len(offered) == 0 || offered[0] != "PG1/evt_hook" {
				t.Errorf("offered %v; want PG1/evt_hook first", offered)
			}
		})
	}
}

// TestWorkerNotStarvedByHeadsItSkips: webhooks were on, the merchant's
// endpoint failed for a while, so store.MaxListLimit orders' delivery queues
// hold a failed order.paid, due again, and nothing consumes them: webhooks
// were turned off (SetAside is webhook.SetAside, as cmd/paygate wires it
// with no relay, and leaves delivery queues alone), or the relay of another
// replica is behind (no SetAside). An audit event that failed once is due
// after all of them, and the order's next audit event waits behind it. Both
// reach the chain, in order, however many heads of another kind are due
// first; the webhook heads are left as they were.
func TestWorkerNotStarvedByHeadsItSkips(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, mode := range []string{"webhooks off", "relay elsewhere"} {
			t.Run(driver+"/"+mode, func(t *testing.T) {
				ctx := context.Background()
				st := newEnv(t, driver).store()
				now := time.Now()
				stuckDeliveries(t, st, now)
				first := mustEvent(t, Action{Name: "order.paid", OrderNo: "PGX", Client: "shop", User: "oA"}, "")
				next := mustEvent(t, Action{Name: "refund.proposed", OrderNo: "PGX", Client: "shop", User: "oA"}, "")
				first.ID, next.ID = "evt_first", "evt_next"
				enqueue(t, st, first, next)
				// The worker failed to append it once and rescheduled it:
				// due again after the webhook heads.
				if err := st.RetryEvent(ctx, "PGX", first.ID, now.Add(-time.Minute), 1, "transient"); err != nil {
					t.Fatal(err)
				}

				w := newTestWorker(t, st, func(o *WorkerOptions) {
					if mode == "webhooks off" {
						o.SetAside = webhook.SetAside(st, webhook.DefaultAbandonedAfter, nil)
					}
				})
				if got := drainAll(t, w); got != 2 {
					t.Fatalf("drain: %d appended; want 2 (starved by %d due webhook heads it skips?)", got, store.MaxListLimit)
				}
				if _, recs := chainEvents(t, st); len(recs) != 2 || recs[0].Name != "order.paid" || recs[1].Name != "refund.proposed" {
					t.Errorf("chain: %+v; want PGX's order.paid, then its refund.proposed", recs)
				}
				due, err := st.DueEvents(ctx, time.Now(), store.MaxListLimit, webhook.Kind)
				if err != nil || len(due) != store.MaxListLimit || due[0].Attempts != 3 || !strings.HasPrefix(due[0].Key, webhook.QueuePrefix) {
					t.Errorf("webhook heads after the drain: %d, %v; want all %d where they were", len(due), err, store.MaxListLimit)
				}
			})
		}
	}
}

// TestWorkerSetsAsideAnIntakeHeadBehindManyDeliveryHeads: with webhooks
// off, an order's audit events wait behind a webhook event no relay took off
// the order's own queue until the worker sets it aside. More due delivery
// heads than one read holds (left by a run with webhooks on) must not hide
// that intake head from it: they are of the same kind, so a read by kind
// cannot tell them apart, and the order's audit records were never appended.
func TestWorkerSetsAsideAnIntakeHeadBehindManyDeliveryHeads(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			st := newEnv(t, driver).store()
			now := time.Now()
			stuckDeliveries(t, st, now)
			// PGY's order.paid, never taken off its intake by a relay (one
			// ran and died), then its audit record behind it.
			intake := store.Event{ID: "evt_hook_PGY", Kind: webhook.Kind, Key: "PGY", Payload: []byte(`{"type":"order.paid"}`),
				CreatedAt: now.Add(-time.Hour), NextAt: now.Add(-time.Minute)}
			rec := mustEvent(t, Action{Name: "order.paid", OrderNo: "PGY", Client: "shop", User: "oA"}, "")
			rec.ID = "evt_rec"
			enqueue(t, st, intake, rec)
			w := newTestWorker(t, st, func(o *WorkerOptions) {
				o.SetAside = webhook.SetAside(st, webhook.DefaultAbandonedAfter, nil)
			})
			if got := drainAll(t, w); got != 1 {
				t.Fatalf("drain: %d appended; want PGY's record, once its abandoned intake head was set aside", got)
			}
			heads, err := st.OutboxHeads(context.Background(), webhook.QueuePrefix+"PGY")
			if err != nil || len(heads) != 1 || heads[0].ID != intake.ID {
				t.Errorf("PGY's delivery queue: %+v, %v; want the set-aside order.paid waiting for a relay", heads, err)
			}
		})
	}
}

// stuckDeliveries queues a full read's worth (store.MaxListLimit) of
// webhook delivery-queue heads, failed and due since two minutes before
// now, that nothing here consumes: what a run with webhooks on leaves when
// the merchant was down.
func stuckDeliveries(t *testing.T, st store.Outbox, now time.Time) {
	t.Helper()
	hooks := make([]store.Event, 0, store.MaxListLimit)
	for i := range store.MaxListLimit {
		no := fmt.Sprintf("PG%04d", i)
		hooks = append(hooks, store.Event{ID: "evt_hook_" + no, Kind: webhook.Kind, Key: webhook.QueuePrefix + no,
			Payload: []byte(`{"type":"order.paid"}`), Attempts: 3, NextAt: now.Add(-2 * time.Minute)})
	}
	enqueue(t, st, hooks...)
}
