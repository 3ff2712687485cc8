package embedded

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// oldOrderPaidLast gives user u1 store.UserStateOrders+1 orders and pays
// the oldest, U-000, last.
func oldOrderPaidLast(t *testing.T, d *DB, clock *storetest.Clock) {
	t.Helper()
	ctx := context.Background()
	base := clock.Now()
	for i := range store.UserStateOrders + 1 {
		o := storetest.NewOrder(fmt.Sprintf("U-%03d", i), "shop", "u1", base.Add(time.Duration(i)*time.Second))
		if err := d.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	o, err := d.GetOrder(ctx, "U-000")
	if err != nil {
		t.Fatal(err)
	}
	o.Status = store.StatusPaid
	if err := d.UpdateOrder(ctx, o, store.StatusAwaitingPayment); err != nil {
		t.Fatal(err)
	}
}

// wantOldOrder fails unless u1's state holds U-000, paid.
func wantOldOrder(t *testing.T, d *DB) {
	t.Helper()
	st, err := d.LoadUserState(context.Background(), "shop", "u1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range st.Orders {
		got = append(got, o.OrderNo+" "+string(o.Status))
	}
	if n := len(st.Orders); n != store.UserStateOrders+1 || got[n-1] != "U-000 paid" {
		t.Fatalf("got %v; want %d orders, the last U-000 (created first, paid last)", got, store.UserStateOrders+1)
	}
}

// TestUserUpdatedIndexBuiltAtOpen: a file written by a version without the
// index of orders by their last write gets it at Open, so an old order paid
// before the upgrade is in the user's state too.
func TestUserUpdatedIndexBuiltAtOpen(t *testing.T) {
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "old.db")
	d := openAt(t, path, clock)
	oldOrderPaidLast(t, d, clock)
	dropBuckets(t, d, bUserUpdated)
	wantOldOrder(t, reopen(t, d, path, clock))
}

// TestUserUpdatedStaleEntries: an index entry that is not its order's last
// write (left by a version without the index that rewrote the order) takes
// no place among the newest updated.
func TestUserUpdatedStaleEntries(t *testing.T) {
	clock := storetest.NewClock()
	d := openTest(t, clock)
	oldOrderPaidLast(t, d, clock)
	later := clock.Now().Add(time.Hour)
	if err := d.db.Update(func(tx *bolt.Tx) error {
		for i := 1; i <= store.UserStateOrders; i++ {
			no := fmt.Sprintf("U-%03d", i)
			if err := tx.Bucket(bUserUpdated).Put(join(userPrefix("shop", "u1"), ts(later), []byte(no)), nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantOldOrder(t, d)
}

// TestUserUpdatedIndexAfterAnEarlierVersionWroteSince: a version before
// the index of orders by their last write (which wrote the file's orders
// without it) that runs on the file after a rollback pays an old order;
// back on this version, the index still held the order's earlier write,
// which LoadUserState skips as stale, so the paid order was in no user
// state (the turn never told of the payment). Opening a file whose last
// write was not this version's builds the index again.
func TestUserUpdatedIndexAfterAnEarlierVersionWroteSince(t *testing.T) {
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "paygate.db")
	d := openAt(t, path, clock)
	base := clock.Now()
	for i := range store.UserStateOrders + 1 {
		o := storetest.NewOrder(fmt.Sprintf("U-%03d", i), "shop", "u1", base.Add(time.Duration(i)*time.Second))
		if err := d.CreateOrder(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)

	// The earlier version pays U-000: the order and its status index,
	// nothing in user_updated, which it did not know.
	asAnEarlierVersion(t, path, func(tx *bolt.Tx) error { return payAsAnEarlierVersion(tx, "U-000", clock.Now()) })
	wantOldOrder(t, openAt(t, path, clock))
}

// payAsAnEarlierVersion pays order no in tx as a version before the index
// of orders by their last write did: the order and its status index,
// nothing in user_updated. at, unless zero, is the order's new UpdatedAt.
func payAsAnEarlierVersion(tx *bolt.Tx, no string, at time.Time) error {
	cur, err := getOrder(tx, []byte(no))
	if err != nil {
		return err
	}
	paid := *cur
	paid.Status, paid.Version = store.StatusPaid, cur.Version+1
	if !at.IsZero() {
		paid.UpdatedAt = at
	}
	if err := putOrder(tx, &paid); err != nil {
		return err
	}
	_, oldKey, _ := orderIndexKeys(cur)
	_, newKey, _ := orderIndexKeys(&paid)
	if err := tx.Bucket(bStatusOrders).Delete(oldKey); err != nil {
		return err
	}
	return tx.Bucket(bStatusOrders).Put(newKey, nil)
}
