package embedded

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestIndexesOfAFileAnEarlierVersionWroteSince: a rollback to an earlier
// version (which announce.go's counters and the outbox's due index are
// kept for) writes records that version knows, without the entries of the
// indexes it does not (audit_text_until, expiry, client_orders,
// client_status_orders). Filled only when their buckets were missing, the
// indexes stayed without those entries once this version ran on the file
// again: a text said meanwhile was kept past audit.retain_text for good,
// as was every claim, notification id and counter written meanwhile, and
// the admin API's ?client= left out the orders made meanwhile, and listed
// under their old status those paid meanwhile. Opening a file whose last
// write was not this version's indexes it again; opening one whose last
// write was, reads no record to index.
func TestIndexesOfAFileAnEarlierVersionWroteSince(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "paygate.db")
	d := openAt(t, path, clock)
	a := storetest.NewOrder("PGA", "shop", "u1", clock.Now().Add(-time.Minute))
	if err := d.CreateOrder(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := d.PutAuditText(ctx, 1, "shop", "u1", []byte("hi"), clock.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// The earlier version, on the same file: a text, a notification id,
	// an order, and order PGA paid, each written as that version did.
	asAnEarlierVersion(t, path, func(tx *bolt.Tx) error {
		text, err := marshal(textRec{Client: "shop", User: "u2", Text: []byte("hello"), Until: clock.Now().Add(time.Hour).UnixNano()})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bAuditText).Put(u64(2), text); err != nil {
			return err
		}
		if err := tx.Bucket(bAuditTextCU).Put(join(enc("shop"), enc("u2"), u64(2)), nil); err != nil {
			return err
		}
		note, err := marshal(expiring{Until: clock.Now().Add(time.Minute).UnixNano()})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bNotes).Put([]byte("n-old"), note); err != nil {
			return err
		}
		b := storetest.NewOrder("PGB", "shop", "u2", clock.Now())
		b.Version, b.UpdatedAt = 1, clock.Now()
		if err := putOrder(tx, b); err != nil {
			return err
		}
		uk, sk, ak := orderIndexKeys(b)
		for _, kv := range []struct{ b, k []byte }{{bUserOrders, uk}, {bUserUpdated, userUpdatedKey(b)}, {bStatusOrders, sk}, {bAllOrders, ak}} {
			if err := tx.Bucket(kv.b).Put(kv.k, nil); err != nil {
				return err
			}
		}
		return payAsAnEarlierVersion(tx, "PGA", time.Time{})
	})

	d = openAt(t, path, clock)
	for _, tt := range []struct {
		f    store.OrderFilter
		want string
	}{
		{store.OrderFilter{Client: "shop"}, "[PGB PGA]"},
		{store.OrderFilter{Client: "shop", Status: store.StatusPaid}, "[PGA]"},
		{store.OrderFilter{Client: "shop", Status: store.StatusAwaitingPayment}, "[PGB]"},
	} {
		if got := orderNos(t, d, tt.f); got != tt.want {
			t.Errorf("%+v: %s; want %s", tt.f, got, tt.want)
		}
	}
	clock.Advance(2 * time.Hour)
	if n, err := d.Sweep(ctx); err != nil || n != 3 {
		t.Errorf("Sweep: %d, %v; want the 2 texts and the notification id, expired", n, err)
	}
	err := d.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bAuditText, bNotes} {
			if n := tx.Bucket(b).Stats().KeyN; n != 0 {
				t.Errorf("%s: %d records kept past their expiry", b, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A file this version wrote last is not indexed again: an entry its
	// own write removed stays removed across the open.
	if _, err := d.SeenNotification(ctx, "n-new", time.Minute); err != nil {
		t.Fatal(err)
	}
	err = d.commit(func(tx *bolt.Tx) error {
		return tx.Bucket(bExpiry).Delete(expiryKey(clock.Now().Add(time.Minute).UnixNano(), expiryIDs[string(bNotes)], []byte("n-new")))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openAt(t, path, clock)
	err = d.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bExpiry).Stats().KeyN; n != 0 {
			t.Errorf("the open of a file this version wrote last indexed it again (%d entries in %s)", n, bExpiry)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
