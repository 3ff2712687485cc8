package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// AuditHead implements store.Audit.
func (s *Store) AuditHead(ctx context.Context) (store.AuditHead, error) {
	vals, err := s.c.HMGet(ctx, s.k.audit("head"), "seq", "hash").Result()
	if err != nil {
		return store.AuditHead{}, mapErr("audit head", err)
	}
	seq, _ := replyStr(vals, 0)
	hash, _ := replyStr(vals, 1)
	n, _ := strconv.ParseUint(seq, 10, 64)
	return store.AuditHead{Seq: n, Hash: hash}, nil
}

// AppendAudit implements store.Audit.
func (s *Store) AppendAudit(ctx context.Context, rec store.AuditRecord) error {
	if rec.Hash == "" {
		return errors.New("redis: audit record needs a hash")
	}
	j, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("redis: encode audit record: %w", err)
	}
	v, err := s.runMoney(ctx, "append audit", s.sc.appendAudit, []string{s.k.audit("head"), s.k.audit("rec")},
		strconv.FormatUint(rec.Seq, 10), rec.PrevHash, rec.Hash, j)
	if err != nil && v == nil {
		return err
	}
	if n, _ := v.(int64); n == 0 {
		return fmt.Errorf("audit append %d: %w", rec.Seq, store.ErrConflict)
	}
	return err
}

// ReadAudit implements store.Audit: one HMGET for the range.
func (s *Store) ReadAudit(ctx context.Context, fromSeq uint64, limit int) ([]store.AuditRecord, error) {
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	fromSeq = max(fromSeq, 1)
	fields := make([]string, limit)
	for i := range fields {
		fields[i] = strconv.FormatUint(fromSeq+uint64(i), 10)
	}
	vals, err := s.c.HMGet(ctx, s.k.audit("rec"), fields...).Result()
	if err != nil {
		return nil, mapErr("read audit", err)
	}
	var out []store.AuditRecord
	for i := range vals {
		j, ok := replyStr(vals, i)
		if !ok {
			break
		}
		var r store.AuditRecord
		if err := json.Unmarshal([]byte(j), &r); err != nil {
			return nil, fmt.Errorf("redis: decode audit record: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// PutAuditText implements store.Audit.
func (s *Store) PutAuditText(ctx context.Context, seq uint64, user string, text []byte, said time.Time, ttl time.Duration) error {
	v, err := s.run(ctx, "put audit text", s.sc.putText, []string{s.k.auditText(seq), s.k.auditUser(user), s.k.auditErased(user)},
		strconv.FormatUint(seq, 10), user, text, s.now().Add(ttl).UnixMilli(), ms(ttl+expiryGrace), said.UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := v.(int64); n == 0 {
		return fmt.Errorf("audit text %d belongs to another user: %w", seq, store.ErrExists)
	}
	return nil
}

// GetAuditText implements store.Audit.
func (s *Store) GetAuditText(ctx context.Context, seq uint64) ([]byte, error) {
	vals, err := s.c.HMGet(ctx, s.k.auditText(seq), "x", "until").Result()
	if err != nil {
		return nil, mapErr("get audit text", err)
	}
	x, ok := replyStr(vals, 0)
	if !ok || replyInt(vals, 1) <= s.now().UnixMilli() {
		return nil, fmt.Errorf("audit text %d: %w", seq, store.ErrNotFound)
	}
	return []byte(x), nil
}

// EraseAuditText implements store.Audit: the user's set names their texts; a
// script deletes them, repeated while texts keep arriving.
func (s *Store) EraseAuditText(ctx context.Context, user string) (int, error) {
	setKey := s.k.auditUser(user)
	// The mark first: a text written after it is refused by putText; one
	// written before it is in the set the loop empties.
	if err := s.c.Set(ctx, s.k.auditErased(user), s.now().UnixMilli(), 0).Err(); err != nil {
		return 0, mapErr("erase audit text", err)
	}
	total := 0
	for {
		seqs, err := s.c.SRandMemberN(ctx, setKey, 500).Result()
		if err != nil {
			return total, mapErr("erase audit text", err)
		}
		if len(seqs) == 0 {
			return total, nil
		}
		keys := []string{setKey}
		args := []any{user}
		for _, q := range seqs {
			n, err := strconv.ParseUint(q, 10, 64)
			if err != nil {
				continue
			}
			keys = append(keys, s.k.auditText(n))
			args = append(args, q)
		}
		v, err := s.run(ctx, "erase audit text", s.sc.erase, keys, args...)
		if err != nil {
			return total, err
		}
		n, _ := v.(int64)
		total += int(n)
	}
}

// AuditErasedAt implements store.Audit: the mark EraseAuditText sets (unix
// ms, no expiry).
func (s *Store) AuditErasedAt(ctx context.Context, user string) (time.Time, error) {
	v, err := s.c.Get(ctx, s.k.auditErased(user)).Result()
	if errors.Is(err, goredis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, mapErr("audit erased at", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("redis: audit erasure mark of a user: %q is not a time", v)
	}
	return time.UnixMilli(n), nil
}
