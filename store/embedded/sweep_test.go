package embedded

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestSweepDeletesInSmallBatchesThatWritesInterleaveWith: the sweep must not
// hold the write lock across its whole pass (with many notification ids a
// money write waited over a second behind it). Its deletions come in write
// transactions of at most sweepBatch records, and a money write issued
// between two of them (from the test hook, while expired records remain)
// completes before the sweep ends. A record renewed after the sweep read it
// is kept, and exactly the expired records are gone, audit texts with
// their user index entries.
func TestSweepDeletesInSmallBatchesThatWritesInterleaveWith(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	d := openTest(t, clock)

	const expiredNotes, liveNotes, expiredTexts, liveTexts = 3*sweepBatch + 500, 700, sweepBatch + 200, 50
	start := clock.Now()
	err := d.db.Update(func(tx *bolt.Tx) error {
		notes, texts, users := tx.Bucket(bNotes), tx.Bucket(bAuditText), tx.Bucket(bAuditTextUsr)
		for i := range expiredNotes + liveNotes {
			until := start.Add(time.Hour)
			if i >= expiredNotes {
				until = start.Add(96 * time.Hour)
			}
			if err := putJSON(notes, bNotes, fmt.Sprintf("notif-%06d", i), expiring{Until: until.UnixNano()}); err != nil {
				return err
			}
		}
		for i := range expiredTexts + liveTexts {
			until := start.Add(time.Hour)
			if i >= expiredTexts {
				until = start.Add(96 * time.Hour)
			}
			user := fmt.Sprintf("u%d", i%7)
			v, err := marshal(textRec{User: user, Text: []byte("hi"), Until: until.UnixNano()})
			if err != nil {
				return err
			}
			if err := texts.Put(u64(uint64(i+1)), v); err != nil {
				return err
			}
			if err := users.Put(join(enc(user), u64(uint64(i+1))), nil); err != nil {
				return err
			}
			if err := tx.Bucket(bAuditTextUntil).Put(textUntilKey(until.UnixNano(), u64(uint64(i+1))), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)

	var batches []int
	wrote := false
	d.sweepHook = func(deletions int) {
		batches = append(batches, deletions)
		switch len(batches) {
		case 1:
			// The first batch has been read, not deleted: renew one of its
			// records, as a retried notification would.
			done := make(chan error, 1)
			go func() {
				done <- d.db.Update(func(tx *bolt.Tx) error {
					return putJSON(tx.Bucket(bNotes), bNotes, "notif-000000", expiring{Until: clock.Now().Add(time.Hour).UnixNano()})
				})
			}()
			waitWrite(t, done, "renewing a record")
		case 2:
			// One batch is deleted, more remain: money writes go through now.
			done := make(chan error, 1)
			go func() {
				first, err := d.SeenNotification(ctx, "a-payment-notification", 48*time.Hour)
				if err == nil && !first {
					err = fmt.Errorf("SeenNotification: not a first sighting")
				}
				if err == nil {
					err = d.CreateOrder(ctx, storetest.NewOrder("SW-1", "shop", "u1", clock.Now()))
				}
				done <- err
			}()
			waitWrite(t, done, "a money write")
			wrote = true
		}
	}
	n, err := d.Sweep(ctx)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if !wrote {
		t.Fatalf("no money write ran between the sweep's batches (write transactions: %v)", batches)
	}
	for i, b := range batches {
		if b > sweepBatch {
			t.Errorf("write transaction %d covers %d deletions; want at most %d", i, b, sweepBatch)
		}
	}
	if want := expiredNotes - 1 + expiredTexts; n != want {
		t.Errorf("Sweep removed %d; want %d (the renewed record kept)", n, want)
	}
	err = d.db.View(func(tx *bolt.Tx) error {
		counts := []struct {
			name []byte
			want int
		}{
			{bNotes, liveNotes + 1 + 1}, // + the renewed one + the money write's
			{bAuditText, liveTexts},
			{bAuditTextUsr, liveTexts},
		}
		for _, c := range counts {
			if got := tx.Bucket(c.name).Stats().KeyN; got != c.want {
				t.Errorf("%s after the sweep: %d records; want %d", c.name, got, c.want)
			}
		}
		if tx.Bucket(bNotes).Get([]byte("notif-000000")) == nil {
			t.Error("the record renewed during the sweep was deleted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetOrder(ctx, "SW-1"); err != nil {
		t.Errorf("the order created during the sweep: %v", err)
	}
	if first, err := d.SeenNotification(ctx, "a-payment-notification", 48*time.Hour); err != nil || first {
		t.Errorf("the notification seen during the sweep: first=%v, %v; want seen", first, err)
	}
}

// waitWrite waits for a write issued from the sweep hook. The bound is a
// deadlock guard, not a latency assertion: a sweep that held the write lock
// across the hook would never let the write finish.
func waitWrite(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s during the sweep: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s issued between the sweep's batches did not complete: the sweep holds the write lock", what)
	}
}

// TestSweptPagesAreReused: bbolt never shrinks its file, so what keeps a
// store that runs for months from growing without bound is the sweep
// freeing the pages of what expired and later writes reusing them (the
// README says the file grows only past its largest working set). Each
// round writes the same volume of expiring records (claims, notification
// ids, exchanges, conversation texts, conversation costs, answered refund
// confirmations, delivered webhooks), then lets them expire and sweeps:
// the file the first round grew is not grown by the rounds after it.
func TestSweptPagesAreReused(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	d := openTest(t, clock)
	d.db.NoSync = true // the file's layout is the same; its fsyncs would make this test slow
	text := bytes.Repeat([]byte("x"), 2048)
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(d.Path())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const rounds, turns = 4, 400
	var first int64
	seq := uint64(0)
	for round := range rounds {
		for i := range turns {
			k := fmt.Sprintf("%d-%d", round, i)
			user := fmt.Sprintf("u%d", i%50)
			_, _, err := d.ClaimPurchase(ctx, "claim:"+k, "O"+k, time.Hour)
			must(err)
			_, err = d.SeenNotification(ctx, "n"+k, 24*time.Hour)
			must(err)
			must(d.PutExchange(ctx, "ex:"+k, text[:512], 24*time.Hour))
			_, err = d.AddTally(ctx, "conv:"+k, 100, 24*time.Hour)
			must(err)
			seq++
			must(d.PutAuditText(ctx, seq, "bot", user, text, clock.Now(), 24*time.Hour))
			must(d.PutRefundProposal(ctx, &store.RefundProposal{RefundID: "rf" + k, Client: "bot", User: user}, time.Hour))
			_, err = d.ConsumeRefundProposal(ctx, "rf"+k, user)
			must(err)
			must(d.EnqueueEvents(ctx, store.Event{ID: "e" + k, Kind: "webhook", Key: "O" + k, Payload: text}))
			evs, err := d.ClaimEvents(ctx, "webhook", clock.Now(), time.Minute, 10)
			must(err)
			for _, e := range evs {
				must(d.AckEvent(ctx, e.Key, e.ID))
			}
		}
		// Past every retention: claim generations' and refund tombstones'.
		clock.Advance(store.GenerationRetention + 2*time.Hour)
		n, err := d.Sweep(ctx)
		must(err)
		if want := 6 * turns; n < want {
			t.Fatalf("round %d: swept %d records; want at least %d", round, n, want)
		}
		if round == 0 {
			first = size()
			continue
		}
		if got := size(); got > first {
			t.Errorf("round %d: the file grew from %d to %d bytes; the swept rounds' pages were not reused", round, first, got)
		}
	}
	t.Logf("file after %d rounds of %d turns: %d KiB", rounds, turns, first>>10)
}

// TestSweepKeepsAWindowAfterTheClockSteppedBack: a sliding window's record
// lives until its newest event is a window old, also when the event last
// admitted was admitted after the clock stepped back (an NTP correction):
// swept a window after that one, it took the newer event with it, and the
// limit let one more through within its window.
func TestSweepKeepsAWindowAfterTheClockSteppedBack(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	d := openTest(t, clock)
	allow := func(limit int, tok string) bool { return allowPayCall(t, d, limit, tok) }
	allow(1, "at-0")
	clock.Advance(-30 * time.Second)
	allow(2, "at-minus-30s")
	clock.Advance(61 * time.Second) // +31 s: at-0 is 31 s old
	if _, err := d.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if allow(1, "at-31s") {
		t.Errorf("admitted at +31 s with a limit of 1 a minute, the event at 0 in the window")
	}
}

// allowPayCall is d's AllowWindow for a user's payment calls: limit a
// minute, the event's token tok.
func allowPayCall(t *testing.T, d *DB, limit int, tok string) bool {
	t.Helper()
	ok, err := d.AllowWindow(context.Background(), "paycalls:shop:u1", limit, time.Minute, tok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestWindowAfterTheClockSteppedBackFar: events admitted while the clock
// ran far ahead (a VM resumed with a wrong clock, NTP then stepping it back
// an hour) count as admitted when the step was seen, not an hour on: they
// kept the user at the limit of payment calls for the hour the clock had
// been ahead, where Redis drops the window a minute (expiryGrace) after
// its last admission.
func TestWindowAfterTheClockSteppedBackFar(t *testing.T) {
	clock := storetest.NewClock()
	d := openTest(t, clock)
	clock.Advance(time.Hour)
	for _, tok := range []string{"ahead-1", "ahead-2"} {
		if !allowPayCall(t, d, 2, tok) {
			t.Fatalf("%s refused with a limit of 2 a minute", tok)
		}
	}
	clock.Advance(-time.Hour)
	if allowPayCall(t, d, 2, "just-after-the-step") {
		t.Errorf("admitted just after the step back, two calls made a moment before with a limit of 2 a minute")
	}
	clock.Advance(time.Minute + time.Second)
	if !allowPayCall(t, d, 2, "a-minute-after") {
		t.Errorf("refused a minute after the step back: the calls made an hour ahead still count")
	}
	if _, err := d.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute + time.Second)
	for _, tok := range []string{"two-minutes-after", "two-minutes-after-2"} {
		if !allowPayCall(t, d, 2, tok) {
			t.Errorf("%s refused: the window still counts the calls made an hour ahead", tok)
		}
	}
}
