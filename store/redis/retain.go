package redis

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/paygate/paygate/store"
)

var _ store.AuditTextRetention = (*Store)(nil)

// retainBatch is how many records one step of RetainAuditTexts reads.
const retainBatch = 500

// RetainAuditTexts implements store.AuditTextRetention. Replicas share the
// texts, and during a rolling deploy one of an earlier version, or one
// whose retention is longer, keeps writing texts under its own: so besides
// the pass over every text (records 1 to the head), made when retain is
// shorter than the retention recorded (or none is), at most once per
// process for a retention (and again for a shorter one),
// each call reads the records appended since the call before the last one
// (the hash {audit}:retain: r, the retention; w, the head the last call
// reached; p, the one before), and the texts of those kept longer than
// retain from their record's time are cut to it. Two calls cover each
// record, so a text kept just after its record was read is still cut
// (the first call on the store too: the call after it reads every record
// again).
func (s *Store) RetainAuditTexts(ctx context.Context, retain time.Duration) (int, error) {
	retain = max(retain, 0)
	key := s.k.audit("retain")
	vals, err := s.c.HMGet(ctx, key, "r", "w", "p").Result()
	if err != nil {
		return 0, mapErr("retain audit texts", err)
	}
	head, err := s.AuditHead(ctx)
	if err != nil {
		return 0, err
	}
	num := func(i int) (uint64, bool) {
		v, ok := replyStr(vals, i)
		n, err := strconv.ParseUint(v, 10, 64)
		return n, ok && err == nil
	}
	r, hasR := num(0)
	w, hasW := num(1)
	p, hasP := num(2)
	from := uint64(1)
	switch {
	case (!hasR || uint64(retain.Milliseconds()) < r) && (s.textsRead.Load() == 0 || retain.Milliseconds() < s.textsRead.Load()-1):
	case hasP:
		from = p + 1
	case hasW:
		from = w + 1
	}
	n, err := s.retainRange(ctx, from, head.Seq, retain)
	if err != nil {
		return n, err
	}
	if from == 1 {
		s.textsRead.Store(retain.Milliseconds() + 1)
	}
	// p is the w before: the next call reads from it, so each record is
	// read by two calls. With none before (the first call on the store),
	// 0: the next call reads every record again, as it reads again those
	// any other call read; from the head, a text a replica under a longer
	// retention kept after this pass read its record was never cut.
	prev := w
	err = s.c.HSet(ctx, key, "r", retain.Milliseconds(), "w", head.Seq, "p", prev).Err()
	if err != nil {
		return n, mapErr("retain audit texts", err)
	}
	return n, nil
}

// retainRange cuts the texts of records from to to (retainBatch at a time)
// to retain from their record's time (luaRetainTexts).
func (s *Store) retainRange(ctx context.Context, from, to uint64, retain time.Duration) (int, error) {
	n := 0
	for at := from; at <= to; at += retainBatch {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		fields := make([]string, 0, retainBatch)
		for q := at; q <= to && q < at+retainBatch; q++ {
			fields = append(fields, strconv.FormatUint(q, 10))
		}
		vals, err := s.c.HMGet(ctx, s.k.audit("rec"), fields...).Result()
		if err != nil {
			return n, mapErr("retain audit texts", err)
		}
		var keys []string
		args := []any{s.now().UnixMilli(), ms(expiryGrace)}
		for i := range vals {
			j, ok := replyStr(vals, i)
			if !ok {
				continue
			}
			var rec store.AuditRecord
			if json.Unmarshal([]byte(j), &rec) != nil {
				continue // a record that does not decode: verify names it
			}
			t := store.AuditRecordTime(rec.Body)
			if t.IsZero() {
				continue
			}
			keys = append(keys, s.k.auditText(at+uint64(i)))
			args = append(args, t.Add(retain).UnixMilli())
		}
		if len(keys) == 0 {
			continue
		}
		v, err := s.run(ctx, "retain audit texts", s.sc.retainTexts, keys, args...)
		if err != nil {
			return n, err
		}
		k, _ := v.(int64)
		n += int(k)
	}
	return n, nil
}
