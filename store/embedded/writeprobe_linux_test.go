package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/fdfail"
	"github.com/paygate/paygate/store"
)

// failWrites makes the store file's writes fail (fdfail) until restore
// or the end of the test.
func failWrites(t *testing.T, path string) (restore func()) {
	t.Helper()
	r, err := fdfail.FailWrites(path)
	if err != nil {
		t.Fatal(err)
	}
	restore = func() {
		if err := r(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(restore)
	return restore
}

// openClocked opens a store in a new file on a clock the test moves
// (advance), no sweeper, closed at the test's end.
func openClocked(t *testing.T) (d *DB, path string, advance func(time.Duration)) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "p.db")
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d, err := Open(path, Options{SweepInterval: -1, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path, func(by time.Duration) { mu.Lock(); now = now.Add(by); mu.Unlock() }
}

// TestPingSaysWhenWritesFail: /readyz pings the store, and the embedded
// store's ping was a read transaction, which a full disk or a filesystem
// gone read-only leaves working: the replica read ready while every order,
// claim and notification write failed, and a load balancer kept sending it
// payments it could not record. Ping now reports the outcome of the last
// write (any store write, or its own probe, an empty write transaction,
// made only when no write was made for writeProbeEvery): at once after a
// failed write, within writeProbeEvery on an idle store, never more than
// one probe per writeProbeEvery (a fsync per readiness check would cost
// every write a wait), and ready again once writes succeed.
func TestPingSaysWhenWritesFail(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// write: a store write made after the file stops taking writes.
		write bool
	}{
		{name: "a failed write", write: true},
		{name: "an idle store", write: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, path, advance := openClocked(t)
			if err := d.Ping(ctx); err != nil {
				t.Fatalf("ping of a healthy store: %v", err)
			}
			restore := failWrites(t, path)
			if tc.write {
				if _, err := d.IncrCounter(ctx, "pgtest:k", time.Hour); err == nil {
					t.Fatal("a write to a read-only descriptor succeeded; the test does not fail writes")
				}
			} else {
				if err := d.Ping(ctx); err != nil {
					t.Fatalf("ping within %s of the last write: %v; want no probe yet", writeProbeEvery, err)
				}
				advance(writeProbeEvery)
			}
			err := d.Ping(ctx)
			if !errors.Is(err, store.ErrWritesFail) || !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("ping of a store whose writes fail: %v; want store.ErrWritesFail", err)
			}
			restore()
			if err := d.Ping(ctx); !errors.Is(err, store.ErrWritesFail) {
				t.Fatalf("ping within %s of the failed write: %v; want the failure, no new probe", writeProbeEvery, err)
			}
			advance(writeProbeEvery)
			if err := d.Ping(ctx); err != nil {
				t.Fatalf("ping once the file takes writes again: %v", err)
			}
			if _, err := d.IncrCounter(ctx, "pgtest:k", time.Hour); err != nil {
				t.Fatalf("a write after the recovery: %v", err)
			}
		})
	}
}

// TestPingNotHeldByALongWrite: Ping's write probe waits for the writer
// lock, which the wipe of an erasure's free pages holds while it zeroes
// and syncs them, seconds on a large file. /readyz gives its ping 2 s and
// a scrape 1 s: the probe runs on and Ping answers, when its context ends,
// with the last outcome it knows instead of holding the check past its
// deadline.
func TestPingNotHeldByALongWrite(t *testing.T) {
	d, _, advance := openClocked(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	d.wipeHook = func() { close(entered); <-release }
	wiped := make(chan error, 1)
	go func() { _, err := d.WipeFreePages(context.Background()); wiped <- err }()
	<-entered
	advance(writeProbeEvery) // a probe is due
	// Releases the wipe should Ping wait for it: the test then fails on
	// the time Ping took, rather than hanging.
	safety := time.AfterFunc(5*time.Second, free)
	defer safety.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := d.Ping(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Ping took %s behind a long write; want it back when its context ends", took)
	}
	if err != nil {
		t.Errorf("Ping behind a long write: %v; want the last outcome, a success", err)
	}
	free()
	if err := <-wiped; err != nil {
		t.Fatal(err)
	}
}

// TestPingSaysWhenAWriteHangs: a disk that stops answering (a stalled
// network volume, a dying disk) leaves a write hung in its fsync with the
// writer lock held, while reads go on from the mapping: every order,
// claim and notification write waits behind it. Ping's probe waits there
// too, and Ping answered, when its context ended, with the last outcome
// it knew, a success: /readyz and paygate_store_status read ready for as
// long as the disk hung. Ping still answers when its context ends, and
// says ready while a write has held the lock a short while (the wipe of an
// erasure's free pages), but once its probe has waited writeStall it
// reports store.ErrWritesFail, until the probe gets through.
func TestPingSaysWhenAWriteHangs(t *testing.T) {
	d, _, advance := openClocked(t)
	ping, free, wiped := hangAWrite(t, d) // the hung write
	advance(writeProbeEvery)              // a probe is due: it waits behind the write
	if err := ping(); err != nil {
		t.Fatalf("Ping as its probe starts waiting: %v; want ready (a long write may hold the lock a while)", err)
	}
	advance(writeStall - time.Second)
	if err := ping(); err != nil {
		t.Fatalf("Ping after its probe waited %s: %v; want ready", writeStall-time.Second, err)
	}
	advance(time.Second)
	if err := ping(); !errors.Is(err, store.ErrWritesFail) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping after its probe waited %s behind a write: %v; want store.ErrWritesFail", writeStall, err)
	}
	free()
	if err := <-wiped; err != nil {
		t.Fatal(err)
	}
	d.probing.Lock() // the probe got through
	d.probing.Unlock()
	if err := ping(); err != nil {
		t.Fatalf("Ping once the write and the probe went through: %v; want ready", err)
	}
}

// TestPingNotHeldByAWaitingWipe: the wipe of an erasure's free pages holds
// reads off while it waits for the writer lock (WipeFreePages). Behind a
// write that hangs (a disk that stopped answering) it waits for good, and
// Ping's read waited with it, past its context: /readyz hung, and so did
// every /metrics scrape (paygate_store_status pings), all metrics lost
// with it, a goroutine more held at each. Ping now answers when its
// context ends, and reports the hung write once its probe has waited
// writeStall.
func TestPingNotHeldByAWaitingWipe(t *testing.T) {
	d, _, advance := openClocked(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once, first sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	d.wipeHook = func() { first.Do(func() { close(entered); <-release }) } // the hung write
	wiped := make(chan error, 2)
	go func() { _, err := d.WipeFreePages(context.Background()); wiped <- err }()
	<-entered
	go func() { _, err := d.WipeFreePages(context.Background()); wiped <- err }()
	for d.wipe.TryRLock() { // until the second wipe holds reads off
		d.wipe.RUnlock()
		runtime.Gosched()
	}
	safety := time.AfterFunc(5*time.Second, free) // fails on the time taken, not by hanging
	defer safety.Stop()
	ping := func() (error, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := d.Ping(ctx)
		return err, time.Since(start)
	}
	advance(writeProbeEvery)
	if err, took := ping(); took > 2*time.Second || err != nil {
		t.Fatalf("Ping behind a wipe waiting for a write: %v after %s; want ready when its context ends", err, took)
	}
	advance(writeStall)
	if err, took := ping(); took > 2*time.Second || !errors.Is(err, store.ErrWritesFail) {
		t.Fatalf("Ping after its probe waited %s: %v after %s; want store.ErrWritesFail when its context ends", writeStall, err, took)
	}
	free()
	for range 2 {
		if err := <-wiped; err != nil {
			t.Fatal(err)
		}
	}
}

// TestPingSaysWhenAWipeFails: the wipe of an erasure's free pages is a
// write like any other, and its failed commit (a full disk, a filesystem
// gone read-only) is the last write's outcome Ping reports. It committed
// outside the path that records it: /readyz read ready after the wipe's
// commit failed, until the next probe writeProbeEvery later, and a wipe
// that succeeded after a failed write did not say the writes were back.
func TestPingSaysWhenAWipeFails(t *testing.T) {
	ctx := context.Background()
	d, path, advance := openClocked(t)
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("ping of a healthy store: %v", err)
	}
	restore := failWrites(t, path)
	if _, err := d.WipeFreePages(ctx); err == nil {
		t.Fatal("a wipe on a read-only descriptor succeeded; the test does not fail writes")
	}
	wantWipeFailureReported(t, d, "commit", restore, advance)
}

// wantWipeFailureReported: right after a wipe whose write failed at what,
// Ping reports the failed write; once restore has the file take writes
// again, a wipe within writeProbeEvery (no probe: only the wipe's own
// outcome) says the writes are back.
func wantWipeFailureReported(t *testing.T, d *DB, what string, restore func(), advance func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	err := d.Ping(ctx)
	if !errors.Is(err, store.ErrWritesFail) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ping right after the wipe's %s failed: %v; want store.ErrWritesFail", what, err)
	}
	restore()
	advance(time.Second)
	if _, err := d.WipeFreePages(ctx); err != nil {
		t.Fatalf("a wipe once the file takes writes again: %v", err)
	}
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("ping after a wipe succeeded: %v; want ready", err)
	}
}

// TestPingSaysWhenAWipesZeroingFails: the wipe writes its zeros through a
// file handle of its own before it commits, and a write that fails there
// (a disk gone read-only, or failing, under the erasure) is as much a
// failed write as its commit's (TestPingSaysWhenAWipeFails): it returned
// its error without recording it, and /readyz read ready until the next
// probe writeProbeEvery later. Ping now reports it at once, and the next
// write that succeeds says the writes are back.
func TestPingSaysWhenAWipesZeroingFails(t *testing.T) {
	ctx := context.Background()
	d, path, advance := openClocked(t)
	// Values written over: their old pages are free, for the wipe to zero.
	for gen := range 3 {
		for i := range 8 {
			if err := d.PutExchange(ctx, fmt.Sprint("k", i), bytes.Repeat([]byte{byte('a' + gen)}, 8192), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("ping of a healthy store: %v", err)
	}
	var restore func()
	d.wipeHook = func() { restore = failWrites(t, path) } // the wipe's own handle is open by now
	n, err := d.WipeFreePages(ctx)
	d.wipeHook = nil
	if err == nil {
		t.Fatalf("a wipe whose writes fail cleared %d pages; the test does not fail its zeroing", n)
	}
	if !strings.Contains(err.Error(), "wipe free pages") {
		t.Fatalf("the wipe failed with %v; want it to fail zeroing its pages", err)
	}
	wantWipeFailureReported(t, d, "zeroing", restore, advance)
}
