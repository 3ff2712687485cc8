package embedded

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store/storetest"
)

// TestOwnedFileIsNotIndexedAgain: paygate serve opens its file with its
// owner (the payments backend and merchant) on every start. A start that
// writes nothing else before it stops (stopped at once, idle, or refused
// after the store opened: a listen address in use, a crash loop) must
// leave the file as this version's last write, so the next start does not
// index every order, text and expiring record again (initFile's
// indexesKept). Recording the owner, or checking it, in a write of its own
// that did not mark the indexes kept made every such start's successor
// rebuild them all.
func TestOwnedFileIsNotIndexedAgain(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "paygate.db")
	const owner = "wechatpay:1900000109"
	open := func() *DB {
		t.Helper()
		d, err := Open(path, Options{Now: clock.Now, SweepInterval: -1, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := open()
	if _, err := d.SeenNotification(ctx, "n-new", time.Minute); err != nil {
		t.Fatal(err)
	}
	// An entry this version's own write removed: indexed again, it is back.
	err := d.commit(func(tx *bolt.Tx) error {
		return tx.Bucket(bExpiry).Delete(expiryKey(clock.Now().Add(time.Minute).UnixNano(), expiryIDs[string(bNotes)], []byte("n-new")))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for start := 1; start <= 2; start++ { // starts that write nothing of their own
		d = open()
		err = d.db.View(func(tx *bolt.Tx) error {
			if n := tx.Bucket(bExpiry).Stats().KeyN; n != 0 {
				t.Errorf("start %d: the open of a file this version wrote last indexed it again (%d entries in %s)", start, n, bExpiry)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
