package embedded

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/store/storetest"
)

// TestSweepSkipsAnUndecodableRecord: a record that does not decode (a
// damaged page, a bug of some version) stopped the sweep at its index
// entry, every minute, and with it every later deletion, the sweep of the
// conversation texts included: texts outlived audit.retain_text for good,
// with nothing said but a sweep error. The sweep now logs the record, once,
// naming its bucket and key, leaves it in the file for an operator, and
// goes on with the rest. The log is the one paygate serves with
// (logging.New, as serve.go builds it), which masks an attribute named
// "key" whatever it holds: the record's key must reach the operator.
func TestSweepSkipsAnUndecodableRecord(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	var logs bytes.Buffer
	d, err := Open(filepath.Join(t.TempDir(), "paygate.db"), Options{
		Now: clock.Now, SweepInterval: -1,
		Logger: logging.New(&logs, slog.LevelInfo, []string{"sk-paygate-dev"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.SeenNotification(ctx, "n-good", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := d.PutAuditText(ctx, 2, "shop", "u1", []byte("hello"), clock.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Damaged records, each due before the good ones.
	early := clock.Now().Add(-time.Hour).UnixNano()
	err = d.commit(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bNotes).Put([]byte("n-bad"), []byte("{not json")); err != nil {
			return err
		}
		if err := tx.Bucket(bExpiry).Put(expiryKey(early, expiryIDs[string(bNotes)], []byte("n-bad")), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bAuditText).Put(u64(1), []byte("{not json")); err != nil {
			return err
		}
		return tx.Bucket(bAuditTextUntil).Put(textUntilKey(early, u64(1)), nil)
	})
	if err != nil {
		t.Fatal(err)
	}

	clock.Advance(2 * time.Hour)
	if n, err := d.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("Sweep: %d, %v; want the notification id and the text, expired, deleted", n, err)
	}
	first := logs.String()
	for _, want := range []string{`"bucket":"notifications","record_key":"` + hex.EncodeToString([]byte("n-bad")) + `"`, `"bucket":"audit_text","record_key":"` + hex.EncodeToString(u64(1)) + `"`} {
		if strings.Count(first, want) != 1 {
			t.Errorf("log %q: want once %q", first, want)
		}
	}
	if n, err := d.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second Sweep: %d, %v", n, err)
	}
	if again := logs.String()[len(first):]; again != "" {
		t.Errorf("the second sweep logged again: %q", again)
	}
	err = d.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bNotes).Get([]byte("n-bad")) == nil || tx.Bucket(bAuditText).Get(u64(1)) == nil {
			t.Error("an undecodable record was deleted; it stays for an operator")
		}
		if tx.Bucket(bNotes).Get([]byte("n-good")) != nil || tx.Bucket(bAuditText).Get(u64(2)) != nil {
			t.Error("an expired record was kept")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
