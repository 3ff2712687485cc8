package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/store/storetest"
)

// TestOpenOfACorruptFileReturnsAnErrorAndReleasesIt: a file whose data pages
// were zeroed (a torn copy, a bad disk block) makes bbolt panic while
// opening it. Open must instead return ErrCorrupt with an error that names
// the file and what to do, and must not keep the file locked: once the file
// is restored in place, this same process opens it.
func TestOpenOfACorruptFileReturnsAnErrorAndReleasesIt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "paygate.db")
	d, err := Open(path, Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := d.CreateOrder(ctx, storetest.NewOrder(fmt.Sprintf("C-%d", i), "bot", "u", time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	clear(bad[4*4096:]) // keep the meta pages, zero the rest (the freelist included)
	// Written in place, not renamed: the restore below must reuse the inode
	// whose lock a leaking Open would still hold.
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}

	d2, err := func() (d *DB, err error) {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Open of a corrupt file panicked: %v", p)
			}
		}()
		return Open(path, Options{SweepInterval: -1, LockTimeout: 100 * time.Millisecond})
	}()
	if err == nil {
		_ = d2.Close()
		t.Fatal("Open of a corrupt file succeeded")
	}
	t.Logf("Open: %v", err)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("error %v: want ErrCorrupt", err)
	}
	for _, want := range []string{path, "backup", "bbolt check"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	d3, err := Open(path, Options{SweepInterval: -1, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open of the restored file: %v (the failed Open kept the lock)", err)
	}
	defer d3.Close()
	if _, err := d3.GetOrder(ctx, "C-49"); err != nil {
		t.Errorf("GetOrder from the restored file: %v", err)
	}
}
