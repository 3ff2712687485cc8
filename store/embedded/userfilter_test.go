package embedded

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store/storetest"
)

// readTxs is how many read transactions the file has started.
func readTxs(d *DB) int { return d.db.Stats().TxN }

// openAt opens the store file at path for the test, closed at its end.
func openAt(t *testing.T, path string, clock *storetest.Clock) *DB {
	t.Helper()
	d, err := Open(path, Options{Now: clock.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// reopen closes d and opens its file again, as a restart does.
func reopen(t *testing.T, d *DB, path string, clock *storetest.Clock) *DB {
	t.Helper()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return openAt(t, path, clock)
}

// dropBuckets deletes buckets from d's file, as a file an earlier version
// wrote lacks them.
func dropBuckets(t *testing.T, d *DB, buckets ...[]byte) {
	t.Helper()
	err := d.db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// asAnEarlierVersion writes to the store file at path, closed, as a
// version before this one's write mark did, in one transaction.
func asAnEarlierVersion(t *testing.T, path string, write func(tx *bolt.Tx) error) {
	t.Helper()
	raw, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Update(write); err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
}

// sweepOnce runs one sweep of d and counts the read transactions it
// opened and the time it took.
func sweepOnce(t *testing.T, d *DB) (removed, reads int, took time.Duration) {
	t.Helper()
	before, start := readTxs(d), time.Now()
	n, err := d.Sweep(context.Background())
	took, reads = time.Since(start), readTxs(d)-before
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	return n, reads, took
}

// TestLoadUserStateWithoutOrders: a user who never ordered is answered
// without a read transaction; once the user orders, the order is read.
func TestLoadUserStateWithoutOrders(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	d := openTest(t, clock)
	before := readTxs(d)
	st, err := d.LoadUserState(ctx, "shop", "never-ordered")
	if err != nil || len(st.Orders) != 0 || st.Client != "shop" || st.User != "never-ordered" {
		t.Fatalf("LoadUserState = %+v, %v", st, err)
	}
	if n := readTxs(d) - before; n != 0 {
		t.Errorf("a user without orders cost %d read transactions; want 0", n)
	}
	if err := d.CreateOrder(ctx, storetest.NewOrder("F-1", "shop", "never-ordered", clock.Now())); err != nil {
		t.Fatal(err)
	}
	before = readTxs(d)
	st, err = d.LoadUserState(ctx, "shop", "never-ordered")
	if err != nil || len(st.Orders) != 1 || st.Orders[0].OrderNo != "F-1" {
		t.Fatalf("after the order: LoadUserState = %+v, %v", st, err)
	}
	if n := readTxs(d) - before; n != 1 {
		t.Errorf("a user with an order cost %d read transactions; want 1", n)
	}
	// The same user of another client never ordered.
	if st, err := d.LoadUserState(ctx, "other-shop", "never-ordered"); err != nil || len(st.Orders) != 0 {
		t.Fatalf("another client's user: %+v, %v", st, err)
	}
}

// TestUserFilterAcrossReopen: the filter is rebuilt from the file, so every
// user who ordered before a restart is still read.
func TestUserFilterAcrossReopen(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "filter.db")
	d := openAt(t, path, clock)
	const users = 200
	for i := range users {
		// Names of every length class the key encoding has, and bytes a
		// string key would mishandle.
		user := fmt.Sprintf("u%d\x00%s", i, string(make([]byte, i)))
		if err := d.CreateOrder(ctx, storetest.NewOrder(fmt.Sprintf("RO-%d", i), "shop", user, clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	d = reopen(t, d, path, clock)
	if d.users == nil {
		t.Fatal("the filter was not rebuilt")
	}
	for i := range users {
		user := fmt.Sprintf("u%d\x00%s", i, string(make([]byte, i)))
		st, err := d.LoadUserState(ctx, "shop", user)
		if err != nil || len(st.Orders) != 1 || st.Orders[0].OrderNo != fmt.Sprintf("RO-%d", i) {
			t.Fatalf("user %d after reopen: %+v, %v", i, st, err)
		}
	}
}

// TestUserFilterConcurrentOrders: whoever created an order reads it back at
// once, while other goroutines create and read other users' orders.
func TestUserFilterConcurrentOrders(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	d := openTest(t, clock)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				user := fmt.Sprintf("g%d-u%d", g, i)
				no := "C-" + user
				if st, err := d.LoadUserState(ctx, "shop", user); err != nil || len(st.Orders) != 0 {
					errs <- fmt.Errorf("%s before ordering: %+v, %v", user, st, err)
					return
				}
				if err := d.CreateOrder(ctx, storetest.NewOrder(no, "shop", user, clock.Now())); err != nil {
					errs <- err
					return
				}
				st, err := d.LoadUserState(ctx, "shop", user)
				if err != nil || len(st.Orders) != 1 || st.Orders[0].OrderNo != no {
					errs <- fmt.Errorf("%s right after ordering: %+v, %v", user, st, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestUserFilterUnreadableIndex: a user index key that does not parse turns
// the filter off rather than risk hiding a user's orders.
func TestUserFilterUnreadableIndex(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "bad.db")
	d := openAt(t, path, clock)
	if err := d.CreateOrder(ctx, storetest.NewOrder("B-1", "shop", "u1", clock.Now())); err != nil {
		t.Fatal(err)
	}
	if err := d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bUserOrders).Put([]byte{0xff}, nil) // a length that runs past the key
	}); err != nil {
		t.Fatal(err)
	}
	d = reopen(t, d, path, clock)
	if d.users != nil {
		t.Fatal("the filter is on over an index it could not read")
	}
	if st, err := d.LoadUserState(ctx, "shop", "u1"); err != nil || len(st.Orders) != 1 {
		t.Fatalf("LoadUserState without the filter: %+v, %v", st, err)
	}
}

// TestUserPrefixLen reads the user part of index keys as userPrefix and
// orderIndexKeys write them, and refuses keys that are not such.
func TestUserPrefixLen(t *testing.T) {
	o := storetest.NewOrder("N-1", "shop", "user-1", storetest.NewClock().Now())
	uk, _, _ := orderIndexKeys(o)
	for _, tc := range []struct {
		name string
		key  []byte
		want int
	}{
		{"an index key", uk, len(userPrefix("shop", "user-1"))},
		{"empty", nil, -1},
		{"a length past the end", []byte{0x05, 'a'}, -1},
		{"one string only", []byte{0x01, 'a'}, -1},
		{"a cut varint", []byte{0x01, 'a', 0x80}, -1},
		{"two empty strings", []byte{0x00, 0x00, 'x'}, 2},
	} {
		if got := userPrefixLen(tc.key); got != tc.want {
			t.Errorf("%s: userPrefixLen(%x) = %d; want %d", tc.name, tc.key, got, tc.want)
		}
	}
}
