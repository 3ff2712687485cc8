package embedded

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
)

// TestLeasesOfADeadProcessEndAtOpen: the file is one process's at a time,
// so an event leased (ClaimEvents) and never settled when the file is
// opened again was leased by a process that died mid-delivery: it is due
// at once, as before its lease, not when the lease (30 s for a webhook)
// runs out. An event settled before (retried for later, acknowledged) is
// as it was settled.
func TestLeasesOfADeadProcessEndAtOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	now := time.Now()
	d, err := Open(path, Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(id, key string) store.Event {
		return store.Event{ID: id, Kind: "webhook", Key: key, Payload: []byte(`{}`), NextAt: now.Add(-time.Second)}
	}
	if err := d.EnqueueEvents(ctx, ev("evt_leased", "k1"), ev("evt_retried", "k2"), ev("evt_acked", "k3"), ev("evt_behind", "k1")); err != nil {
		t.Fatal(err)
	}
	got, err := d.ClaimEvents(ctx, "webhook", now, 30*time.Second, 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("claimed %d events (%v); want the heads of k1, k2, k3", len(got), err)
	}
	later := now.Add(time.Hour)
	if err := d.RetryEvent(ctx, "k2", "evt_retried", later, 1, "status 503"); err != nil {
		t.Fatal(err)
	}
	if err := d.AckEvent(ctx, "k3", "evt_acked"); err != nil {
		t.Fatal(err)
	}
	_ = d.Close() // evt_leased's lease is left as a killed process leaves it

	d, err = Open(path, Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	due, err := d.ClaimEvents(ctx, "webhook", now.Add(time.Second), 30*time.Second, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != "evt_leased" || due[0].Attempts != 0 {
		t.Fatalf("due after the reopen: %+v; want evt_leased alone, no attempt counted", due)
	}
	heads, err := d.OutboxHeads(ctx, "k2")
	if err != nil || len(heads) != 1 || !heads[0].NextAt.Equal(later) || heads[0].Attempts != 1 {
		t.Errorf("k2 after the reopen: %+v (%v); want evt_retried due at %v, as retried", heads, err, later)
	}
	if heads, _ := d.OutboxHeads(ctx, "k3"); len(heads) != 0 {
		t.Errorf("k3 after the reopen: %+v; want the acknowledged event gone", heads)
	}
}

// TestLeasesOfAnEarlierVersionEndAtOpen: a file last written by the version
// before leases were recorded (no outbox_leases bucket) holds the lease of
// the event its process was delivering when the operator stopped it to
// upgrade in place (SIGTERM mid-POST; that version kept the lease): the
// upgraded process sent order.paid to the merchant 30 s after it started,
// the lease, though no process was handling it. Such an event, never
// attempted and not due until after the open, is due at once; one retried
// for later stays as retried.
func TestLeasesOfAnEarlierVersionEndAtOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	now := time.Now()
	d, err := Open(path, Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(id, key string) store.Event {
		return store.Event{ID: id, Kind: "webhook", Key: key, Payload: []byte(`{}`), NextAt: now.Add(-time.Second)}
	}
	if err := d.EnqueueEvents(ctx, ev("evt_leased", "k1"), ev("evt_retried", "k2")); err != nil {
		t.Fatal(err)
	}
	if got, err := d.ClaimEvents(ctx, "webhook", now, 30*time.Second, 10); err != nil || len(got) != 2 {
		t.Fatalf("claimed %d events (%v); want 2", len(got), err)
	}
	later := now.Add(time.Hour)
	if err := d.RetryEvent(ctx, "k2", "evt_retried", later, 1, "status 503"); err != nil {
		t.Fatal(err)
	}
	// The file as the earlier version leaves it: the lease in the event's
	// next_at alone, no bucket recording it.
	if err := d.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bOutboxLeases) }); err != nil {
		t.Fatal(err)
	}
	_ = d.Close()

	d, err = Open(path, Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	due, err := d.ClaimEvents(ctx, "webhook", now.Add(time.Second), 30*time.Second, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != "evt_leased" || due[0].Attempts != 0 {
		t.Fatalf("due after the upgrade: %+v; want evt_leased alone, no attempt counted", due)
	}
	heads, err := d.OutboxHeads(ctx, "k2")
	if err != nil || len(heads) != 1 || !heads[0].NextAt.Equal(later) || heads[0].Attempts != 1 {
		t.Errorf("k2 after the upgrade: %+v (%v); want evt_retried due at %v, as retried", heads, err, later)
	}
}
