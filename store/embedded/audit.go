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
	var h store.AuditHead
	if v := tx.Bucket(bAuditMeta).Get(headKey); v != nil {
		if err := unmarshal(v, &h); err != nil {
			return h, err
		}
	}
	return h, nil
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

// ReadAudit implements store.Audit.
func (d *DB) ReadAudit(ctx context.Context, fromSeq uint64, limit int) ([]store.AuditRecord, error) {
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	var out []store.AuditRecord
	err := d.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bAudit).Cursor()
		for k, v := c.Seek(u64(fromSeq)); k != nil && len(out) < limit; k, v = c.Next() {
			var r store.AuditRecord
			if err := unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

type textRec struct {
	User  string `json:"user"`
	Text  []byte `json:"text"`
	Until int64  `json:"until"`
}

// PutAuditText implements store.Audit.
func (d *DB) PutAuditText(ctx context.Context, seq uint64, user string, text []byte, said time.Time, ttl time.Duration) error {
	r := textRec{User: user, Text: text, Until: d.now().Add(ttl).UnixNano()}
	v, err := marshal(r)
	if err != nil {
		return err
	}
	return d.update(ctx, func(tx *bolt.Tx) error {
		if e := tx.Bucket(bAuditErased).Get(enc(user)); len(e) == 8 && said.UnixNano() <= int64(binary.BigEndian.Uint64(e)) {
			return nil // erased after it was said
		}
		tb, ub := tx.Bucket(bAuditText), tx.Bucket(bAuditTextUsr)
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
		return ub.Put(join(enc(user), u64(seq)), nil)
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

// EraseAuditText implements store.Audit.
func (d *DB) EraseAuditText(ctx context.Context, user string) (int, error) {
	n := 0
	err := d.update(ctx, func(tx *bolt.Tx) error {
		tb, ub := tx.Bucket(bAuditText), tx.Bucket(bAuditTextUsr)
		prefix := enc(user)
		if err := tx.Bucket(bAuditErased).Put(prefix, u64(uint64(d.now().UnixNano()))); err != nil {
			return err
		}
		var keys [][]byte
		c := ub.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			seq := k[len(prefix):]
			if len(seq) != 8 {
				continue
			}
			if err := tb.Delete(seq); err != nil {
				return err
			}
			if err := ub.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// AuditErasedAt implements store.Audit.
func (d *DB) AuditErasedAt(ctx context.Context, user string) (time.Time, error) {
	var at time.Time
	err := d.view(ctx, func(tx *bolt.Tx) error {
		if e := tx.Bucket(bAuditErased).Get(enc(user)); len(e) == 8 {
			at = time.Unix(0, int64(binary.BigEndian.Uint64(e)))
		}
		return nil
	})
	return at, err
}
