package embedded

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

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
	}
	return nil
}

// EnqueueEvents implements store.Outbox.
func (d *DB) EnqueueEvents(ctx context.Context, events ...store.Event) error {
	evs := make([]store.Event, len(events))
	for i, e := range events {
		evs[i] = d.fillEvent(e)
	}
	return d.update(ctx, func(tx *bolt.Tx) error { return appendEvents(tx, evs) })
}

// EnqueueEventOnce implements store.Outbox: the look-up and the append are
// one transaction.
func (d *DB) EnqueueEventOnce(ctx context.Context, e store.Event) (bool, error) {
	e = d.fillEvent(e)
	added := false
	err := d.update(ctx, func(tx *bolt.Tx) error {
		k, _, err := findEvent(tx, e.Key, e.ID)
		if err != nil || k != nil {
			return err
		}
		added = true
		return appendEvents(tx, []store.Event{e})
	})
	return added && err == nil, err
}

// heads calls fn with the first pending event of every key.
func heads(tx *bolt.Tx, fn func(k []byte, e store.Event, pending int) error) error {
	c := tx.Bucket(bOutbox).Cursor()
	k, v := c.First()
	for k != nil {
		prefix := k[:len(k)-8]
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

// DueEvents implements store.Outbox: every head is read, those due and of
// kinds kept.
func (d *DB) DueEvents(ctx context.Context, now time.Time, limit int, kinds ...string) ([]store.Event, error) {
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	var out []store.Event
	err := d.view(ctx, func(tx *bolt.Tx) error {
		return heads(tx, func(_ []byte, e store.Event, _ int) error {
			if !e.NextAt.After(now) && store.OfKind(e, kinds) {
				out = append(out, e)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sortEvents(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ClaimEvents implements store.Outbox: the heads are read and leased in one
// transaction, so concurrent claims (which bbolt serialises) never share an
// event.
func (d *DB) ClaimEvents(ctx context.Context, kind string, now time.Time, lease time.Duration, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	var out []store.Event
	err := d.update(ctx, func(tx *bolt.Tx) error {
		var keys [][]byte
		var due []store.Event
		err := heads(tx, func(k []byte, e store.Event, _ int) error {
			if e.Kind == kind && !e.NextAt.After(now) {
				keys, due = append(keys, k), append(due, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		idx := make([]int, len(due))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(i, j int) bool { return eventBefore(due[idx[i]], due[idx[j]]) })
		if len(idx) > limit {
			idx = idx[:limit]
		}
		until := now.Add(lease)
		b := tx.Bucket(bOutbox)
		for _, i := range idx {
			e := due[i]
			e.NextAt = until
			v, err := marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put(keys[i], v); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eventBefore orders due events: the longest due first, then the oldest.
func eventBefore(a, b store.Event) bool {
	if !a.NextAt.Equal(b.NextAt) {
		return a.NextAt.Before(b.NextAt)
	}
	return a.CreatedAt.Before(b.CreatedAt)
}

func sortEvents(evs []store.Event) {
	sort.SliceStable(evs, func(i, j int) bool { return eventBefore(evs[i], evs[j]) })
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
	if key == "" {
		key = store.DefaultEventKey
	}
	return d.update(ctx, func(tx *bolt.Tx) error {
		k, _, err := findEvent(tx, key, id)
		if err != nil || k == nil {
			return err
		}
		return tx.Bucket(bOutbox).Delete(k)
	})
}

// RetryEvent implements store.Outbox.
func (d *DB) RetryEvent(ctx context.Context, key, id string, nextAt time.Time, attempts int, lastErr string) error {
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
		e.NextAt, e.Attempts, e.LastError, e.FailedAt = nextAt, attempts, lastErr, d.now()
		v, err := marshal(e)
		if err != nil {
			return err
		}
		return tx.Bucket(bOutbox).Put(k, v)
	})
}

// OutboxHeads implements store.Outbox. Keys are stored length first, so a
// prefix is no range of the bucket: every head is read, as OutboxStats does.
func (d *DB) OutboxHeads(ctx context.Context, prefixes ...string) ([]store.Event, error) {
	var out []store.Event
	err := d.view(ctx, func(tx *bolt.Tx) error {
		return heads(tx, func(_ []byte, e store.Event, _ int) error {
			if store.HasAnyPrefix(e.Key, prefixes) {
				out = append(out, e)
			}
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// OutboxStats implements store.Outbox.
func (d *DB) OutboxStats(ctx context.Context) (store.OutboxStats, error) {
	var st store.OutboxStats
	var lastFail time.Time
	err := d.view(ctx, func(tx *bolt.Tx) error {
		return heads(tx, func(_ []byte, e store.Event, n int) error {
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
	st.LastErrorAt = lastFail
	sort.SliceStable(st.Heads, func(i, j int) bool { return st.Heads[i].CreatedAt.Before(st.Heads[j].CreatedAt) })
	return st, err
}
