package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// EnqueueEvents implements store.Outbox: per key, one intent, one script on the
// key's tag, one index update.
func (s *Store) EnqueueEvents(ctx context.Context, events ...store.Event) error {
	var order []string
	byKey := map[string][]store.Event{}
	for _, e := range events {
		e = s.fillEvent(e)
		if _, ok := byKey[e.Key]; !ok {
			order = append(order, e.Key)
		}
		byKey[e.Key] = append(byKey[e.Key], e)
	}
	for _, key := range order {
		elems, err := s.encodeEvents(byKey[key])
		if err != nil {
			return err
		}
		// The call's token key (luaEnqueue), on the queue's tag, as
		// EnqueueEventsOnce's.
		qk := s.k.queueKeys(key)
		keys := append([]string{qk[0], qk[1], s.k.queueToken(key, rand.Text())}, qk[2:]...)
		in, v, err := s.fenced(ctx, key, func(in writeIntent) (any, error) {
			args := append(append([]any{len(elems)}, elems...), ms(expiryGrace), queueHold(0), in.fence())
			return s.run(ctx, "enqueue events", s.sc.enqueue, keys, args...)
		})
		if err != nil {
			return err
		}
		r := replySlice(v)
		s.syncIndexOrWarn(ctx, nil, key, strconv.FormatInt(replyInt(r, 0), 10), replyInt(r, 1), noteOf(key, in.tok))
	}
	return nil
}

// EnqueueEventsOnce implements store.Outbox: one intent, one script on the
// key's tag that looks for the ids and appends, one index update.
func (s *Store) EnqueueEventsOnce(ctx context.Context, events []store.Event, with ...store.Event) ([]string, error) {
	evs := make([]store.Event, 0, len(events)+len(with))
	for _, e := range append(slices.Clone(events), with...) {
		evs = append(evs, s.fillEvent(e))
	}
	if len(evs) == 0 {
		return nil, nil
	}
	if err := store.OneKey(evs); err != nil {
		return nil, err
	}
	elems, err := s.encodeEvents(evs)
	if err != nil {
		return nil, err
	}
	key := evs[0].Key
	args := []any{len(events)}
	for _, e := range evs[:len(events)] {
		args = append(args, e.ID)
	}
	args = append(append(args, len(elems)), elems...)
	args = append(args, ms(expiryGrace), queueHold(0))
	// The call's token key (luaEnqueueOnceAll), on the queue's tag: one
	// token for the call, whatever intent a stale refusal retries it under.
	qk := s.k.queueKeys(key)
	keys := append([]string{qk[0], qk[1], s.k.queueToken(key, rand.Text())}, qk[2:]...)
	in, v, err := s.fenced(ctx, key, func(in writeIntent) (any, error) {
		return s.run(ctx, "enqueue events once", s.sc.enqueueOnceAll, keys, append(slices.Clip(args), in.fence())...)
	})
	if err != nil {
		return nil, err
	}
	r := replySlice(v)
	s.syncIndexOrWarn(ctx, nil, key, strconv.FormatInt(replyInt(r, 0), 10), replyInt(r, 1), noteOf(key, in.tok))
	var pending []string
	for i := 2; i < len(r); i++ {
		if id, ok := replyStr(r, i); ok {
			pending = append(pending, id)
		}
	}
	return pending, nil
}

// evalEach runs sc once per tag in one pipeline (spread over the cluster's
// nodes), loading it first where Redis lost it. A script that writes
// (write set: a claim's lease) has its error read as run's (writeErr),
// the load's too: a re-send Redis refused, or refused to load the script
// for, may follow a try that applied, and an ACL refusing a command
// inside the script keeps what it wrote before. A read's is mapErr's.
func (s *Store) evalEach(ctx context.Context, op string, sc *goredis.Script, write bool, n int, keys func(i int) []string, args func(i int) []any) ([]*goredis.Cmd, error) {
	classify := mapErr
	if write {
		classify = writeErr
	}
	if err := s.refused(op); err != nil {
		return nil, err
	}
	cmds := make([]*goredis.Cmd, n)
	run := func() error {
		_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := range n {
				cmds[i] = sc.EvalSha(ctx, p, keys(i), args(i)...)
			}
			return nil
		})
		return err
	}
	err := run()
	if goredis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			return nil, classify(op, err)
		}
		err = run()
	}
	if err != nil {
		return nil, classify(op, err)
	}
	return cmds, nil
}

// ClaimEvents implements store.Outbox. {idx}:ob names the keys whose head is
// due, but not the heads' kinds; each head is checked and leased by one
// script on its own tag, so of two claimers racing for a head exactly one
// leases it (the claim is atomic per event, which is all that keys on
// different slots allow). The index then follows the leased heads' new due
// times, and entries that disagreed with their tag are corrected on the way.
// Heads of other kinds do not end the search: the index is read a window at
// a time (dueScan) until limit events are leased or no due key is left.
func (s *Store) ClaimEvents(ctx context.Context, kind string, now time.Time, lease time.Duration, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	nowMs := s.serverMs(ctx, now)
	until := now.Add(lease)
	untilMs := s.toServerMs(until)
	tok := newID("lease_")
	scan := s.scanDue(nowMs, max(limit, scanWindow))
	var out []store.Event
	// claim leases what it can of the first keys, as many as are still
	// wanted (never more), and returns the keys after them.
	claim := func(keys []string) ([]string, error) {
		chunk := keys[:min(len(keys), limit-len(out))]
		cmds, err := s.evalEach(ctx, "claim events", s.sc.claimEvent, true, len(chunk),
			func(i int) []string { return s.k.queueKeys(chunk[i]) },
			func(int) []any {
				return []any{kind, nowMs, untilMs, until.Format(time.RFC3339Nano), tok, queueHold(lease)}
			})
		if err != nil {
			return nil, err // what was leased comes due again when its lease runs out
		}
		moved := 0
		for i, cmd := range cmds {
			r := replySlice(cmd.Val())
			claimed, next := replyInt(r, 0) == 1, replyInt(r, 2)
			if claimed {
				raw, _ := replyStr(r, 3)
				var e obElem
				if err := json.Unmarshal([]byte(raw), &e); err != nil {
					return nil, fmt.Errorf("redis: decode event: %w", err)
				}
				e.Ev.Key = chunk[i] // its queue's (readHeads)
				out = append(out, e.Ev)
			}
			if claimed || next == noHead || next > nowMs {
				s.syncIndexOrWarn(ctx, nil, chunk[i], strconv.FormatInt(replyInt(r, 1), 10), next)
			}
			if next == noHead || next > nowMs {
				moved++
			}
		}
		scan.moved(moved)
		return keys[len(chunk):], nil
	}
	for len(out) < limit {
		keys, err := scan.next(ctx)
		if err != nil {
			return nil, mapErr("claim events", err)
		}
		if len(keys) == 0 {
			break
		}
		// The window's first keys are claimed at once: usually the due
		// heads are this kind's. When that leaves some wanted, the rest of
		// the window is read first (one pipeline) and only the heads of
		// this kind are claimed, so a window of other kinds costs a round
		// trip or two, not one per key.
		if keys, err = claim(keys); err != nil {
			return nil, err
		}
		if len(keys) == 0 || len(out) == limit {
			continue
		}
		keys, moved, err := s.dueKeysOf(ctx, keys, nowMs, kind)
		if err != nil {
			return nil, err
		}
		scan.moved(moved)
		for len(keys) > 0 && len(out) < limit {
			if keys, err = claim(keys); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// dueKeysOf is dueSized for a reader that needs the keys alone (ClaimEvents,
// which claims them next): it reads each head's kind and due time, not the
// head, which for an order's audit event carries its turn's conversation
// (7 MB queued for one of 4 MB): read whole, a window of them was one
// reply of hundreds of MB that the read timeout cut, claim after claim.
func (s *Store) dueKeysOf(ctx context.Context, keys []string, nowMs int64, kind string) ([]string, int, error) {
	cmds, err := s.evalEach(ctx, "read outbox", s.sc.headKind, false, len(keys),
		func(i int) []string { rk, ob, obv := s.k.orderTag(keys[i]); return []string{rk, ob, obv} },
		func(int) []any { return nil })
	if err != nil {
		return nil, 0, err
	}
	var out []string
	moved := 0
	for i, cmd := range cmds {
		r := replySlice(cmd.Val())
		obv, next := replyInt(r, 0), replyInt(r, 1)
		k, _ := replyStr(r, 2)
		if next != noHead && next <= nowMs {
			if k == kind {
				out = append(out, keys[i])
			}
			continue
		}
		s.syncIndexOrWarn(ctx, nil, keys[i], strconv.FormatInt(obv, 10), next)
		moved++
	}
	return out, moved, nil
}

// dueSized reads the heads of keys (one pipeline) and returns those due at
// nowMs (the server's clock, as next_ms is) and of one of kinds (any kind
// when none), healing the index entries of the keys whose head is not due,
// and how many entries it so moved out of the due range. It reads no head
// longer than headMax bytes (0: any length), and also tells the length of
// the longest head it met, read or not (of other kinds, not due yet), and
// how many of keys it took: a due head it did not read, and the keys after
// it, are not taken, for the caller to read again in a smaller pipeline.
func (s *Store) dueSized(ctx context.Context, keys []string, nowMs int64, headMax int, kinds ...string) ([]headState, int, int, int, error) {
	heads, err := s.readHeads(ctx, keys, headMax)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	out := heads[:0]
	moved, largest := 0, 0
	for i, h := range heads {
		largest = max(largest, h.size)
		if h.head == nil && h.size > 0 && h.next != noHead && h.next <= nowMs {
			return out, moved, largest, i, nil // due, and not read
		}
		if h.head != nil && h.head.NextMs <= nowMs {
			if store.OfKind(h.head.Ev, kinds) {
				out = append(out, h)
			}
			continue
		}
		s.syncIndexOrWarn(ctx, nil, h.key, strconv.FormatInt(h.obv, 10), h.next)
		moved++
	}
	return out, moved, largest, len(heads), nil
}

// statsPasses bounds OutboxStats' reads of the index: a move ends in a
// queue the index names by the next read, so one pass after the first
// finds it unless the outbox keeps moving (or an index entry stays behind
// its empty queue after a failed sync: read again on each pass until a
// read of due events heals it or the next write on that queue).
const statsPasses = 3

// scanWindow is how many due index entries a read that skips heads of other
// kinds (ClaimEvents, DueEvents of kinds) asks {idx}:ob for at once.
const scanWindow = 500

// dueScan pages through the keys {idx}:ob lists as due at a time, longest
// due first, a window at a time, for a reader that skips heads (of other
// kinds) and so must be able to look past any number of them. The reader
// reports the entries it moved out of the due range (leased, healed): they
// no longer take a place, so the next window starts right after the last
// one. No key is handed out twice by one scan. The index changes meanwhile
// (other replicas ack, lease, enqueue), so a scan is a best effort: an entry
// that moves back past the scan's place is found by the next read, not this
// one.
type dueScan struct {
	s      *Store
	max    string
	window int64
	offset int64
	end    bool
	seen   map[string]bool
}

func (s *Store) scanDue(nowMs int64, window int) *dueScan {
	return &dueScan{s: s, max: strconv.FormatInt(nowMs, 10), window: int64(window), seen: map[string]bool{}}
}

// next returns the keys of the next window not handed out before, or none
// when no due entry is left. The error is go-redis's (mapErr it).
func (d *dueScan) next(ctx context.Context) ([]string, error) {
	for !d.end {
		keys, err := d.s.c.ZRangeByScore(ctx, d.s.k.idx("ob"), &goredis.ZRangeBy{
			Min: "-inf", Max: d.max, Offset: d.offset, Count: d.window,
		}).Result()
		if err != nil {
			return nil, err
		}
		d.end = int64(len(keys)) < d.window
		d.offset += int64(len(keys))
		fresh := keys[:0]
		for _, k := range keys {
			if !d.seen[k] {
				d.seen[k] = true
				fresh = append(fresh, k)
			}
		}
		if len(fresh) > 0 {
			return fresh, nil
		}
	}
	return nil, nil
}

// moved tells the scan that n of the keys it handed out are no longer in
// the due range.
func (d *dueScan) moved(n int) { d.offset = max(d.offset-int64(n), 0) }

// headState is one key's outbox as read in one step.
type headState struct {
	key  string
	obv  int64
	next int64
	head *obElem
	n    int64 // events queued
	size int   // the head's length as queued; it is not read (head nil) when over readHeads' headMax
}

// readHeads reads the outbox state of keys: one pipeline (spread over the
// cluster's nodes). A head longer than headMax bytes (when above 0) is
// not read, only its length (luaReadTag).
func (s *Store) readHeads(ctx context.Context, keys []string, headMax int) ([]headState, error) {
	cmds, err := s.evalEach(ctx, "read outbox", s.sc.readTag, false, len(keys),
		func(i int) []string { rk, ob, obv := s.k.orderTag(keys[i]); return []string{rk, ob, obv} },
		func(int) []any {
			if headMax > 0 {
				return []any{headMax}
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	out := make([]headState, len(keys))
	for i, cmd := range cmds {
		r := replySlice(cmd.Val())
		hs := headState{key: keys[i], obv: replyInt(r, 2), next: replyInt(r, 3), n: replyInt(r, 5), size: int(replyInt(r, 6))}
		if raw, ok := replyStr(r, 4); ok {
			var e obElem
			if err := json.Unmarshal([]byte(raw), &e); err != nil {
				return nil, fmt.Errorf("redis: decode event: %w", err)
			}
			// The key of the queue it is in, which the JSON carries with
			// each byte that is not UTF-8 a U+FFFD: an event keyed by such
			// bytes (an audit erasure of a user an earlier version named
			// as the bot did) was handed out under a key no queue has, and
			// never acknowledged.
			e.Ev.Key = keys[i]
			hs.head = &e
		}
		out[i] = hs
	}
	return out, nil
}

// DueEvents implements store.Outbox. {idx}:ob scores each key with pending
// events by its head's due time, fresh heads (due at once) first and by
// their creation (luaObState), in milliseconds: of the heads of one
// millisecond, the index lists the first by key name first, so a read
// window that ends among them takes those, not the oldest. The heads are
// then read from their own tags.
// An index entry that disagrees with its tag (left by an interrupted step) is
// corrected on the way. The index names keys, not kinds: given kinds, the due
// range is read a window at a time (dueScan) until limit heads of kinds are
// found or none is left. When few are due (the common pass) that is one
// range read and one pipeline, as without kinds.
func (s *Store) DueEvents(ctx context.Context, now time.Time, limit int, kinds ...string) ([]store.Event, error) {
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	window := limit
	if len(kinds) > 0 {
		window = max(limit, scanWindow)
	}
	nowMs := s.serverMs(ctx, now)
	scan := s.scanDue(nowMs, window)
	var out []store.Event
	size, largest, bound := 0, 0, store.DueBytes() // of the payloads read
	for len(out) < limit && size < bound {
		keys, err := scan.next(ctx)
		if err != nil {
			return nil, mapErr("due events", err)
		}
		if len(keys) == 0 {
			break
		}
		// The heads are read firstHeads at a time until one of them shows
		// the heads' size, then as many at once as fit pipelineBytes
		// (and what is left of store.DueBytes) at the largest seen: a
		// window of small events is still one pipeline, and one of long
		// conversations no reply of hundreds of megabytes that no read
		// timeout lets through. The heads met so far need not be the
		// largest (a few webhooks of hundreds of bytes before audit events
		// of megabytes), so no head of a pipeline of several is read
		// longer than its share of those bytes: one longer is read again,
		// with the heads after it, in a pipeline sized by its length.
		for len(keys) > 0 && size < bound {
			n := min(len(keys), firstHeads)
			if largest > 0 {
				n = min(len(keys), max(1, min(pipelineBytes, bound-size)/largest))
			}
			headMax := 0 // one head alone is read whatever its length
			if n > 1 {
				headMax = max(1, min(pipelineBytes, bound-size)/n)
			}
			// Every head read tells the heads' size, returned or not: the
			// heads of other kinds ahead of the wanted ones (a relay's
			// deliveries behind) were otherwise read two at a time.
			due, moved, read, taken, err := s.dueSized(ctx, keys[:n], nowMs, headMax, kinds...)
			if err != nil {
				return nil, err
			}
			keys = keys[taken:]
			scan.moved(moved)
			largest = max(largest, read, 1)
			for _, h := range due {
				if size >= bound {
					break // the rest is read again by the next call
				}
				out = append(out, h.head.Ev)
				size += len(h.head.Ev.Payload)
			}
		}
	}
	sortEvents(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// firstHeads is how many heads DueEvents reads before it knows their
// size, and pipelineBytes the bytes of heads (as queued) it reads in one
// pipeline once it does: an audit event of a 4 MB conversation is 7 MB as
// queued (its text base64 twice), and a reply of a window of them
// outlasted the 3 s read timeout.
const (
	firstHeads    = 2
	pipelineBytes = 8 << 20
)

func sortEvents(evs []store.Event) {
	sort.SliceStable(evs, func(i, j int) bool {
		if !evs[i].NextAt.Equal(evs[j].NextAt) {
			return evs[i].NextAt.Before(evs[j].NextAt)
		}
		return evs[i].CreatedAt.Before(evs[j].CreatedAt)
	})
}

// AckEvent implements store.Outbox.
func (s *Store) AckEvent(ctx context.Context, key, id string) error {
	if key == "" {
		key = store.DefaultEventKey
	}
	v, err := s.run(ctx, "ack event", s.sc.ack, s.k.queueKeys(key), id, queueHold(0))
	if err != nil {
		return err
	}
	s.syncAcked(ctx, key, replySlice(v))
	return nil
}

// syncAcked brings {idx}:ob up to the outbox state r an acknowledgement's
// script answered ({1, obv, next} removed; {0, obv, next} not there):
// also when the event was not there, for a run re-sent after a lost reply
// finds it taken off by its first run, whose index update nobody made.
// The update is version-guarded, so a miss changes nothing that is
// current.
func (s *Store) syncAcked(ctx context.Context, key string, r []any) {
	if len(r) < 3 {
		return // no outbox state to sync from
	}
	s.syncIndexOrWarn(ctx, nil, key, strconv.FormatInt(replyInt(r, 1), 10), replyInt(r, 2))
}

// AckEventAt implements store.Outbox: one script looks for the id,
// compares the event's created_at (RFC 3339 with nanoseconds, as
// encoding/json wrote it) and removes it.
func (s *Store) AckEventAt(ctx context.Context, key, id string, createdAt time.Time) error {
	if key == "" {
		key = store.DefaultEventKey
	}
	v, err := s.run(ctx, "ack event", s.sc.ackAt, s.k.queueKeys(key), id, createdAt.Format(time.RFC3339Nano), queueHold(0))
	if err != nil {
		return err
	}
	s.syncAcked(ctx, key, replySlice(v))
	return nil
}

// RetryEvent implements store.Outbox.
func (s *Store) RetryEvent(ctx context.Context, key, id string, nextAt time.Time, attempts int, lastErr string) error {
	return s.retry(ctx, key, id, "", nextAt, attempts, lastErr)
}

// RetryClaimedEvent implements store.Outbox: luaRetry compares the
// event's next_at (RFC 3339 with nanoseconds, as ClaimEvents wrote it)
// with leasedUntil before it writes.
func (s *Store) RetryClaimedEvent(ctx context.Context, key, id string, leasedUntil, nextAt time.Time, attempts int, lastErr string) error {
	return s.retry(ctx, key, id, leasedUntil.Format(time.RFC3339Nano), nextAt, attempts, lastErr)
}

// retry runs luaRetry, conditional on the event's next_at being leased
// unless that is empty.
func (s *Store) retry(ctx context.Context, key, id, leased string, nextAt time.Time, attempts int, lastErr string) error {
	if key == "" {
		key = store.DefaultEventKey
	}
	failed := s.now()
	next := int64(0) // due at once
	if !nextAt.IsZero() {
		next = s.serverMs(ctx, nextAt)
	}
	v, err := s.run(ctx, "retry event", s.sc.retry, s.k.queueKeys(key),
		id, next, attempts, lastErr, nextAt.Format(time.RFC3339Nano), failed.Format(time.RFC3339Nano),
		queueHold(nextAt.Sub(failed)), leased)
	if err != nil {
		return err
	}
	r := replySlice(v)
	switch replyInt(r, 0) {
	case 1:
	case 2:
		return fmt.Errorf("event %s: no longer leased until %s: %w", id, leased, store.ErrConflict)
	default:
		return fmt.Errorf("event %s: %w", id, store.ErrNotFound)
	}
	s.syncIndexOrWarn(ctx, nil, key, strconv.FormatInt(replyInt(r, 1), 10), replyInt(r, 2))
	return nil
}

// RescheduleEvent implements store.Outbox: one script looks for the id,
// compares the event's next_at (RFC 3339 with nanoseconds, as RetryEvent
// and ClaimEvents wrote it) and writes the new one.
func (s *Store) RescheduleEvent(ctx context.Context, key, id string, from, to time.Time) (bool, error) {
	if key == "" {
		key = store.DefaultEventKey
	}
	next := int64(0) // due at once
	if !to.IsZero() {
		next = s.serverMs(ctx, to)
	}
	v, err := s.run(ctx, "reschedule event", s.sc.reschedule, s.k.queueKeys(key),
		id, from.Format(time.RFC3339Nano), next, to.Format(time.RFC3339Nano), queueHold(to.Sub(s.now())))
	if err != nil {
		return false, err
	}
	r := replySlice(v)
	if replyInt(r, 0) != 1 {
		return false, nil
	}
	s.syncIndexOrWarn(ctx, nil, key, strconv.FormatInt(replyInt(r, 1), 10), replyInt(r, 2))
	return true, nil
}

// OutboxHeads implements store.Outbox: the keys are listed from {idx}:ob,
// those with one of prefixes kept, and their heads read from their tags.
func (s *Store) OutboxHeads(ctx context.Context, prefixes ...string) ([]store.Event, error) {
	keys, err := s.c.ZRange(ctx, s.k.idx("ob"), 0, -1).Result()
	if err != nil {
		return nil, mapErr("outbox heads", err)
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return !store.HasAnyPrefix(k, prefixes) })
	if len(keys) == 0 {
		return nil, nil
	}
	heads, err := s.readHeads(ctx, keys, 0)
	if err != nil {
		return nil, err
	}
	out := make([]store.Event, 0, len(heads))
	for _, h := range heads {
		if h.head != nil {
			out = append(out, h.head.Ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// OutboxHeadsApart implements store.Outbox: the names in {idx}:ob are read,
// and the heads of the keys apart are not: whether their queues hold any
// event is (EXISTS). The index may name a queue emptied by an
// acknowledgement whose sync failed (statsPasses), and a key apart, a dead
// letter, is never due and never written again, so nothing else heals its
// entry: counted, the relay's dead-letter gauge kept a letter resent long
// ago that the admin view (OutboxHeads) no longer showed. Such an entry is
// healed here, as dueSized heals one.
func (s *Store) OutboxHeadsApart(ctx context.Context, apart ...string) ([]store.Event, int, error) {
	keys, err := s.c.ZRange(ctx, s.k.idx("ob"), 0, -1).Result()
	if err != nil {
		return nil, 0, mapErr("outbox heads", err)
	}
	var aside []string
	keys = slices.DeleteFunc(keys, func(k string) bool {
		if store.HasAnyPrefix(k, apart) {
			aside = append(aside, k)
			return true
		}
		return false
	})
	n, err := s.countQueued(ctx, aside)
	if err != nil {
		return nil, 0, err
	}
	if len(keys) == 0 {
		return nil, n, nil
	}
	heads, err := s.readHeads(ctx, keys, 0)
	if err != nil {
		return nil, 0, err
	}
	out := make([]store.Event, 0, len(heads))
	for _, h := range heads {
		if h.head != nil {
			out = append(out, h.head.Ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, n, nil
}

// countQueued counts the keys whose queues hold an event, by EXISTS (in
// pipelines of scanWindow), not by reading their heads; the entries of
// those found empty are read (readHeads) and healed.
func (s *Store) countQueued(ctx context.Context, keys []string) (int, error) {
	n := 0
	var empty []string
	for len(keys) > 0 {
		batch := keys[:min(len(keys), scanWindow)]
		keys = keys[len(batch):]
		cmds, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, k := range batch {
				_, ob, _ := s.k.orderTag(k)
				p.Exists(ctx, ob)
			}
			return nil
		})
		if err != nil {
			return 0, mapErr("outbox heads", err)
		}
		for i, c := range cmds {
			if c.(*goredis.IntCmd).Val() > 0 {
				n++
			} else {
				empty = append(empty, batch[i])
			}
		}
	}
	if len(empty) == 0 {
		return n, nil
	}
	heads, err := s.readHeads(ctx, empty, 0)
	if err != nil {
		return 0, err
	}
	for _, h := range heads {
		if h.head != nil {
			n++ // queued since
			continue
		}
		s.syncIndexOrWarn(ctx, nil, h.key, strconv.FormatInt(h.obv, 10), h.next)
	}
	return n, nil
}

// OutboxStats implements store.Outbox: the keys in {idx}:ob, their heads and
// queue lengths (each key's read in one step), and then the keys the index
// gained while they were read, until it gains none (statsPasses at most).
// An event moved meanwhile from a key read to one the index did not name
// yet (an order's intake queue to its delivery queue: copied there, then
// acknowledged where it was) otherwise counted nowhere: Pending read 0
// while it was being delivered. Counted in both queues instead, for as
// long as the move takes, it is the safe side for a reader waiting for
// the outbox to drain. A key read empty is read again while the index
// names it: the index names only queues that hold events, so its entry is
// one not yet told of a change, such as the acknowledgement of a delivery
// queue's last event just before an event moves there.
func (s *Store) OutboxStats(ctx context.Context) (store.OutboxStats, error) {
	st, _, err := s.OutboxStatsApart(ctx)
	return st, err
}

// OutboxStatsApart implements store.Outbox: OutboxStats of the keys that
// start with none of apart; the keys apart are counted as
// OutboxHeadsApart counts them (EXISTS, countQueued), once, from the
// index as its first pass reads it.
func (s *Store) OutboxStatsApart(ctx context.Context, apart ...string) (store.OutboxStats, int, error) {
	var st store.OutboxStats
	var heads []headState
	seen := map[string]bool{}
	keysApart := 0
	for pass := range statsPasses {
		keys, err := s.c.ZRange(ctx, s.k.idx("ob"), 0, -1).Result()
		if err != nil {
			return st, 0, mapErr("outbox stats", err)
		}
		var aside []string
		keys = slices.DeleteFunc(keys, func(k string) bool {
			if len(apart) > 0 && store.HasAnyPrefix(k, apart) {
				aside = append(aside, k)
				return true
			}
			return seen[k]
		})
		if pass == 0 && len(aside) > 0 {
			if keysApart, err = s.countQueued(ctx, aside); err != nil {
				return st, 0, err
			}
		}
		if len(keys) == 0 {
			break
		}
		more, err := s.readHeads(ctx, keys, 0)
		if err != nil {
			return st, 0, err
		}
		for _, h := range more {
			if h.head != nil {
				seen[h.key] = true
				heads = append(heads, h)
			}
		}
	}
	for _, h := range heads {
		if h.head == nil {
			continue
		}
		e := h.head.Ev
		st.Pending += int(h.n)
		st.Keys++
		if st.Oldest.IsZero() || e.CreatedAt.Before(st.Oldest) {
			st.Oldest = e.CreatedAt
		}
		if e.LastError != "" && (st.LastErrorAt.IsZero() || e.FailedAt.After(st.LastErrorAt)) {
			st.LastError, st.LastErrorAt = e.LastError, e.FailedAt
		}
		if len(st.Heads) < store.MaxListLimit {
			st.Heads = append(st.Heads, e)
		}
	}
	sort.SliceStable(st.Heads, func(i, j int) bool { return st.Heads[i].CreatedAt.Before(st.Heads[j].CreatedAt) })
	return st, keysApart, nil
}
