package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/internal/fulldisk"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestFailedWritesAreUnavailable: a write whose commit fails because the
// disk is full (ENOSPC) or the filesystem went read-only is the store's
// writes failing (store.ErrWritesFail, an store.ErrUnavailable), as a
// Redis refusing writes (OOM, READONLY) is, and as the store contract
// says: payment tools then tell the model payments are temporarily
// unavailable, the user API answers 503 payments_unavailable. It was the
// bare OS error: "the payment could not be started", and 500 "the
// payment system failed". Writes work again, in the same process, once
// the disk has room.
func TestFailedWritesAreUnavailable(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// open opens the store and returns a func making its writes fail
		// (returning the func that makes them work again).
		open func(t *testing.T) (*DB, func() (restore func()))
	}{
		{name: "a full disk", open: func(t *testing.T) (*DB, func() func()) {
			disk := fulldisk.Mount(t, "1m")
			d, err := Open(filepath.Join(disk.Dir, "p.db"), Options{SweepInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d, func() func() { disk.Fill(); return disk.Free }
		}},
		{name: "a read-only filesystem", open: func(t *testing.T) (*DB, func() func()) {
			d, path, _ := openClocked(t)
			return d, func() func() { return failWrites(t, path) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, fail := tc.open(t)
			n := 0
			create := func() error {
				n++
				return d.CreateOrder(ctx, storetest.NewOrder(fmt.Sprintf("PG-full-%d", n), "bot", "u", time.Now()), store.Event{ID: fmt.Sprintf("e-%d", n), Kind: "webhook"})
			}
			if err := create(); err != nil {
				t.Fatal(err)
			}
			restore := fail()
			// A full bbolt file reuses the pages it freed: orders go on
			// being recorded until one needs a page the disk has not got.
			var err error
			for range 10000 {
				if err = create(); err != nil {
					break
				}
			}
			if err == nil {
				t.Fatalf("%d orders recorded with the disk full; want a write to fail", n)
			}
			if !errors.Is(err, store.ErrWritesFail) || !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("order %d, its write failing: %v; want store.ErrWritesFail (store.ErrUnavailable)", n, err)
			}
			if _, err := d.GetOrder(ctx, fmt.Sprintf("PG-full-%d", n)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("order %d after its failed write: %v; want not found (nothing half-written)", n, err)
			}
			restore()
			if err := create(); err != nil {
				t.Fatalf("an order once the disk has room: %v", err)
			}
			if err := d.Ping(ctx); err != nil {
				t.Errorf("ping once writes succeed: %v", err)
			}
		})
	}
}

// TestPingSaysWhenDiskFull: a full disk is the store's writes failing
// for Ping, whether or not a write failed on it yet. bbolt records in
// the pages it freed: an idle replica's probe (an empty write
// transaction) fits them, and so does many a write after one that
// failed, so /readyz answered ready on a disk that had no block left,
// or ready again 10 s after each failed write, and the alert on
// paygate_store_status{status="ready"} == 0 for a minute rarely fired.
// Ping now also asks the filesystem (statfs) for the room it has.
func TestPingSaysWhenDiskFull(t *testing.T) {
	ctx := context.Background()
	disk := fulldisk.Mount(t, "1m")
	now := time.Unix(1_700_000_000, 0)
	d, err := Open(filepath.Join(disk.Dir, "p.db"), Options{SweepInterval: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	n := 0
	create := func() error {
		n++
		return d.CreateOrder(ctx, storetest.NewOrder(fmt.Sprintf("PG-room-%d", n), "bot", "u", now), store.Event{ID: fmt.Sprintf("e-%d", n), Kind: "webhook"})
	}
	for range 3 {
		if err := create(); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("ping with room: %v", err)
	}
	disk.Fill()
	now = now.Add(writeProbeEvery) // idle: Ping probes
	if err := d.Ping(ctx); !errors.Is(err, store.ErrWritesFail) {
		t.Errorf("ping of an idle store on a full disk: %v; want store.ErrWritesFail", err)
	}
	var werr error
	for werr == nil && n < 10000 {
		werr = create()
	}
	if werr == nil {
		t.Fatalf("%d orders recorded on a full disk; want a write to fail", n)
	}
	// A write that fits the freed pages, after one that did not.
	if err := d.commit(func(*bolt.Tx) error { return nil }); err != nil {
		t.Fatalf("an empty write after order %d's failed: %v; want it to fit the freed pages", n, err)
	}
	if err := d.Ping(ctx); !errors.Is(err, store.ErrWritesFail) {
		t.Errorf("ping on a full disk, its last write one that fit the freed pages after order %d's failed: %v; want store.ErrWritesFail", n, err)
	}
	disk.Free()
	if err := d.Ping(ctx); err != nil {
		t.Errorf("ping once the disk has room: %v", err)
	}
}

// TestPingOnUnsizedTmpfs: a tmpfs mounted with size=0 (no limit, as
// some container runtimes mount a scratch volume) tells statfs 0 blocks
// and 0 free, which says nothing of its room: Ping must not read it as
// a full disk, or /readyz answers 503 for good while every write succeeds.
func TestPingOnUnsizedTmpfs(t *testing.T) {
	ctx := context.Background()
	disk := fulldisk.Mount(t, "0")
	now := time.Unix(1_700_000_000, 0)
	d, err := Open(filepath.Join(disk.Dir, "p.db"), Options{SweepInterval: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.CreateOrder(ctx, storetest.NewOrder("PG-unsized-1", "bot", "u", now), store.Event{ID: "e-1", Kind: "webhook"}); err != nil {
		t.Fatalf("write on an unsized tmpfs: %v", err)
	}
	if err := d.Ping(ctx); err != nil {
		t.Errorf("ping of a store whose writes succeed, on an unsized tmpfs: %v; want nil", err)
	}
}

// TestPingAsksTheStoreFilesDisk: a store file bind-mounted on its own
// (docker run -v /data/paygate.db:/app/paygate.db) lives on another
// filesystem than its directory: Ping must ask the file's filesystem for
// its room, not the directory's, which here is full while the file's has
// room and every write succeeds.
func TestPingAsksTheStoreFilesDisk(t *testing.T) {
	ctx := context.Background()
	dirDisk := fulldisk.Mount(t, "1m")
	fileDisk := fulldisk.Mount(t, "4m")
	src, dst := filepath.Join(fileDisk.Dir, "p.db"), filepath.Join(dirDisk.Dir, "p.db")
	for _, p := range []string{src, dst} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mount", "--bind", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("bind-mounting the store file: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dst).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dst, err, out)
		}
	})
	now := time.Unix(1_700_000_000, 0)
	d, err := Open(dst, Options{SweepInterval: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	dirDisk.Fill()
	for i := range 20 {
		if err := d.CreateOrder(ctx, storetest.NewOrder(fmt.Sprintf("PG-bind-%d", i), "bot", "u", now), store.Event{ID: fmt.Sprintf("e-%d", i), Kind: "webhook"}); err != nil {
			t.Fatalf("write %d to the bind-mounted file, its disk with room: %v", i, err)
		}
	}
	if err := d.Ping(ctx); err != nil {
		t.Errorf("ping of a store whose writes succeed, its file on a disk with room, its directory on a full one: %v; want nil", err)
	}
}
