package embedded

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestRetentionAfterARollbackToTheVersionBefore: the version before this
// one (98f4a667) marks the indexes kept in every write, as this one does,
// but knows no retain_text record and writes its texts under the
// retention of its own config. After a rollback to it (under its config's
// audit.retain_text 4320h) and back (720h), the record this version left
// said 720h was applied, the open took the file for its own (indexes
// kept) and left the record, and RetainAuditTexts read nothing: the texts
// said under the version before were kept 4320h, months past 720h.
func TestRetentionAfterARollbackToTheVersionBefore(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "paygate.db")
	const long, short = 4320 * time.Hour, 720 * time.Hour
	d := openAt(t, path, clock)
	appendRec := func(seq uint64) {
		t.Helper()
		h, err := d.AuditHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Appendf(nil, `{"n":%d,"time":%q}`, seq, clock.Now().UTC().Format(time.RFC3339Nano))
		sum := sha256.Sum256(append([]byte(h.Hash), body...))
		if err := d.AppendAudit(ctx, store.AuditRecord{Seq: h.Seq + 1, PrevHash: h.Hash, Hash: hex.EncodeToString(sum[:]), Body: body, User: "u1"}); err != nil {
			t.Fatal(err)
		}
	}
	appendRec(1)
	if err := d.PutAuditText(ctx, 1, "shop", "u1", []byte("hi"), clock.Now(), short); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RetainAuditTexts(ctx, short); err != nil {
		t.Fatal(err)
	}
	appendRec(2) // its text is said under the version before
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// The version before: text 2 kept 4320h, as its PutAuditText wrote
	// one, its write marking the indexes kept, as its commit did.
	asAnEarlierVersion(t, path, func(tx *bolt.Tx) error {
		until := clock.Now().Add(long).UnixNano()
		v, err := marshal(textRec{Client: "shop", User: "u1", Text: []byte("hello"), Until: until})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bAuditText).Put(u64(2), v); err != nil {
			return err
		}
		if err := tx.Bucket(bAuditTextUntil).Put(textUntilKey(until, u64(2)), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bAuditTextCU).Put(join(enc("shop"), enc("u1"), u64(2)), nil); err != nil {
			return err
		}
		// The version before's markIndexesKept: keptKey alone.
		return tx.Bucket(bIndexesKept).Put(keptKey, u64(uint64(tx.ID())))
	})

	d = openAt(t, path, clock)
	if _, err := d.RetainAuditTexts(ctx, short); err != nil {
		t.Fatal(err)
	}
	clock.Advance(short + time.Hour)
	if _, err := d.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, 2} {
		if _, err := d.GetAuditText(ctx, seq); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("text %d, 721h after it was said under retain_text 720h: %v; want it deleted", seq, err)
		}
	}
}
