package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/store"
)

// countingAppends counts the chain appends the worker makes, and can
// report a batch that went through as failed (a Redis write whose replica
// wait timed out).
type countingAppends struct {
	testStore
	mu                 sync.Mutex
	singles, batches   int
	records, batchFail int
}

func (c *countingAppends) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	c.mu.Lock()
	c.singles++
	c.records++
	c.mu.Unlock()
	return c.testStore.AppendAudit(ctx, rec)
}

func (c *countingAppends) AppendAuditBatch(ctx context.Context, recs []store.AuditRecord) error {
	c.mu.Lock()
	c.batches++
	c.records += len(recs)
	c.mu.Unlock()
	if err := c.testStore.AppendAuditBatch(ctx, recs); err != nil {
		return err
	}
	return appliedButUnavailable(&c.mu, &c.batchFail)
}

func (c *countingAppends) calls() (singles, batches int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.singles, c.batches
}

// burst enqueues n order.created events of n orders, each with its text.
func burst(t testing.TB, st store.Outbox, n int, prefix string) []store.Event {
	t.Helper()
	evs := make([]store.Event, 0, n)
	for i := range n {
		evs = append(evs, withID(fmt.Sprintf("%s-ev%05d", prefix, i), mustEvent(t, Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
			OrderNo: fmt.Sprintf("%s%05d", prefix, i), AmountFen: 4999}, fmt.Sprintf(`[{"role":"user","content":"buy %d"}]`, i))))
	}
	enqueue(t, st, evs...)
	return evs
}

func withID(id string, e store.Event) store.Event {
	e.ID = id
	return e
}

// wantAllRecorded fails unless the chain verifies with every event of evs
// in it once, its text kept, and nothing is left in the outbox.
func wantAllRecorded(t *testing.T, st testStore, evs []store.Event) {
	t.Helper()
	ids, _ := chainEvents(t, st)
	if len(ids) != len(evs) {
		t.Errorf("chain holds %d events; want %d", len(ids), len(evs))
	}
	for _, e := range evs {
		if _, ok := ids[e.ID]; !ok {
			t.Errorf("event %s not in the chain", e.ID)
		}
	}
	res, err := Verify(context.Background(), st, VerifyOptions{Texts: true})
	if err != nil || res.Records != uint64(len(evs)) || res.TextsChecked != len(evs) {
		t.Errorf("verify -text: %+v %v; want %d records, each text checked", res, err, len(evs))
	}
	if stats, err := st.OutboxStats(context.Background()); err != nil || stats.Pending != 0 {
		t.Errorf("outbox: %+v %v; want nothing pending", stats, err)
	}
}

// TestWorkerAppendsABurstInBatches: a burst of audit events (payment turns
// of many orders at once) is appended in a few batch appends, not one
// append per record, and the chain verifies after with every event once;
// a lone event after it is appended alone, at once.
func TestWorkerAppendsABurstInBatches(t *testing.T) {
	const n = 600 // more than one batch (maxBatch)
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := &countingAppends{testStore: e.store()}
			evs := burst(t, st, n, "PGB")
			w := newTestWorker(t, st, nil)
			if got := drainAll(t, w); got != n {
				t.Fatalf("drained %d; want %d", got, n)
			}
			singles, batches := st.calls()
			t.Logf("%d records in %d batch appends and %d single appends", n, batches, singles)
			if calls, want := singles+batches, (n+maxBatch-1)/maxBatch; calls > want {
				t.Errorf("%d records appended in %d store calls (%d batches, %d single); want at most %d", n, calls, batches, singles, want)
			}
			wantAllRecorded(t, st, evs)

			lone := mustEvent(t, Action{Time: time.Now(), Name: "order.paid", Client: "shop-bot", User: "oAlice", OrderNo: "PGB00000", AmountFen: 4999}, "")
			enqueue(t, st, lone)
			if got := drainAll(t, w); got != 1 {
				t.Fatalf("lone event: drained %d; want 1", got)
			}
			if s2, b2 := st.calls(); s2 != singles+1 || b2 != batches {
				t.Errorf("lone event: %d single and %d batch appends more; want it appended alone, in one", s2-singles, b2-batches)
			}
			if _, err := Verify(context.Background(), st, VerifyOptions{}); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

// TestWorkerBatchAppliedButUnavailable: a batch append that went through
// but was reported failed (a replica wait that timed out) is not appended
// again: the events, taken one at a time, are found in the chain.
func TestWorkerBatchAppliedButUnavailable(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := &countingAppends{testStore: e.store(), batchFail: 1}
			evs := burst(t, st, 40, "PGU")
			w := newTestWorker(t, st, nil)
			if got := drainAll(t, w); got != len(evs) {
				t.Fatalf("drained %d; want %d (each found in the chain)", got, len(evs))
			}
			if singles, _ := st.calls(); singles != 0 {
				t.Errorf("%d single appends after the batch that went through; want none (each event is in the chain)", singles)
			}
			if st.batchFail != 0 {
				t.Errorf("no batch was reported failed (%d failures left); want the first reported ErrUnavailable", st.batchFail)
			}
			wantAllRecorded(t, st, evs)
		})
	}
}

// TestWorkerBatchNeverOverwritesARecord: with the head moved back past
// stored records, a batch whose later place holds a record is refused
// whole, no record written over or past the head, and each event waits
// in the outbox (TestAppendNeverOverwritesARecord for one event).
func TestWorkerBatchNeverOverwritesARecord(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			recs := buildChain(t, e, 4)
			e.rawSetHead(store.AuditHead{Seq: 3, Hash: recs[2].Hash})
			st := e.store()
			ctx := context.Background()
			// Record 4's place is the batch's first: refused, and nothing
			// of it lands at 5 and 6 either.
			evs := burst(t, st, 3, "PGO")
			w := newTestWorker(t, st, nil)
			if _, err := w.Drain(ctx); !errors.Is(err, store.ErrExists) {
				t.Errorf("drain: %v; want it to wrap store.ErrExists", err)
			}
			if got := e.rawGet(4); got.Hash != recs[3].Hash || !bytes.Equal(got.Body, recs[3].Body) {
				t.Errorf("record 4 after the batch: hash %.12s…; want the one stored before, %.12s…", got.Hash, recs[3].Hash)
			}
			if got, err := st.ReadAudit(ctx, 5, 10); err != nil || len(got) != 0 {
				t.Errorf("past record 4: %d records, %v; want none (nothing of the batch written)", len(got), err)
			}
			if h, err := st.AuditHead(ctx); err != nil || h.Seq != 3 {
				t.Errorf("head: %+v %v; want record 3 still", h, err)
			}
			if stats, err := st.OutboxStats(ctx); err != nil || stats.Pending != len(evs) {
				t.Errorf("outbox: %+v %v; want the %d events still pending", stats, err, len(evs))
			}
			// The batch store call itself: a refusal at its third place
			// appends none of the first two.
			e.rawSetHead(store.AuditHead{Seq: 1, Hash: recs[0].Hash})
			e.rawDelete(2)
			e.rawDelete(3)
			st = e.store() // reopened after the edits
			h := store.AuditHead{Seq: 1, Hash: recs[0].Hash}
			var batch []store.AuditRecord
			for i := range 3 {
				rec, err := Seal(h, Record{EventID: fmt.Sprintf("b%d", i), AppendedAt: time.Now(), Action: Action{Name: "order.created", OrderNo: "PGO"}})
				if err != nil {
					t.Fatal(err)
				}
				batch = append(batch, rec)
				h = store.AuditHead{Seq: rec.Seq, Hash: rec.Hash}
			}
			if err := st.AppendAuditBatch(ctx, batch); !errors.Is(err, store.ErrExists) {
				t.Errorf("AppendAuditBatch over record 4: %v; want ErrExists", err)
			}
			// (The embedded store's read seeks on to record 4.)
			if got, err := st.ReadAudit(ctx, 2, 2); err != nil || (len(got) > 0 && got[0].Seq < 4) {
				t.Errorf("places 2 and 3 after the refused batch: %+v, %v; want none", got, err)
			}
			if h, err := st.AuditHead(ctx); err != nil || h.Seq != 1 {
				t.Errorf("head after the refused batch: %+v %v; want record 1 still", h, err)
			}
		})
	}
}

// overlapAcks holds the first AckEvent until a second one begins, or until
// a deadline, which it reports.
type overlapAcks struct {
	testStore
	once, closeOnce sync.Once
	second          chan struct{}
	calls           atomic.Int64
	timedOut        atomic.Bool
}

func (o *overlapAcks) AckEvent(ctx context.Context, key, id string) error {
	if o.calls.Add(1) == 1 {
		select {
		case <-o.second:
		case <-time.After(10 * time.Second):
			o.timedOut.Store(true)
		}
	} else {
		o.closeOnce.Do(func() { close(o.second) })
	}
	return o.testStore.AckEvent(ctx, key, id)
}

// TestWorkerSettlesABatchAtOnce: the events of a batch appended together
// have their texts kept and are acknowledged at once, not one after
// another: each is a store write or two (two fsyncs a record on the
// embedded store), and one after another they were most of the audit's lag
// after a burst, their orders' webhooks waiting behind them.
func TestWorkerSettlesABatchAtOnce(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := &overlapAcks{testStore: e.store(), second: make(chan struct{})}
			evs := burst(t, st, 100, "PGS")
			w := newTestWorker(t, st, nil)
			if got := drainAll(t, w); got != len(evs) {
				t.Fatalf("drained %d; want %d", got, len(evs))
			}
			if st.timedOut.Load() {
				t.Errorf("the batch's first acknowledgement waited 10 s and no other began meanwhile; want them at once")
			}
			wantAllRecorded(t, st, evs)
		})
	}
}

// TestWorkerBatchWithEventsAlreadyInTheChain: a batch whose events are in
// part already in the chain (appended by a process that stopped before
// keeping their texts and acknowledging them) appends the others only,
// and keeps every text: each event is in the chain once.
func TestWorkerBatchWithEventsAlreadyInTheChain(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			first := burst(t, st, 30, "PGD")
			w := newTestWorker(t, st, nil)
			w.afterAppend = func(store.Event, uint64) error { return errors.New("stopped before keeping the text") }
			if _, err := w.Drain(context.Background()); err == nil {
				t.Fatal("first drain: want the stop")
			}
			if h, err := st.AuditHead(context.Background()); err != nil || h.Seq != uint64(len(first)) {
				t.Fatalf("head after the stop: %+v %v; want the %d records appended", h, err, len(first))
			}
			more := burst(t, st, 30, "PGE")
			// A restarted process, past the stopped events' retry backoff.
			w2 := newTestWorker(t, st, func(o *WorkerOptions) { o.Now = func() time.Time { return time.Now().Add(time.Minute) } })
			if got := drainAll(t, w2); got != len(first)+len(more) {
				t.Fatalf("drained %d; want %d", got, len(first)+len(more))
			}
			wantAllRecorded(t, st, append(first, more...))
		})
	}
}

// raceGate lets n replicas' first batch appends go only once all n have
// come, each sealed after the same head.
type raceGate struct {
	n       int64
	arrived atomic.Int64
	all     chan struct{}
	once    sync.Once
}

// batchesAtOnce holds its replica's first batch append at gate.
type batchesAtOnce struct {
	testStore
	gate  *raceGate
	first atomic.Bool
}

func (b *batchesAtOnce) AppendAuditBatch(ctx context.Context, recs []store.AuditRecord) error {
	if g := b.gate; b.first.CompareAndSwap(false, true) {
		if g.arrived.Add(1) == g.n {
			g.once.Do(func() { close(g.all) })
		}
		select {
		case <-g.all:
		case <-time.After(10 * time.Second):
			return errors.New("the other replicas' batches never came")
		}
	}
	return b.testStore.AppendAuditBatch(ctx, recs)
}

// TestWorkerReplicasRaceTheirBatches: replicas draining one burst at once,
// each sealing its first batch after the same head, race their batch
// appends: one wins, the others lose the race, find the winner's records
// in the chain, append the rest after it, and every event is in the chain
// once, its text kept, the chain verifying with the texts.
func TestWorkerReplicasRaceTheirBatches(t *testing.T) {
	const replicas, n = 4, 600
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			stores := e.replicas(t, replicas)
			evs := burst(t, stores[0], n, "PGR")
			gate := &raceGate{n: replicas, all: make(chan struct{})}
			workers := make([]*Worker, replicas)
			for i, st := range stores {
				workers[i] = newTestWorker(t, &batchesAtOnce{testStore: st, gate: gate}, nil)
			}
			var wg sync.WaitGroup
			for _, w := range workers {
				wg.Go(func() {
					if _, err := w.Drain(context.Background()); err != nil {
						t.Errorf("drain: %v", err)
					}
				})
			}
			wg.Wait()
			var conflicts float64
			for _, w := range workers {
				conflicts += testutil.ToFloat64(w.m.conflicts)
			}
			if conflicts < replicas-1 {
				t.Errorf("%v lost races among %d replicas' first batches, sealed after one head; want at least %d", conflicts, replicas, replicas-1)
			}
			wantAllRecorded(t, stores[0], evs)
		})
	}
}
