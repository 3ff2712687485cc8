package redis

import (
	"context"
	"crypto/rand"
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
	seq, ok := replyStr(vals, 0)
	hash, _ := replyStr(vals, 1)
	if !ok {
		// A hash without a seq is a head edited by hand, not the empty
		// chain's (no head at all): read as seq 0, verify blamed record 0.
		if hash != "" {
			return store.AuditHead{}, fmt.Errorf("redis: audit head: it names hash %q but no seq", hash)
		}
		return store.AuditHead{}, nil // the empty chain
	}
	// A seq that is no number is a head edited by hand: read as 0 it
	// would be a chain of no record, and verify would blame record 0.
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return store.AuditHead{}, fmt.Errorf("redis: audit head: its seq %q is not a record number", seq)
	}
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
	v, err := s.runMoney(ctx, "append audit", s.sc.appendAudit,
		[]string{s.k.audit("head"), s.k.audit("rec"), s.k.audit("at:" + rand.Text())},
		strconv.FormatUint(rec.Seq, 10), rec.PrevHash, rec.Hash, j, ms(expiryGrace))
	if err != nil && v == nil {
		return err
	}
	switch n, _ := v.(int64); n {
	case 0:
		return fmt.Errorf("audit append %d: %w", rec.Seq, store.ErrConflict)
	case -1:
		// The head was moved back past stored records: never written over
		// (store.Audit.AppendAudit).
		return fmt.Errorf("audit append %d after head %d: a record is already stored there, beyond the head "+
			"(the head was moved back; run paygate audit verify): %w", rec.Seq, rec.Seq-1, store.ErrExists)
	}
	return err
}

// AppendAuditBatch implements store.Audit: one script run (one round
// trip, one WAIT where replicas are waited for) for the batch, all of it
// or, refused, none. Its reply lost and the script re-sent, the run finds
// the call's token and answers done, as AppendAudit's does.
func (s *Store) AppendAuditBatch(ctx context.Context, recs []store.AuditRecord) error {
	if err := store.CheckAuditBatch(recs); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	args := make([]any, 0, 1+4*len(recs))
	args = append(args, ms(expiryGrace))
	for _, rec := range recs {
		j, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("redis: encode audit record %d: %w", rec.Seq, err)
		}
		args = append(args, strconv.FormatUint(rec.Seq, 10), rec.PrevHash, rec.Hash, j)
	}
	first, last := recs[0].Seq, recs[len(recs)-1].Seq
	v, err := s.runMoney(ctx, "append audit batch", s.sc.appendBatch,
		[]string{s.k.audit("head"), s.k.audit("rec"), s.k.audit("at:" + rand.Text())}, args...)
	if err != nil && v == nil {
		return err
	}
	switch n, _ := v.(int64); {
	case n == 0:
		return fmt.Errorf("audit append %d..%d: %w", first, last, store.ErrConflict)
	case n < 0 && int(-n) <= len(recs):
		// The head was moved back past stored records: never written over
		// (store.Audit.AppendAudit).
		return fmt.Errorf("audit append %d after head %d: a record is already stored there, beyond the head "+
			"(the head was moved back; run paygate audit verify): %w", recs[-n-1].Seq, first-1, store.ErrExists)
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
			return out, &store.CorruptAuditRecordError{Seq: fromSeq + uint64(i), Err: err}
		}
		out = append(out, r)
	}
	return out, nil
}

// AuditStrayAfterHead implements store.AuditStrays: ReadAudit reads the
// fields it is asked for, so a record stored after the head past an empty
// field is found only by looking at the hash's fields.
func (s *Store) AuditStrayAfterHead(ctx context.Context) (uint64, error) {
	v, err := s.sc.strayAudit.Run(ctx, s.c, []string{s.k.audit("head"), s.k.audit("rec")}).Result()
	if err != nil {
		return 0, mapErr("audit strays", err)
	}
	f, _ := v.(string)
	n, err := strconv.ParseUint(f, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis: audit strays: a record stored at %q, beyond the head", f)
	}
	return n, nil
}

// PutAuditText implements store.Audit.
//
// The audit texts' times stay on the callers' clocks, not the server's
// (serverClock), because what they are compared with is on those clocks:
// said, and the chain record's time, are the saying replica's; `paygate
// audit verify` counts a missing text gone by the record's time, retention
// and its own clock, and covered by an erasure by AuditErasedAt and the
// record's time, allowing for replica clocks a minute apart (README). A
// text's until is said + retention as this replica's clock reads it, so a
// reader hides it when its own verify expects it gone; the erasure mark is
// the erasing replica's time. TestSkewedReplicasJudgeAuditTextsByTheChainsClocks.
func (s *Store) PutAuditText(ctx context.Context, seq uint64, client, user string, text []byte, said time.Time, ttl time.Duration) error {
	set, kept := s.k.auditClientUser(client, user), s.k.auditClientKept(client, user)
	v, err := s.run(ctx, "put audit text", s.sc.putText,
		[]string{s.k.auditText(seq), set, s.k.auditClientErased(client, user), s.k.auditErased(user), kept},
		strconv.FormatUint(seq, 10), user, text, s.now().Add(ttl).UnixMilli(), ms(ttl+expiryGrace), said.UnixMilli(), client)
	if err != nil {
		return err
	}
	switch n, _ := v.(int64); n {
	case 0:
		return fmt.Errorf("audit text %d belongs to another user: %w", seq, store.ErrExists)
	case 3:
		// The text is kept; the pass only frees memory, and one cut short
		// is made again once the set doubles.
		if err := s.pruneTexts(ctx, set, kept); err != nil && ctx.Err() == nil {
			s.log.Warn("audit texts: the numbers of texts run out were not all dropped from their user's set", "err", err)
		}
	}
	return nil
}

// pruneTexts passes over set, a user's text numbers, in batches, deleting
// the texts run out and dropping their numbers (luaPruneTexts), and records
// how many it kept under kept.
func (s *Store) pruneTexts(ctx context.Context, set, kept string) error {
	now := s.now().UnixMilli()
	var cursor uint64
	for {
		seqs, next, err := s.c.SScan(ctx, set, cursor, "", 500).Result()
		if err != nil {
			return mapErr("prune audit texts", err)
		}
		keys := []string{set}
		args := []any{now, ms(expiryGrace)}
		for _, q := range seqs {
			n, err := strconv.ParseUint(q, 10, 64)
			if err != nil {
				continue
			}
			keys = append(keys, s.k.auditText(n))
			args = append(args, q)
		}
		if len(keys) > 1 {
			if _, err := s.run(ctx, "prune audit texts", s.sc.pruneTexts, keys, args...); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	n, err := s.c.SCard(ctx, set).Result()
	if err != nil {
		return mapErr("prune audit texts", err)
	}
	if err := s.c.SetArgs(ctx, kept, n, goredis.SetArgs{KeepTTL: true, Mode: "XX"}).Err(); err != nil && !errors.Is(err, goredis.Nil) {
		return mapErr("prune audit texts", err)
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

// EraseAuditText implements store.Audit: (client, user)'s set names their
// texts, and an earlier version's set of user names texts of any client,
// matched to client through their chain records; a script deletes each
// batch.
func (s *Store) EraseAuditText(ctx context.Context, client, user string) (int, error) {
	// The mark first: a text written after it is refused by putText; one
	// written before it is in the set scanned after.
	if err := s.c.Set(ctx, s.k.auditClientErased(client, user), s.now().UnixMilli(), 0).Err(); err != nil {
		return 0, mapErr("erase audit text", err)
	}
	n, err := s.eraseIndexed(ctx, s.k.auditClientUser(client, user), client, user, nil)
	if err != nil {
		return n, err
	}
	k, err := s.eraseIndexed(ctx, s.k.auditUser(user), client, user, s.recordsOfClient)
	return n + k, err
}

// eraseIndexed erases the texts of (client, user) that set names (only the
// seqs pick returns, when set) and reports how many.
func (s *Store) eraseIndexed(ctx context.Context, set, client, user string, pick func(context.Context, string, []string) ([]string, error)) (int, error) {
	total := 0
	var cursor uint64
	for {
		seqs, next, err := s.c.SScan(ctx, set, cursor, "", 500).Result()
		if err != nil {
			return total, mapErr("erase audit text", err)
		}
		if pick != nil && len(seqs) > 0 {
			if seqs, err = pick(ctx, client, seqs); err != nil {
				return total, err
			}
		}
		// The token key is on the texts' tag ({audit}): one slot.
		keys := []string{set, s.k.audit("et:" + rand.Text())}
		args := []any{user, client, ms(expiryGrace)}
		for _, q := range seqs {
			n, err := strconv.ParseUint(q, 10, 64)
			if err != nil {
				continue
			}
			keys = append(keys, s.k.auditText(n))
			args = append(args, q)
		}
		if len(keys) > 2 {
			v, err := s.run(ctx, "erase audit text", s.sc.erase, keys, args...)
			if err != nil {
				return total, err
			}
			n, _ := v.(int64)
			total += int(n)
		}
		if cursor = next; cursor == 0 {
			return total, nil
		}
	}
}

// recordsOfClient keeps the seqs whose chain record names client, and
// those whose record does not decode: whose text it is cannot be told, and
// an erasure asked by the user errs toward erasing.
func (s *Store) recordsOfClient(ctx context.Context, client string, seqs []string) ([]string, error) {
	vals, err := s.c.HMGet(ctx, s.k.audit("rec"), seqs...).Result()
	if err != nil {
		return nil, mapErr("erase audit text", err)
	}
	var out []string
	for i, q := range seqs {
		j, ok := replyStr(vals, i)
		if !ok {
			continue
		}
		var r store.AuditRecord
		if json.Unmarshal([]byte(j), &r) != nil {
			out = append(out, q) // its client cannot be told: the user's erasure wins (verify names the record)
			continue
		}
		if store.AuditRecordClient(r.Body) == client {
			out = append(out, q)
		}
	}
	return out, nil
}

// AuditErasedAt implements store.Audit: the later of (client, user)'s mark
// and an earlier version's mark of user (unix ms, no expiry).
func (s *Store) AuditErasedAt(ctx context.Context, client, user string) (time.Time, error) {
	vals, err := s.c.MGet(ctx, s.k.auditClientErased(client, user), s.k.auditErased(user)).Result()
	if err != nil {
		return time.Time{}, mapErr("audit erased at", err)
	}
	var at int64
	for i := range vals {
		v, ok := replyStr(vals, i)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("redis: audit erasure mark of a user: %q is not a time", v)
		}
		at = max(at, n)
	}
	if at == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(at), nil
}
