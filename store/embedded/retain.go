package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
)

// retainKey, in bAuditMeta, holds the retention (u64 nanoseconds) the
// last RetainAuditTexts applied. An open that finds another version wrote
// the file last (initFile) deletes it: that version kept texts under a
// retention of its own.
var retainKey = []byte("retain_text")

var _ store.AuditTextRetention = (*DB)(nil)

// RetainAuditTexts implements store.AuditTextRetention. One process holds
// the file, and it writes its texts under the retention it applies, so the
// texts are read whole only when retain is shorter than the one recorded
// (or none is): a sweep still reads only the texts whose retention ran out.
func (d *DB) RetainAuditTexts(ctx context.Context, retain time.Duration) (int, error) {
	retain = max(retain, 0)
	var recorded []byte
	if err := d.view(ctx, func(tx *bolt.Tx) error {
		recorded = bytes.Clone(tx.Bucket(bAuditMeta).Get(retainKey))
		return nil
	}); err != nil {
		return 0, err
	}
	want := u64(uint64(retain))
	if bytes.Equal(recorded, want) {
		return 0, nil
	}
	n := 0
	if len(recorded) != 8 || int64(binary.BigEndian.Uint64(recorded)) > int64(retain) {
		var err error
		if n, err = d.retainTexts(ctx, retain); err != nil {
			return n, err
		}
	}
	// A longer retention is recorded too (no text is made to expire
	// later): a later shortening is then a pass again.
	err := d.update(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bAuditMeta).Put(retainKey, want) })
	return n, err
}

// retainTexts reads every text, sweepBatch at a time in read transactions,
// and in a write transaction per batch deletes those whose record's time is
// retain or more before now (as the sweep deletes a text: with its index
// entries) and brings the Until of the others forward to that time plus
// retain, moving their entry in bAuditTextUntil, so that the sweep deletes
// them then.
func (d *DB) retainTexts(ctx context.Context, retain time.Duration) (int, error) {
	type capped struct {
		seq   []byte
		until int64
	}
	n := 0
	from := u64(0)
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		var batch []capped
		var last []byte
		err := d.view(ctx, func(tx *bolt.Tx) error {
			chain := tx.Bucket(bAudit)
			c := tx.Bucket(bAuditText).Cursor()
			read := 0
			for k, v := c.Seek(from); k != nil && read < sweepBatch; k, v = c.Next() {
				read++
				last = bytes.Clone(k)
				if len(k) != 8 {
					continue
				}
				capAt, ok := textCap(chain, k, retain)
				if !ok {
					continue
				}
				var r expiring
				if unmarshal(v, &r) != nil || r.Until <= capAt {
					continue // undecodable: the sweep leaves it too
				}
				batch = append(batch, capped{seq: bytes.Clone(k), until: capAt})
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		if len(batch) > 0 {
			now := d.now().UnixNano()
			err = d.commit(func(tx *bolt.Tx) error {
				texts, idx := tx.Bucket(bAuditText), tx.Bucket(bAuditTextUntil)
				for _, b := range batch {
					v := texts.Get(b.seq)
					if v == nil {
						continue // erased meanwhile
					}
					var r textRec
					if err := unmarshal(v, &r); err != nil || r.Until <= b.until {
						continue
					}
					if err := idx.Delete(textUntilKey(r.Until, b.seq)); err != nil {
						return err
					}
					if b.until <= now {
						if err := deleteText(tx, b.seq, r); err != nil {
							return err
						}
						n++
						continue
					}
					r.Until = b.until
					nv, err := marshal(r)
					if err != nil {
						return err
					}
					if err := texts.Put(b.seq, nv); err != nil {
						return err
					}
					if err := idx.Put(textUntilKey(r.Until, b.seq), nil); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return n, wrap(err)
			}
		}
		if len(last) != 8 || binary.BigEndian.Uint64(last) == ^uint64(0) {
			return n, nil
		}
		from = u64(binary.BigEndian.Uint64(last) + 1)
	}
}

// textCap is the Until of text seq under retain: its chain record's time
// plus retain, as verify counts it. A text without a readable record, or
// one naming no time, is left as it is.
func textCap(chain *bolt.Bucket, seq []byte, retain time.Duration) (int64, bool) {
	v := chain.Get(seq)
	if v == nil {
		return 0, false
	}
	var rec store.AuditRecord
	if unmarshal(v, &rec) != nil {
		return 0, false
	}
	t := store.AuditRecordTime(rec.Body)
	if t.IsZero() {
		return 0, false
	}
	return t.Add(retain).UnixNano(), true
}

// deleteText deletes text seq, r, with its entries in the user indexes,
// as the sweep does (its entry in bAuditTextUntil is the caller's).
func deleteText(tx *bolt.Tx, seq []byte, r textRec) error {
	if err := tx.Bucket(bAuditText).Delete(seq); err != nil {
		return err
	}
	if err := tx.Bucket(bAuditTextCU).Delete(join(enc(r.Client), enc(r.User), seq)); err != nil {
		return err
	}
	return tx.Bucket(bAuditTextUsr).Delete(join(enc(r.User), seq))
}
