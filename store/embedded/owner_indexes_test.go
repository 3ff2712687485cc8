package embedded

import (
	"path/filepath"
	"testing"

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
	// An entry this version's own write removed: indexed again, it is back.
	seenUnindexed(t, d, clock, "n-new")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for start := 1; start <= 2; start++ { // starts that write nothing of their own
		d = open()
		if n := expiryEntries(t, d); n != 0 {
			t.Errorf("start %d: the open of a file this version wrote last indexed it again (%d entries in %s)", start, n, bExpiry)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
