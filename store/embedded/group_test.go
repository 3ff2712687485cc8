package embedded

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// holdWriter holds bbolt's one writer until the returned release, so that
// the writes started meanwhile queue for it.
func holdWriter(t *testing.T, d *DB) (release func()) {
	t.Helper()
	tx, err := d.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	return func() { _ = tx.Rollback() }
}

// waitQueued returns once n goroutines in a function named fn are queued:
// each waits in batched for a commit to take it, or for the writer
// (commit: a group's leader). A goroutine that merely was not running
// counted before it had queued (parked in a GC assist as batched allocated
// its call, or on the group's lock): the test let the writer go, and that
// write came in a commit of its own after the group
// (TestQueuedWritesCommitTogether: "50 writes queued behind the writer
// took 3 commits", 1 run in a few hundred under GOGC=1).
func waitQueued(t *testing.T, fn string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
		queued := 0
		for _, g := range strings.Split(b.String(), "\n\n") {
			if !strings.Contains(g, fn) {
				continue
			}
			head, _, _ := strings.Cut(g, "\n")
			inGroup := strings.Contains(head, "[chan receive") && strings.Contains(g, ".(*DB).batched(")
			if inGroup || strings.Contains(g, ".(*DB).commit(") {
				queued++
			}
		}
		if queued >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes in %s queued for the writer after 10 s; want %d", queued, fn, n)
		}
		runtime.Gosched()
	}
}

// TestQueuedWritesCommitTogether: the hot path's writes that queue for the
// writer commit in one transaction, because each committed alone, its two
// fsyncs holding every other turn's writes, and a 200-buyer flash sale ran
// at half the turns per second of the same writes without the flushes.
// Each write still gets its own result.
func TestQueuedWritesCommitTogether(t *testing.T) {
	d := openTest(t, storetest.NewClock())
	var commits atomic.Int64
	d.commitHook = func() { commits.Add(1) }
	const n = 50
	release := holdWriter(t, d)
	got := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, err := d.IncrCounter(context.Background(), "orders:day:user", time.Hour)
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	waitQueued(t, "IncrCounter", n)
	release()
	wg.Wait()
	slices.Sort(got)
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("counts %v; want 1..%d, each once", got, n)
		}
	}
	if c := commits.Load(); c > 2 {
		t.Errorf("%d writes queued behind the writer took %d commits; want at most 2 (the first, then the rest together)", n, c)
	}
}

// TestGroupWithAFailingWrite: a write that fails in a group (an update
// that lost its race) gets its error and changes nothing, and the writes
// queued with it are committed once each, their results those of their own
// run: a rate-limit window that admits three of six callers admits three.
func TestGroupWithAFailingWrite(t *testing.T) {
	d := openTest(t, storetest.NewClock())
	ctx := context.Background()
	o := &store.Order{OrderNo: "PG-group-1", Client: "bot", User: "oUser", SKU: "sku", Quantity: 1, AmountFen: 100, Status: store.StatusCreating}
	if err := d.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	var commits atomic.Int64
	d.commitHook = func() { commits.Add(1) }
	// Queued one after another behind the held writer: the first caller
	// commits alone, the group after it is two callers, the stale update,
	// three callers.
	const callers = 6
	release := holdWriter(t, d)
	var wg sync.WaitGroup
	allowed := make([]bool, callers)
	var stale error
	for i := range callers {
		wg.Go(func() {
			ok, err := d.AllowWindow(ctx, "paycalls:bot:oUser", 3, time.Minute, fmt.Sprint("call-", i))
			if err != nil {
				t.Error(err)
			}
			allowed[i] = ok
		})
		waitQueued(t, "AllowWindow", i+1)
		if i == 2 {
			wg.Go(func() {
				lost := *o
				lost.Version = 7 // another writer's update came first
				lost.Status = store.StatusAwaitingPayment
				stale = d.UpdateOrder(ctx, &lost, store.StatusCreating)
			})
			waitQueued(t, "UpdateOrder", 1)
		}
	}
	release()
	wg.Wait()
	if c := commits.Load(); c != 3 {
		t.Errorf("%d commits; want 3 (the first caller, the two before the stale update, the three after it)", c)
	}
	if !errors.Is(stale, store.ErrConflict) {
		t.Errorf("the stale update: %v; want ErrConflict", stale)
	}
	if cur, err := d.GetOrder(ctx, o.OrderNo); err != nil || cur.Version != 1 || cur.Status != store.StatusCreating {
		t.Errorf("order after the stale update: %+v, %v; want version 1, creating", cur, err)
	}
	n := 0
	for _, ok := range allowed {
		if ok {
			n++
		}
	}
	if n != 3 {
		t.Errorf("window of 3 admitted %d of %d callers (%v)", n, callers, allowed)
	}
}

// TestGroupCommitPanics: a panic in a group's commit past the writes'
// own functions (bbolt's, in its commit) answers every write of the group
// with an error and leaves the group to later writes, because it unwound
// the leader with the group still marked as led: the writes queued with it
// and every hot-path write after waited for good (the payment path hung
// while /readyz, whose probe does not queue, said ready), and one on a
// leader's own goroutine took the process down.
func TestGroupCommitPanics(t *testing.T) {
	d := openTest(t, storetest.NewClock())
	ctx := context.Background()
	var panics atomic.Int64
	d.commitHook = func() {
		if panics.Add(1) <= 2 {
			panic("bbolt: a corrupt page")
		}
	}
	// The first write leads alone; the three queued behind it are the next
	// group, committed by a leader of its own.
	release := holdWriter(t, d)
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			defer func() {
				if p := recover(); p != nil {
					errs <- fmt.Errorf("panicked: %v", p)
				}
			}()
			_, err := d.IncrCounter(ctx, "orders:day:user", time.Hour)
			errs <- err
		}()
		waitQueued(t, "IncrCounter", i+1)
	}
	release()
	for range 4 {
		select {
		case err := <-errs:
			if err == nil || strings.HasPrefix(err.Error(), "panicked") {
				t.Errorf("a write of a group whose commit panicked: %v; want its error", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a write of a group whose commit panicked never returned")
		}
	}
	done := make(chan error, 1)
	go func() { _, err := d.IncrCounter(ctx, "orders:day:user", time.Hour); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("a write after the panics: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write after a group's commit panicked never returned")
	}
	if err := d.Ping(ctx); err != nil {
		t.Errorf("Ping after a write succeeded again: %v", err)
	}
}

// TestAuditTextsAndAcksCommitTogether: the audit worker keeps the texts of
// a batch's records and acknowledges their events at once; queued behind
// the writer, those writes commit together, because each committed alone,
// two fsyncs a record, and they were most of the audit's lag after a burst
// (1,500 payment turns: 1.1-1.7 s with the appends batched).
func TestAuditTextsAndAcksCommitTogether(t *testing.T) {
	d := openTest(t, storetest.NewClock())
	ctx := context.Background()
	const n = 40
	evs := make([]store.Event, n)
	for i := range evs {
		evs[i] = store.Event{ID: fmt.Sprintf("ev-%d", i), Key: fmt.Sprintf("PG%d", i), Kind: "audit", Payload: []byte(`{}`)}
	}
	if err := d.EnqueueEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	var commits atomic.Int64
	d.commitHook = func() { commits.Add(1) }
	release := holdWriter(t, d)
	var wg sync.WaitGroup
	for i, e := range evs {
		wg.Go(func() {
			if err := d.PutAuditText(ctx, uint64(i+1), "shop", "u", []byte("hello"), time.Now(), time.Hour); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if err := d.AckEvent(ctx, e.Key, e.ID); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, "PutAuditText", n)
	waitQueued(t, "AckEvent", n)
	release()
	wg.Wait()
	if c := commits.Load(); c > 2 {
		t.Errorf("%d text writes and %d acknowledgements queued behind the writer took %d commits; want at most 2", n, n, c)
	}
	for i := range n {
		if txt, err := d.GetAuditText(ctx, uint64(i+1)); err != nil || string(txt) != "hello" {
			t.Errorf("text %d: %q %v; want it kept", i+1, txt, err)
		}
	}
	if st, err := d.OutboxStats(ctx); err != nil || st.Pending != 0 {
		t.Errorf("outbox: %+v %v; want every event acknowledged", st, err)
	}
}
