package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
)

var headKey = []byte("head")

func auditHead(tx *bolt.Tx) (store.AuditHead, error) {
	v := tx.Bucket(bAuditMeta).Get(headKey)
	if v == nil {
		return store.AuditHead{}, nil // the empty chain
	}
	var h struct {
		Seq  *uint64 `json:"seq"`
		Hash string  `json:"hash"`
	}
	if err := unmarshal(v, &h); err != nil {
		return store.AuditHead{}, err
	}
	// A head without its seq was edited by hand: read as seq 0 it would
	// be a chain of no record, and verify would blame record 0.
	if h.Seq == nil {
		return store.AuditHead{}, fmt.Errorf("embedded: audit head: it names hash %q but no seq", h.Hash)
	}
	return store.AuditHead{Seq: *h.Seq, Hash: h.Hash}, nil
}

// AuditHead implements store.Audit.
func (d *DB) AuditHead(ctx context.Context) (store.AuditHead, error) {
	var h store.AuditHead
	err := d.view(ctx, func(tx *bolt.Tx) error {
		var err error
		h, err = auditHead(tx)
		return err
	})
	return h, err
}

// AppendAudit implements store.Audit.
func (d *DB) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	if rec.Hash == "" {
		return errors.New("embedded: audit record needs a hash")
	}
	return d.update(ctx, func(tx *bolt.Tx) error {
		h, err := auditHead(tx)
		if err != nil {
			return err
		}
		if rec.Seq != h.Seq+1 || rec.PrevHash != h.Hash {
			return fmt.Errorf("audit append %d after head %d: %w", rec.Seq, h.Seq, store.ErrConflict)
		}
		if tx.Bucket(bAudit).Get(u64(rec.Seq)) != nil {
			// The head was moved back past stored records: never written
			// over (store.Audit.AppendAudit).
			return errStoredBeyondHead(rec.Seq, h.Seq)
		}
		v, err := marshal(rec)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bAudit).Put(u64(rec.Seq), v); err != nil {
			return err
		}
		hv, err := marshal(store.AuditHead{Seq: rec.Seq, Hash: rec.Hash})
		if err != nil {
			return err
		}
		return tx.Bucket(bAuditMeta).Put(headKey, hv)
	})
}

// AppendAuditBatch implements store.Audit: the batch in one write
// transaction (one fsync), all of it or, refused, none.
func (d *DB) AppendAuditBatch(ctx context.Context, recs []store.AuditRecord) error {
	if err := store.CheckAuditBatch(recs); err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	return d.update(ctx, func(tx *bolt.Tx) error {
		h, err := auditHead(tx)
		if err != nil {
			return err
		}
		if first := recs[0]; first.Seq != h.Seq+1 || first.PrevHash != h.Hash {
			return fmt.Errorf("audit append %d..%d after head %d: %w", first.Seq, recs[len(recs)-1].Seq, h.Seq, store.ErrConflict)
		}
		b := tx.Bucket(bAudit)
		for _, rec := range recs {
			if b.Get(u64(rec.Seq)) != nil {
				return errStoredBeyondHead(rec.Seq, h.Seq)
			}
		}
		for _, rec := range recs {
			v, err := marshal(rec)
			if err != nil {
				return err
			}
			if err := b.Put(u64(rec.Seq), v); err != nil {
				return err
			}
		}
		last := recs[len(recs)-1]
		hv, err := marshal(store.AuditHead{Seq: last.Seq, Hash: last.Hash})
		if err != nil {
			return err
		}
		return tx.Bucket(bAuditMeta).Put(headKey, hv)
	})
}

// errStoredBeyondHead is AppendAudit's error for a place after the head
// that already holds a record.
func errStoredBeyondHead(seq, head uint64) error {
	return fmt.Errorf("audit append %d after head %d: a record is already stored there, beyond the head "+
		"(the head was moved back; run paygate audit verify): %w", seq, head, store.ErrExists)
}

// ReadAudit implements store.Audit.
func (d *DB) ReadAudit(ctx context.Context, fromSeq uint64, limit int) ([]store.AuditRecord, error) {
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	var out []store.AuditRecord
	var corrupt error
	err := d.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bAudit).Cursor()
		for k, v := c.Seek(u64(fromSeq)); k != nil && len(out) < limit; k, v = c.Next() {
			var r store.AuditRecord
			if err := unmarshal(v, &r); err != nil {
				at := fromSeq + uint64(len(out))
				if len(k) == 8 {
					at = binary.BigEndian.Uint64(k)
				}
				corrupt = &store.CorruptAuditRecordError{Seq: at, Err: err}
				return nil
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, corrupt
}

// AuditStrayAfterHead implements store.AuditStrays: the first place after
// the head's seq that holds a value, read with the head in one
// transaction. ReadAudit seeks past empty places, and a record's seq is
// its own claim, so neither says where a record stored beyond the head
// lies; verify names that place.
func (d *DB) AuditStrayAfterHead(ctx context.Context) (uint64, error) {
	var at uint64
	err := d.view(ctx, func(tx *bolt.Tx) error {
		h, err := auditHead(tx)
		if err != nil {
			return err
		}
		c := tx.Bucket(bAudit).Cursor()
		for k, _ := c.Seek(u64(h.Seq + 1)); k != nil; k, _ = c.Next() {
			if len(k) == 8 {
				at = binary.BigEndian.Uint64(k)
				return nil
			}
		}
		return nil
	})
	return at, err
}

type textRec struct {
	Client string `json:"client,omitempty"` // absent in texts of earlier versions
	User   string `json:"user"`
	Text   []byte `json:"text"`
	Until  int64  `json:"until"`
}

// erasedAt is the later of (client, user)'s erasure mark and an earlier
// version's mark of user (unix nanos), 0 when neither.
func erasedAt(tx *bolt.Tx, client, user string) int64 {
	var at int64
	for _, e := range [][]byte{
		tx.Bucket(bAuditErasedC).Get(join(enc(client), enc(user))),
		tx.Bucket(bAuditErased).Get(enc(user)),
	} {
		if len(e) == 8 {
			at = max(at, int64(binary.BigEndian.Uint64(e)))
		}
	}
	return at
}

// PutAuditText implements store.Audit.
func (d *DB) PutAuditText(ctx context.Context, seq uint64, client, user string, text []byte, said time.Time, ttl time.Duration) error {
	r := textRec{Client: client, User: user, Text: text, Until: d.now().Add(ttl).UnixNano()}
	v, err := marshal(r)
	if err != nil {
		return err
	}
	// Group committed: the audit worker keeps a batch's texts at once.
	return d.batched(ctx, func(tx *bolt.Tx) error {
		if at := erasedAt(tx, client, user); at != 0 && said.UnixNano() <= at {
			return nil // erased after it was said
		}
		tb := tx.Bucket(bAuditText)
		if old := tb.Get(u64(seq)); old != nil {
			var o textRec
			if err := unmarshal(old, &o); err != nil {
				return err
			}
			if o.User != user {
				return fmt.Errorf("audit text %d belongs to another user: %w", seq, store.ErrExists)
			}
		}
		if err := tb.Put(u64(seq), v); err != nil {
			return err
		}
		if err := tx.Bucket(bAuditTextUntil).Put(textUntilKey(r.Until, u64(seq)), nil); err != nil {
			return err
		}
		return tx.Bucket(bAuditTextCU).Put(join(enc(client), enc(user), u64(seq)), nil)
	})
}

// GetAuditText implements store.Audit.
func (d *DB) GetAuditText(ctx context.Context, seq uint64) ([]byte, error) {
	now := d.now().UnixNano()
	var out []byte
	err := d.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bAuditText).Get(u64(seq))
		var r textRec
		if v != nil {
			if err := unmarshal(v, &r); err != nil {
				return err
			}
		}
		if v == nil || now >= r.Until {
			return fmt.Errorf("audit text %d: %w", seq, store.ErrNotFound)
		}
		out = r.Text
		return nil
	})
	return out, err
}

// EraseAuditText implements store.Audit: the texts indexed under (client,
// user), and those an earlier version indexed under user alone whose chain
// record names client. It erases all or, its transaction failing, none,
// and then reports 0.
func (d *DB) EraseAuditText(ctx context.Context, client, user string) (int, error) {
	n := 0
	err := d.update(ctx, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bAuditErasedC).Put(join(enc(client), enc(user)), u64(uint64(d.now().UnixNano()))); err != nil {
			return err
		}
		k, err := eraseIndexed(tx, bAuditTextCU, join(enc(client), enc(user)), client, user, nil)
		n += k
		if err != nil {
			return err
		}
		chain := tx.Bucket(bAudit)
		k, err = eraseIndexed(tx, bAuditTextUsr, enc(user), client, user, func(seq []byte) (bool, error) {
			v := chain.Get(seq)
			if v == nil {
				return false, nil
			}
			var r store.AuditRecord
			if unmarshal(v, &r) != nil {
				return true, nil // its client cannot be told: the user's erasure wins (verify names the record)
			}
			return store.AuditRecordClient(r.Body) == client, nil
		})
		n += k
		return err
	})
	if err != nil {
		return 0, err // rolled back: nothing was erased
	}
	return n, nil
}

// eraseIndexed deletes the texts of user under client that index bucket
// name lists under prefix (only those keep accepts, when set) with their
// index entries, and reports how many texts it deleted. An entry is a
// pointer, not the text: one whose text is gone (erased through the other
// index already: an earlier version's text written again by this one is
// in both) or is now another client's is dropped, and neither counted nor
// followed, as the Redis store's erasure checks each text's owner.
func eraseIndexed(tx *bolt.Tx, name, prefix []byte, client, user string, keep func(seq []byte) (bool, error)) (int, error) {
	tb, ib := tx.Bucket(bAuditText), tx.Bucket(name)
	var keys [][]byte
	c := ib.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+8 {
			continue
		}
		if keep != nil {
			ok, err := keep(k[len(prefix):])
			if err != nil {
				return 0, err
			}
			if !ok {
				continue
			}
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	n := 0
	for _, k := range keys {
		seq := k[len(prefix):]
		if v := tb.Get(seq); v != nil {
			var r textRec
			if err := unmarshal(v, &r); err != nil {
				return 0, err
			}
			if r.User == user && (r.Client == "" || r.Client == client) {
				if err := tb.Delete(seq); err != nil {
					return 0, err
				}
				n++
			}
		}
		if err := ib.Delete(k); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// AuditErasedAt implements store.Audit.
func (d *DB) AuditErasedAt(ctx context.Context, client, user string) (time.Time, error) {
	var at time.Time
	err := d.view(ctx, func(tx *bolt.Tx) error {
		if n := erasedAt(tx, client, user); n != 0 {
			at = time.Unix(0, n)
		}
		return nil
	})
	return at, err
}

// textUntilKey is text seq's entry in bAuditTextUntil: its Until (unix
// nanos, none before 1970), then its seq, so that byte order is expiry
// order.
func textUntilKey(until int64, seq []byte) []byte {
	return append(u64(uint64(max(until, 0))), seq...)
}

// indexTextsUntil lists every kept text in bAuditTextUntil, once, for a
// file an earlier version wrote without that index. A record that does
// not decode is left out, as the sweep that read every text stopped at it.
func indexTextsUntil(tx *bolt.Tx) error {
	idx := tx.Bucket(bAuditTextUntil)
	return tx.Bucket(bAuditText).ForEach(func(k, v []byte) error {
		var r expiring
		if unmarshal(v, &r) != nil || len(k) != 8 {
			return nil // no text this version wrote: the sweep never deleted it either
		}
		return idx.Put(textUntilKey(r.Until, k), nil)
	})
}
