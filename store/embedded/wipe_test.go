package embedded

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store/storetest"
)

// inFile reports whether the file at path holds v as an exchange stores it
// (a []byte in JSON: base64).
func inFile(t *testing.T, path string, v []byte) bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(v)))
}

// TestWipeFreePagesKeepsLiveData: clearing the free pages while readers
// and writers run never clears a page a read transaction still reads or a
// live value lives in (bbolt's pending pages), and removes the deleted
// values from the file.
func TestWipeFreePagesKeepsLiveData(t *testing.T) {
	d := openTest(t, storetest.NewClock())
	ctx := context.Background()
	val := func(i, gen int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("value-%04d-gen-%d;", i, gen)), 200)
	}
	const keys = 40
	for i := range keys {
		if err := d.PutExchange(ctx, fmt.Sprint("k", i), val(i, 0), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 100)
	for r := range 2 { // readers: every value read is one that was written
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A long read: every value, twice, in one transaction,
				// across the writer's commits (its pages are pending).
				err := d.view(ctx, func(tx *bolt.Tx) error {
					for pass := range 2 {
						n := 0
						for k, v := tx.Bucket(bExchanges).Cursor().First(); k != nil; k, v = tx.Bucket(bExchanges).Cursor().Seek(append(k, 0)) {
							var rec struct {
								Data []byte `json:"data"`
							}
							if err := json.Unmarshal(v, &rec); err != nil || !bytes.HasPrefix(rec.Data, []byte("value-")) {
								return fmt.Errorf("reader %d pass %d: %s read as %.40q… (%d bytes)", r, pass, k, v, len(v))
							}
							n++
						}
						if n != keys {
							return fmt.Errorf("reader %d pass %d: %d keys; want %d", r, pass, n, keys)
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				_ = i
			}
		}()
	}
	wg.Add(1)
	go func() { // a writer rewriting the values, freeing pages
		defer wg.Done()
		for gen := 1; ; gen++ {
			select {
			case <-stop:
				return
			default:
			}
			k := gen % keys
			if err := d.PutExchange(ctx, fmt.Sprint("k", k), val(k, gen%10), time.Hour); err != nil {
				errs <- err
				return
			}
		}
	}()
	for range 20 {
		if _, err := d.WipeFreePages(ctx); err != nil {
			t.Fatalf("wipe: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := d.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("the file after wipes: %v", err)
	}

	// A deleted value is gone from the file once the free pages are cleared.
	secret := bytes.Repeat([]byte("erase-me;"), 100)
	if err := d.PutExchange(ctx, "secret", secret, time.Hour); err != nil {
		t.Fatal(err)
	}
	for i := range keys { // the secret's leaf page rewritten: copies freed
		if err := d.PutExchange(ctx, fmt.Sprint("k", i), val(i, 1), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bExchanges).Delete([]byte("secret")) }); err != nil {
		t.Fatal(err)
	}
	if !inFile(t, d.Path(), secret) {
		t.Fatalf("the deleted value is not in the file before the wipe: the check cannot see a value")
	}
	n, err := d.WipeFreePages(ctx)
	if err != nil || n == 0 {
		t.Fatalf("wipe: %d pages, %v; want some", n, err)
	}
	if inFile(t, d.Path(), secret) {
		t.Errorf("a deleted value is still in the file after its free pages were cleared")
	}
	for i := range keys {
		got, err := d.GetExchange(ctx, fmt.Sprint("k", i))
		if err != nil || !bytes.Equal(got, val(i, 1)) {
			t.Fatalf("key %d after the wipe: %.40q %v", i, got, err)
		}
	}
}

// TestWipeFreePagesLetsReadsRun: reads are held off only while the wipe's
// write transaction begins, not while it zeroes and syncs the free pages,
// which on a large file takes long enough to stall every chat turn's read;
// a read begun during the zeroing reads the live values, and the deleted
// one is still gone afterwards. The deleted value spans several pages and
// any piece of it left counts: one page of it could be gone without the
// wipe, reused for the freelist its commit writes.
func TestWipeFreePagesLetsReadsRun(t *testing.T) {
	d := openTest(t, storetest.NewClock())
	ctx := context.Background()
	live := bytes.Repeat([]byte("keep-me;"), 300)
	if err := d.PutExchange(ctx, "live", live, time.Hour); err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("erase-me;"), 3000)
	if err := d.PutExchange(ctx, "secret", secret, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := d.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bExchanges).Delete([]byte("secret")) }); err != nil {
		t.Fatal(err)
	}
	// Four repeats of 9 bytes: 48 characters of its base64, which
	// repeats every 12, so a piece of a page or more of it holds them.
	piece := secret[:36]
	if !inFile(t, d.Path(), secret) {
		t.Fatalf("the deleted value is not in the file before the wipe: the check cannot see a value")
	}
	type read struct {
		v   []byte
		err error
	}
	done := make(chan read, 1)
	hooked := false
	d.wipeHook = func() {
		hooked = true
		go func() {
			v, err := d.GetExchange(ctx, "live")
			done <- read{v, err}
		}()
		// A watchdog, not a timing: the read needs no time from the wipe,
		// and without it would wait for the wipe to end, i.e. forever here.
		select {
		case r := <-done:
			if r.err != nil || !bytes.Equal(r.v, live) {
				t.Errorf("read during the wipe: %.20q %v; want the live value", r.v, r.err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("a read begun during the wipe waited for it")
			d.wipeHook = nil
			go func() { <-done }()
		}
	}
	n, err := d.WipeFreePages(ctx)
	if err != nil || n == 0 || !hooked {
		t.Fatalf("wipe: %d pages, %v (hook called: %v); want some", n, err, hooked)
	}
	if inFile(t, d.Path(), piece) {
		t.Errorf("a piece of a deleted value is still in the file after its free pages were cleared")
	}
	if !inFile(t, d.Path(), live) {
		t.Errorf("the live value is not in the file after the wipe")
	}
}

// TestWipeFreePagesLastWriteKeepsIndexes: the wipe is a write transaction
// of this version's, as every other: when it is the last write before a
// stop (an erasure's, the usual last act of an operator before a restart),
// the next open finds the indexes kept and reads no record to index them
// again. It wrote without the mark, and the open indexed the whole file
// again (an entry this version's own write had removed came back).
func TestWipeFreePagesLastWriteKeepsIndexes(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "paygate.db")
	d := openAt(t, path, clock)
	seenUnindexed(t, d, clock, "n1")
	if _, err := d.WipeFreePages(ctx); err != nil {
		t.Fatal(err)
	}
	d = reopen(t, d, path, clock)
	if n := expiryEntries(t, d); n != 0 {
		t.Errorf("the open after a wipe indexed the file again (%d entries in %s)", n, bExpiry)
	}
}

// seenUnindexed records notification id seen for a minute, then removes
// its expiry entry in a write of this version's: an open that indexes the
// file again puts it back (expiryEntries).
func seenUnindexed(t *testing.T, d *DB, clock *storetest.Clock, id string) {
	t.Helper()
	if _, err := d.SeenNotification(context.Background(), id, time.Minute); err != nil {
		t.Fatal(err)
	}
	err := d.commit(func(tx *bolt.Tx) error {
		return tx.Bucket(bExpiry).Delete(expiryKey(clock.Now().Add(time.Minute).UnixNano(), expiryIDs[string(bNotes)], []byte(id)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// expiryEntries is how many entries d's expiry index holds.
func expiryEntries(t *testing.T, d *DB) int {
	t.Helper()
	var n int
	err := d.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bExpiry).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
