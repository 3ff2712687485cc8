package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
)

// orderEvents keys events passed with an order write by that order.
func (d *DB) orderEvents(orderNo string, events []store.Event) ([]store.Event, error) {
	return d.keyedEvents(events, orderNo, "order "+orderNo)
}

// keyedEvents keys events written with a record by its key
// (store.KeyEvents) and fills them in.
func (d *DB) keyedEvents(events []store.Event, key, what string) ([]store.Event, error) {
	evs, err := store.KeyEvents(events, key, what)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	for i := range evs {
		evs[i] = d.fillEvent(evs[i])
	}
	return evs, nil
}

func (d *DB) fillEvent(e store.Event) store.Event {
	if e.Key == "" {
		e.Key = store.DefaultEventKey
	}
	if e.ID == "" {
		e.ID = newID("evt_")
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = d.now()
	}
	return e
}

func appendEvents(tx *bolt.Tx, events []store.Event) error {
	b := tx.Bucket(bOutbox)
	keys := map[string]bool{}
	for _, e := range events {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		v, err := marshal(e)
		if err != nil {
			return err
		}
		if err := b.Put(join(enc(e.Key), u64(seq)), v); err != nil {
			return err
		}
		keys[e.Key] = true
	}
	for key := range keys {
		if err := syncDue(tx, enc(key)); err != nil {
			return err
		}
	}
	return nil
}

// The due index. Claims come every poll interval (and on every Wake,
// after each order transition), each one a write transaction, and bbolt
// has one writer: every order write waits behind a claim. A claim used to
// read the head of every key to find the due ones, and the outbox holds
// heads that are not due for a long time (webhooks backing off during a
// merchant outage; dead letters, kept until an operator resends their
// order, never): with ten thousand of them each claim held the writer for
// 70-220 ms and order writes (the notify path's included) waited as long.
// Now outbox_due holds one entry per key, for its head, keyed by kind,
// then due time, then creation time, then key: a claim reads the entries
// of its kind that are due, in the order they are handed out, and no
// other; a write's cost no longer grows with the backlog, only with what
// it claims. outbox_due_of finds a key's entry when its head changes.
//
// Every write that changes a key's head (append, ack, retry, claim) calls
// syncDue in the same transaction. A file written by a version without
// the index, or opened by one since (a downgrade, then an upgrade), may
// lack entries or hold stale ones, so indexDue checks the index against
// the outbox at every Open (one pass, as every claim used to make) and
// rebuilds it if they disagree. Readers re-check the head an entry names.

// The due index's buckets.
var (
	bOutboxDue   = []byte("outbox_due")    // enc(kind) stamp(next_at) stamp(created_at) enc(key) -> nil
	bOutboxDueOf = []byte("outbox_due_of") // enc(key) -> its outbox_due key
	// bOutboxLeases holds the events ClaimEvents leased and nobody settled
	// yet (AckEvent, RetryEvent): outbox key -> the event's NextAt before
	// its first lease (time.MarshalBinary). The file is one process's at a
	// time (its lock), so at Open every lease in it is a dead process's
	// (releaseLeases).
	bOutboxLeases = []byte("outbox_leases")
)

// releaseLeases makes the events leased by the process that held the file
// before, and never settled (it was killed mid-delivery), due again as
// they were before their lease: left leased, each one, and every event of
// its key behind it, waited out the lease (a webhook's 30 s) after a
// restart, though no process was handling it any more.
func releaseLeases(tx *bolt.Tx) error {
	leases, ob := tx.Bucket(bOutboxLeases), tx.Bucket(bOutbox)
	var keys [][]byte
	err := leases.ForEach(func(k, v []byte) error {
		keys = append(keys, bytes.Clone(k))
		var before time.Time
		var e store.Event
		raw := ob.Get(k)
		if raw == nil || before.UnmarshalBinary(v) != nil || unmarshal(raw, &e) != nil || !e.NextAt.After(before) {
			return nil // settled, or not leased past its due time
		}
		e.NextAt = before
		nv, err := marshal(&e)
		if err != nil {
			return err
		}
		if err := ob.Put(bytes.Clone(k), nv); err != nil {
			return err
		}
		return syncDue(tx, enc(e.Key))
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := leases.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// releaseUnrecordedLeases makes due again, at the first open of a file
// written by a version that kept no record of leases (no outbox_leases
// bucket), the events that version's process leased and never settled:
// stopped mid-delivery to upgrade in place (its SIGTERM kept the lease),
// order.paid reached the merchant a lease (30 s) after the upgraded
// process started. With no record, a lease is known only where it cannot
// be a retry: an event never attempted (RetryEvent counts every attempt)
// not due until after now, which paygate's own events, enqueued due at
// once, are only while leased. Its time before the lease is unknown; its
// creation is as early as it can have been.
func releaseUnrecordedLeases(tx *bolt.Tx, now time.Time) error {
	ob := tx.Bucket(bOutbox)
	type release struct {
		k []byte
		e store.Event
	}
	var rs []release
	err := ob.ForEach(func(k, v []byte) error {
		var e store.Event
		if unmarshal(v, &e) != nil || e.Attempts != 0 || !e.NextAt.After(now) {
			return nil
		}
		e.NextAt = e.CreatedAt
		rs = append(rs, release{bytes.Clone(k), e})
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range rs {
		v, err := marshal(&r.e)
		if err != nil {
			return err
		}
		if err := ob.Put(r.k, v); err != nil {
			return err
		}
		if err := syncDue(tx, enc(r.e.Key)); err != nil {
			return err
		}
	}
	return nil
}

// stampLen is the length of stamp's encoding.
const stampLen = 12

// stamp encodes t so that byte order is time order, for any time (the zero
// time of a fresh event, the year 9999 of a dead letter): Unix seconds
// with the sign bit flipped, then nanoseconds.
func stamp(t time.Time) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, stampLen), uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// dueEntry is the outbox_due key of e, the head of the key encoded as
// encKey.
func dueEntry(e store.Event, encKey []byte) []byte {
	return join(enc(e.Kind), stamp(e.NextAt), stamp(e.CreatedAt), encKey)
}

// keyHead returns the bucket key and event of the first pending event of
// the key encoded as encKey; k is nil when it has none, or when it does not
// decode (see dueIndexAgrees).
func keyHead(tx *bolt.Tx, encKey []byte) (k []byte, e store.Event) {
	k, v := tx.Bucket(bOutbox).Cursor().Seek(encKey)
	if k == nil || !bytes.HasPrefix(k, encKey) || len(k) != len(encKey)+8 || unmarshal(v, &e) != nil {
		return nil, store.Event{}
	}
	// The key of the queue it is in, which the value's JSON carries with
	// each byte that is not UTF-8 a U+FFFD: an event keyed by such bytes
	// (an audit erasure of a user an earlier version named as the bot
	// did) was handed out under a key no queue has, and never acknowledged.
	if n, w := binary.Uvarint(encKey); w > 0 && uint64(len(encKey)-w) == n {
		e.Key = string(encKey[w:])
	}
	return bytes.Clone(k), e
}

// syncDue makes the due index agree with the head of the key encoded as
// encKey (encKey must not be bbolt's memory: it is stored).
func syncDue(tx *bolt.Tx, encKey []byte) error {
	var want []byte
	if k, e := keyHead(tx, encKey); k != nil {
		want = dueEntry(e, encKey)
	}
	due, of := tx.Bucket(bOutboxDue), tx.Bucket(bOutboxDueOf)
	if old := of.Get(encKey); old != nil {
		if bytes.Equal(old, want) {
			return nil
		}
		if err := due.Delete(bytes.Clone(old)); err != nil {
			return err
		}
	}
	if want == nil {
		return of.Delete(encKey)
	}
	if err := due.Put(want, nil); err != nil {
		return err
	}
	return of.Put(encKey, want)
}

// indexDue checks the due index against the outbox's heads and rebuilds it
// when they disagree (see the due index above).
func indexDue(tx *bolt.Tx) error {
	want, agrees := dueIndexAgrees(tx)
	if agrees {
		return nil
	}
	for _, name := range [][]byte{bOutboxDue, bOutboxDueOf} {
		if err := tx.DeleteBucket(name); err != nil {
			return fmt.Errorf("rebuild the outbox's due index: %w", err)
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("rebuild the outbox's due index: %w", err)
		}
	}
	due, of := tx.Bucket(bOutboxDue), tx.Bucket(bOutboxDueOf)
	for encKey, entry := range want {
		if err := due.Put(entry, nil); err != nil {
			return fmt.Errorf("rebuild the outbox's due index: %w", err)
		}
		if err := of.Put([]byte(encKey), entry); err != nil {
			return fmt.Errorf("rebuild the outbox's due index: %w", err)
		}
	}
	return nil
}

// dueIndexAgrees returns the due index the outbox's heads call for (enc(key)
// to entry), and whether the index is exactly that. A head that does not
// decode gets no entry: it is never handed out, as it could not be before,
// when every claim failed on it (holding back every other key too), and
// OutboxStats, which still reads every head, reports it.
func dueIndexAgrees(tx *bolt.Tx) (want map[string][]byte, agrees bool) {
	want = map[string][]byte{}
	c := tx.Bucket(bOutbox).Cursor()
	for k, v := c.First(); k != nil; {
		if len(k) <= 8 {
			k, v = c.Next() // not a key appendEvents writes
			continue
		}
		encKey := bytes.Clone(k[:len(k)-8])
		var e store.Event
		if unmarshal(v, &e) == nil {
			want[string(encKey)] = dueEntry(e, encKey)
		}
		end := prefixEnd(encKey)
		if end == nil {
			break
		}
		k, v = c.Seek(end)
	}
	entries := make(map[string]bool, len(want))
	for _, entry := range want {
		entries[string(entry)] = true
	}
	agrees = true
	n, m := 0, 0
	_ = tx.Bucket(bOutboxDueOf).ForEach(func(k, v []byte) error {
		n++
		agrees = agrees && bytes.Equal(want[string(k)], v)
		return nil
	})
	_ = tx.Bucket(bOutboxDue).ForEach(func(k, _ []byte) error {
		m++
		agrees = agrees && entries[string(k)]
		return nil
	})
	return want, agrees && n == len(want) && m == len(want)
}

// dueKeys returns the keys (encoded) whose head is of kind and due at now,
// at most limit, in the order they are handed out: the longest due first,
// then the oldest. It reads the due index only, and of it only kind's
// entries due by now.
func dueKeys(tx *bolt.Tx, kind string, now time.Time, limit int) [][]byte {
	kp, at := enc(kind), stamp(now)
	var out [][]byte
	c := tx.Bucket(bOutboxDue).Cursor()
	for k, _ := c.Seek(kp); k != nil && bytes.HasPrefix(k, kp) && len(out) < limit; k, _ = c.Next() {
		rest := k[len(kp):]
		if len(rest) <= 2*stampLen {
			continue // not an entry syncDue writes
		}
		if bytes.Compare(rest[:stampLen], at) > 0 {
			break
		}
		out = append(out, bytes.Clone(rest))
	}
	return out
}

// indexedKinds lists the kinds the due index has entries of: one seek per
// kind.
func indexedKinds(tx *bolt.Tx) []string {
	var kinds []string
	c := tx.Bucket(bOutboxDue).Cursor()
	for k, _ := c.First(); k != nil; {
		n, w := binary.Uvarint(k)
		if w <= 0 || uint64(len(k)-w) < n {
			break
		}
		kp := k[:w+int(n)]
		kinds = append(kinds, string(k[w:w+int(n)]))
		end := prefixEnd(kp)
		if end == nil {
			break
		}
		k, _ = c.Seek(end)
	}
	return kinds
}

// EnqueueEvents implements store.Outbox.
func (d *DB) EnqueueEvents(ctx context.Context, events ...store.Event) error {
	evs := make([]store.Event, len(events))
	for i, e := range events {
		evs[i] = d.fillEvent(e)
	}
	return d.update(ctx, func(tx *bolt.Tx) error { return appendEvents(tx, evs) })
}

// EnqueueEventsOnce implements store.Outbox: the look-ups and the append
// are one transaction.
func (d *DB) EnqueueEventsOnce(ctx context.Context, events []store.Event, with ...store.Event) ([]string, error) {
	evs := make([]store.Event, 0, len(events)+len(with))
	for _, e := range append(slices.Clone(events), with...) {
		evs = append(evs, d.fillEvent(e))
	}
	if err := store.OneKey(evs); err != nil {
		return nil, err
	}
	var pending []string
	err := d.update(ctx, func(tx *bolt.Tx) error {
		pending = nil // a retried transaction starts over
		for _, e := range evs[:len(events)] {
			k, _, err := findEvent(tx, e.Key, e.ID)
			if err != nil {
				return err
			}
			if k != nil {
				pending = append(pending, e.ID)
			}
		}
		if len(pending) > 0 || len(evs) == 0 {
			return nil
		}
		return appendEvents(tx, evs)
	})
	if err != nil {
		return nil, err
	}
	return pending, nil
}

// heads calls fn with the first pending event of every key, or of every key
// skip (when not nil) does not rule out by its bytes before the event is
// decoded: OutboxHeads of one order's key ran once per webhook the relay
// gave up, and decoding every other queue's head each time made a merchant
// outage of a thousand orders cost a million JSON decodes.
func heads(tx *bolt.Tx, skip func(key []byte) bool, fn func(k []byte, e store.Event, pending int) error) error {
	c := tx.Bucket(bOutbox).Cursor()
	k, v := c.First()
	for k != nil {
		prefix := k[:len(k)-8]
		if skip != nil {
			if n, w := binary.Uvarint(prefix); w > 0 && uint64(len(prefix)-w) == n && skip(prefix[w:]) {
				for ; k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = c.Next() {
				}
				continue
			}
		}
		var e store.Event
		if err := unmarshal(v, &e); err != nil {
			return err
		}
		head := append([]byte(nil), k...)
		n := 0
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = c.Next() {
			n++
		}
		if err := fn(head, e, n); err != nil {
			return err
		}
	}
	return nil
}

// DueEvents implements store.Outbox: the due index names the due heads
// of each kind wanted (of every kind in it when none is), up to limit
// each; of them the limit handed out first are read, until their payloads
// reach store.DueBytes.
func (d *DB) DueEvents(ctx context.Context, now time.Time, limit int, kinds ...string) ([]store.Event, error) {
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	var out []store.Event
	err := d.view(ctx, func(tx *bolt.Tx) error {
		if len(kinds) == 0 {
			kinds = indexedKinds(tx)
		}
		var due [][]byte // stamp(next_at) stamp(created_at) enc(key)
		seen := map[string]bool{}
		for _, kind := range kinds {
			if !seen[kind] {
				seen[kind] = true
				due = append(due, dueKeys(tx, kind, now, limit)...)
			}
		}
		sort.Slice(due, func(i, j int) bool { return bytes.Compare(due[i], due[j]) < 0 })
		if len(due) > limit {
			due = due[:limit]
		}
		size, bound := 0, store.DueBytes() // of the payloads read
		for _, entry := range due {
			if size >= bound {
				break
			}
			if k, e := keyHead(tx, entry[2*stampLen:]); k != nil && !e.NextAt.After(now) && store.OfKind(e, kinds) {
				out = append(out, e)
				size += len(e.Payload)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ClaimEvents implements store.Outbox: the due heads are found and leased
// in one transaction, so concurrent claims (which bbolt serialises) never
// share an event. The transaction reads the due index's entries of kind
// that are due, at most limit, and their heads: however many heads are not
// due (backing off, leased, dead letters), it holds bbolt's one writer for
// as long as its claim takes, and no longer.
func (d *DB) ClaimEvents(ctx context.Context, kind string, now time.Time, lease time.Duration, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	var out []store.Event
	err := d.update(ctx, func(tx *bolt.Tx) error {
		until := now.Add(lease)
		b := tx.Bucket(bOutbox)
		for _, entry := range dueKeys(tx, kind, now, limit) {
			encKey := entry[2*stampLen:]
			if k, e := keyHead(tx, encKey); k != nil && e.Kind == kind && !e.NextAt.After(now) {
				if leases := tx.Bucket(bOutboxLeases); leases.Get(k) == nil {
					before, err := e.NextAt.MarshalBinary()
					if err != nil {
						return err
					}
					if err := leases.Put(k, before); err != nil {
						return err
					}
				}
				e.NextAt = until
				v, err := marshal(e)
				if err != nil {
					return err
				}
				if err := b.Put(k, v); err != nil {
					return err
				}
				out = append(out, e)
			}
			// The head's new due time, or an entry that disagreed with
			// its head corrected.
			if err := syncDue(tx, encKey); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// findEvent returns the bucket key of event id in key's queue, or nil.
func findEvent(tx *bolt.Tx, key, id string) ([]byte, *store.Event, error) {
	prefix := enc(key)
	c := tx.Bucket(bOutbox).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var e store.Event
		if err := unmarshal(v, &e); err != nil {
			return nil, nil, err
		}
		if e.ID == id {
			return append([]byte(nil), k...), &e, nil
		}
	}
	return nil, nil, nil
}

// AckEvent implements store.Outbox.
func (d *DB) AckEvent(ctx context.Context, key, id string) error {
	return d.ack(ctx, key, id, func(*store.Event) bool { return true })
}

// AckEventAt implements store.Outbox: the look-up, the comparison and the
// removal are one transaction.
func (d *DB) AckEventAt(ctx context.Context, key, id string, createdAt time.Time) error {
	return d.ack(ctx, key, id, func(e *store.Event) bool { return e.CreatedAt.Equal(createdAt) })
}

// ack removes event id from key's queue when it is there and match says so.
func (d *DB) ack(ctx context.Context, key, id string, match func(*store.Event) bool) error {
	if key == "" {
		key = store.DefaultEventKey
	}
	// Group committed: the audit worker acknowledges a batch's events at
	// once, as the webhook relay does its deliveries.
	return d.batched(ctx, func(tx *bolt.Tx) error {
		k, e, err := findEvent(tx, key, id)
		if err != nil || k == nil || !match(e) {
			return err
		}
		if err := tx.Bucket(bOutbox).Delete(k); err != nil {
			return err
		}
		if err := tx.Bucket(bOutboxLeases).Delete(k); err != nil {
			return err
		}
		return syncDue(tx, enc(key))
	})
}

// RetryEvent implements store.Outbox.
func (d *DB) RetryEvent(ctx context.Context, key, id string, nextAt time.Time, attempts int, lastErr string) error {
	return d.retry(ctx, key, id, nil, nextAt, attempts, lastErr)
}

// RetryClaimedEvent implements store.Outbox: the look-up, the comparison
// with leasedUntil and the write are one transaction.
func (d *DB) RetryClaimedEvent(ctx context.Context, key, id string, leasedUntil, nextAt time.Time, attempts int, lastErr string) error {
	return d.retry(ctx, key, id, &leasedUntil, nextAt, attempts, lastErr)
}

// retry writes the retry of event id of key, given leased only while its
// NextAt is that (ErrConflict otherwise, unless it is this very write).
func (d *DB) retry(ctx context.Context, key, id string, leased *time.Time, nextAt time.Time, attempts int, lastErr string) error {
	if key == "" {
		key = store.DefaultEventKey
	}
	return d.update(ctx, func(tx *bolt.Tx) error {
		k, e, err := findEvent(tx, key, id)
		if err != nil {
			return err
		}
		if k == nil {
			return fmt.Errorf("event %s: %w", id, store.ErrNotFound)
		}
		if leased != nil && !e.NextAt.Equal(*leased) {
			if e.NextAt.Equal(nextAt) && e.Attempts == attempts && e.LastError == lastErr {
				return nil // written already (as the Redis store answers its re-sent run)
			}
			return fmt.Errorf("event %s: no longer leased until %s: %w", id, leased.Format(time.RFC3339Nano), store.ErrConflict)
		}
		if attempts > e.Attempts {
			e.FailedAt = d.now() // a new failure; a lease given back keeps the count
		}
		e.NextAt, e.Attempts, e.LastError = nextAt, attempts, lastErr
		v, err := marshal(e)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bOutbox).Put(k, v); err != nil {
			return err
		}
		if err := tx.Bucket(bOutboxLeases).Delete(k); err != nil {
			return err
		}
		return syncDue(tx, enc(key))
	})
}

// RescheduleEvent implements store.Outbox: the look-up, the comparison
// and the write are one transaction. A leased event is not moved, whatever
// its NextAt: its claimer settles it.
func (d *DB) RescheduleEvent(ctx context.Context, key, id string, from, to time.Time) (bool, error) {
	if key == "" {
		key = store.DefaultEventKey
	}
	moved := false
	err := d.update(ctx, func(tx *bolt.Tx) error {
		k, e, err := findEvent(tx, key, id)
		if err != nil || k == nil || tx.Bucket(bOutboxLeases).Get(k) != nil {
			return err
		}
		if e.NextAt.Equal(to) {
			moved = true // as the Redis store answers its re-sent run
			return nil
		}
		if !e.NextAt.Equal(from) {
			return nil
		}
		e.NextAt = to
		v, err := marshal(e)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bOutbox).Put(k, v); err != nil {
			return err
		}
		moved = true
		return syncDue(tx, enc(key))
	})
	return moved && err == nil, err
}

// OutboxHeads implements store.Outbox. Keys are stored length first, so a
// prefix is no range of the bucket: every head is read, as OutboxStats does.
func (d *DB) OutboxHeads(ctx context.Context, prefixes ...string) ([]store.Event, error) {
	var out []store.Event
	err := d.view(ctx, func(tx *bolt.Tx) error {
		// A key in UTF-8 is the event's Key as decoded: one no prefix
		// matches is passed over undecoded. Other bytes decode as U+FFFD,
		// which a prefix may name: such a key is decoded and matched as
		// before.
		skip := func(key []byte) bool {
			if !utf8.Valid(key) {
				return false
			}
			for _, p := range prefixes {
				if len(key) >= len(p) && string(key[:len(p)]) == p {
					return false
				}
			}
			return true
		}
		return heads(tx, skip, func(_ []byte, e store.Event, _ int) error {
			if store.HasAnyPrefix(e.Key, prefixes) {
				out = append(out, e)
			}
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// OutboxHeadsApart implements store.Outbox: the keys apart are counted by
// their bytes, their events not decoded. A key not in UTF-8 is decoded, as
// OutboxHeads decodes it, and counted apart when its decoded Key is.
func (d *DB) OutboxHeadsApart(ctx context.Context, apart ...string) ([]store.Event, int, error) {
	var out []store.Event
	n := 0
	err := d.view(ctx, func(tx *bolt.Tx) error {
		out, n = nil, 0
		skip := func(key []byte) bool {
			if !utf8.Valid(key) {
				return false
			}
			for _, p := range apart {
				if len(key) >= len(p) && string(key[:len(p)]) == p {
					n++
					return true
				}
			}
			return false
		}
		return heads(tx, skip, func(_ []byte, e store.Event, _ int) error {
			if store.HasAnyPrefix(e.Key, apart) {
				n++
			} else {
				out = append(out, e)
			}
			return nil
		})
	})
	if err != nil {
		return nil, 0, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, n, nil
}

// OutboxStats implements store.Outbox.
func (d *DB) OutboxStats(ctx context.Context) (store.OutboxStats, error) {
	st, _, err := d.OutboxStatsApart(ctx)
	return st, err
}

// OutboxStatsApart implements store.Outbox: the keys apart are counted by
// their bytes, their events not decoded. A key not in UTF-8 is decoded,
// as OutboxHeadsApart decodes it, and counted apart when its Key is.
func (d *DB) OutboxStatsApart(ctx context.Context, apart ...string) (store.OutboxStats, int, error) {
	var st store.OutboxStats
	var lastFail time.Time
	keysApart := 0
	err := d.view(ctx, func(tx *bolt.Tx) error {
		st, lastFail, keysApart = store.OutboxStats{}, time.Time{}, 0
		var skip func([]byte) bool
		if len(apart) > 0 {
			skip = func(key []byte) bool {
				if !utf8.Valid(key) {
					return false
				}
				for _, p := range apart {
					if len(key) >= len(p) && string(key[:len(p)]) == p {
						keysApart++
						return true
					}
				}
				return false
			}
		}
		return heads(tx, skip, func(_ []byte, e store.Event, n int) error {
			if len(apart) > 0 && store.HasAnyPrefix(e.Key, apart) {
				keysApart++ // a key not in UTF-8, decoded
				return nil
			}
			st.Pending += n
			st.Keys++
			if st.Oldest.IsZero() || e.CreatedAt.Before(st.Oldest) {
				st.Oldest = e.CreatedAt
			}
			if e.LastError != "" && (lastFail.IsZero() || e.FailedAt.After(lastFail)) {
				lastFail, st.LastError = e.FailedAt, e.LastError
			}
			if len(st.Heads) < store.MaxListLimit {
				st.Heads = append(st.Heads, e)
			}
			return nil
		})
	})
	if err != nil {
		return store.OutboxStats{}, 0, err
	}
	st.LastErrorAt = lastFail
	sort.SliceStable(st.Heads, func(i, j int) bool { return st.Heads[i].CreatedAt.Before(st.Heads[j].CreatedAt) })
	return st, keysApart, nil
}
