package embedded

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestSweepReadsOnlyExpiredAuditTexts: conversation texts are kept for
// audit.retain_text (180 days by default), one per money action, each the
// turn's messages. The sweep runs every minute; it must read the texts
// whose retention ran out, not every text kept. It read each one, decoding
// its whole record to find its expiry, so a year at a busy merchant (a
// million texts of a few kB) had the sweep decode gigabytes every minute.
// Measured by the read transactions one sweep opens (the scan read at
// most 10,000 records in one): a sweep over 20,001 live texts opens no more
// than one over an empty store, and still deletes exactly the expired
// texts with their index entries.
func TestSweepReadsOnlyExpiredAuditTexts(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	d := openTest(t, clock)
	d.db.NoSync = true // thousands of single writes; durability is not under test

	_, empty, _ := sweepOnce(t, d)

	const expired, live = 10, 20001
	text := bytes.Repeat([]byte("user: I want the premium plan, please. "), 50) // 2 kB, a short turn
	said := clock.Now()
	for i := range expired {
		if err := d.PutAuditText(ctx, uint64(i+1), "shop", fmt.Sprintf("u%d", (i+1)%7), text, said, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for i := range live {
		if err := d.PutAuditText(ctx, uint64(expired+i+1), "shop", fmt.Sprintf("u%d", (expired+i+1)%7), text, said, 4320*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Hour)

	n, reads, took := sweepOnce(t, d)
	t.Logf("one sweep over %d kept texts of %d bytes: %v, %d read transactions (%d over an empty store)", live, len(text), took, reads, empty)
	if n != expired {
		t.Errorf("Sweep removed %d; want the %d expired texts", n, expired)
	}
	if reads > empty {
		t.Errorf("a sweep over %d kept texts opened %d read transactions, one over an empty store %d: it reads every kept text each minute", live, reads, empty)
	}
	err := d.db.View(func(tx *bolt.Tx) error {
		for i := range expired + live {
			v := tx.Bucket(bAuditText).Get(u64(uint64(i + 1)))
			idx := tx.Bucket(bAuditTextCU).Get(join(enc("shop"), enc(fmt.Sprintf("u%d", (i+1)%7)), u64(uint64(i+1))))
			if gone := i < expired; gone != (v == nil) || gone != (idx == nil) {
				t.Errorf("text %d: stored %v, indexed %v; want both %v", i+1, v != nil, idx != nil, !gone)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A second sweep finds nothing more to delete.
	if n, err := d.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second Sweep: %d, %v; want 0, nil", n, err)
	}
}

// TestSweepDeletesTextsOfAFileWithoutTheExpiryIndex: a file an earlier
// version wrote has its texts but no bAuditTextUntil; opening it lists
// them there, so the sweep still deletes each one whose retention ran out.
func TestSweepDeletesTextsOfAFileWithoutTheExpiryIndex(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "paygate.db")
	d := openAt(t, path, clock)
	for seq, ttl := range map[uint64]time.Duration{1: time.Hour, 2: 4320 * time.Hour, 3: time.Hour} {
		if err := d.PutAuditText(ctx, seq, "shop", "u1", []byte("hi"), clock.Now(), ttl); err != nil {
			t.Fatal(err)
		}
	}
	dropBuckets(t, d, bAuditTextUntil)
	d = reopen(t, d, path, clock)
	clock.Advance(2 * time.Hour)
	if n, err := d.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("Sweep: %d, %v; want the 2 expired texts", n, err)
	}
	if _, err := d.GetAuditText(ctx, 2); err != nil {
		t.Errorf("the kept text: %v", err)
	}
	err := d.db.View(func(tx *bolt.Tx) error {
		for _, seq := range []uint64{1, 3} {
			if tx.Bucket(bAuditText).Get(u64(seq)) != nil {
				t.Errorf("text %d kept past its retention", seq)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSweepReadsOnlyExpiredRecords: what else expires is kept for days to
// weeks and read by the same sweep every minute: a conversation's cost
// for 30 days (one per conversation: a chatty bot's millions), a purchase
// claim's generation for 30, an announcement mark for 29. The sweep read
// every one of them each minute to find the few expired (300,000 kept
// conversation costs: 250 ms a sweep). A sweep over 20,001 live
// conversation costs opens no more read transactions than one over an
// empty store, and deletes exactly the expired records.
func TestSweepReadsOnlyExpiredRecords(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	d := openTest(t, clock)
	_, empty, _ := sweepOnce(t, d)

	const live = 20001
	var adds []store.TallyAdd
	for i := range live {
		adds = append(adds, store.TallyAdd{Key: fmt.Sprintf("session:shop-bot:o-user-%08d:", i), Delta: 12345})
	}
	if err := d.AddTallies(ctx, adds, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Expired after an hour: an exchange, a notification id, a claim, a
	// counter, a tally, an announcement mark with the counter earlier
	// versions read; the claim's generation stays.
	must(d.PutExchange(ctx, "x1", []byte("x"), time.Minute))
	_, err := d.SeenNotification(ctx, "n1", time.Minute)
	must(err)
	_, _, err = d.ClaimPurchase(ctx, "k1", "O1", time.Minute)
	must(err)
	_, err = d.IncrCounter(ctx, "c1", time.Minute)
	must(err)
	_, err = d.AddTally(ctx, "t1", 1, time.Minute)
	must(err)
	_, err = d.ClaimAnnouncement(ctx, "shop-bot", "u1", "announced:", "O1", time.Minute)
	must(err)
	clock.Advance(time.Hour)

	n, reads, took := sweepOnce(t, d)
	t.Logf("one sweep over %d kept conversation costs: %v, %d read transactions (%d over an empty store)", live, took, reads, empty)
	if n != 7 {
		t.Errorf("Sweep removed %d; want the 7 expired records (the mark's counter of earlier versions too)", n)
	}
	if reads > empty {
		t.Errorf("a sweep over %d kept records opened %d read transactions, one over an empty store %d: it reads every kept record each minute", live, reads, empty)
	}
	err = d.db.View(func(tx *bolt.Tx) error {
		for name, want := range map[string]int{string(bCounters): live, string(bExchanges): 0, string(bNotes): 0, string(bClaims): 0,
			string(bClaimGens): 1, string(bAnnounced): 0} {
			if got := tx.Bucket([]byte(name)).Stats().KeyN; got != want {
				t.Errorf("%s after the sweep: %d records; want %d", name, got, want)
			}
		}
		return nil
	})
	must(err)
	if got, err := d.AddTally(ctx, "session:shop-bot:o-user-00000007:", 0, time.Hour); err != nil || got != 12345 {
		t.Errorf("a kept conversation cost after the sweep: %d, %v; want 12345", got, err)
	}
}

// TestSweepDeletesRecordsOfAFileWithoutTheExpiryIndex: a file an earlier
// version wrote has expiring records but no bExpiry; opening it lists
// them there, so the sweep still deletes each one once expired.
func TestSweepDeletesRecordsOfAFileWithoutTheExpiryIndex(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "paygate.db")
	d := openAt(t, path, clock)
	if err := d.PutExchange(ctx, "short", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := d.PutExchange(ctx, "long", []byte("y"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SeenNotification(ctx, "n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	dropBuckets(t, d, bExpiry)
	d = reopen(t, d, path, clock)
	clock.Advance(2 * time.Minute)
	if n, err := d.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("Sweep: %d, %v; want the expired exchange and notification id", n, err)
	}
	if _, err := d.GetExchange(ctx, "long"); err != nil {
		t.Errorf("the kept exchange: %v", err)
	}
	if first, err := d.SeenNotification(ctx, "n1", time.Minute); err != nil || !first {
		t.Errorf("the swept notification id: first %v, %v; want a first sighting", first, err)
	}
}
