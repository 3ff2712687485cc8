package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/paygate/paygate/store"
)

var errImmutable = errors.New("order client, user and creation time cannot change")

func marshal(v any) ([]byte, error) { return json.Marshal(v) }

func unmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("embedded: decode record: %w", err)
	}
	return nil
}

func validOrder(o *store.Order) error {
	if o == nil || o.OrderNo == "" {
		return errors.New("embedded: order number is required")
	}
	if !o.Status.Valid() {
		return fmt.Errorf("embedded: invalid order status %q", o.Status)
	}
	return nil
}

// userPrefix is read on every turn (LoadUserState): one allocation.
func userPrefix(client, user string) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(client)+len(user))
	return appendUserPrefix(b, client, user)
}

func appendUserPrefix(b []byte, client, user string) []byte {
	return appendEnc(appendEnc(b, client), user)
}

func orderIndexKeys(o *store.Order) (user, status, all []byte) {
	t, no := ts(o.CreatedAt), []byte(o.OrderNo)
	return join(userPrefix(o.Client, o.User), t, no),
		join(enc(string(o.Status)), t, no),
		join(t, no)
}

// clientKeys are o's keys in bClientOrders and bClientStatus.
func clientKeys(o *store.Order) (client, status []byte) {
	t, no := ts(o.CreatedAt), []byte(o.OrderNo)
	return join(enc(o.Client), t, no), join(enc(o.Client), enc(string(o.Status)), t, no)
}

// indexClientOrders fills bClientOrders and bClientStatus from the orders,
// in the transaction that creates them, as indexUserUpdated does. A record
// that does not decode is left out.
func indexClientOrders(tx *bolt.Tx) error {
	cb, sb := tx.Bucket(bClientOrders), tx.Bucket(bClientStatus)
	return tx.Bucket(bOrders).ForEach(func(_, v []byte) error {
		var o store.Order
		if store.DecodeOrder(v, &o) != nil {
			return nil
		}
		ck, sk := clientKeys(&o)
		if err := cb.Put(ck, nil); err != nil {
			return err
		}
		return sb.Put(sk, nil)
	})
}

// userUpdatedKey is o's key in bUserUpdated, the user's orders by their
// last write: LoadUserState reads the newest of them as well as the newest
// created, so an old order paid or approved today is in the turn's state.
// Every order write moves it (UpdateOrder deletes the key of the record it
// replaces), in the transaction that writes the order.
func userUpdatedKey(o *store.Order) []byte {
	return join(userPrefix(o.Client, o.User), ts(o.UpdatedAt), []byte(o.OrderNo))
}

// indexUserUpdated fills bUserUpdated from the orders, in the transaction
// that creates the bucket: a file whose last write was not this version's
// (a version without the index wrote it, before or after a rollback) gets
// it anew at its Open by this one, so no order is missing from it. A
// record that does not decode is left out; LoadUserState still finds it
// through bUserOrders while it is among the user's newest created.
func indexUserUpdated(tx *bolt.Tx) error {
	ub := tx.Bucket(bUserUpdated)
	return tx.Bucket(bOrders).ForEach(func(_, v []byte) error {
		var o store.Order
		if store.DecodeOrder(v, &o) != nil {
			return nil
		}
		return ub.Put(userUpdatedKey(&o), nil)
	})
}

// CreateOrder implements store.Orders.
func (d *DB) CreateOrder(ctx context.Context, o *store.Order, events ...store.Event) error {
	if err := validOrder(o); err != nil {
		return err
	}
	evs, err := d.orderEvents(o.OrderNo, events)
	if err != nil {
		return err
	}
	now := d.now()
	rec := *o
	rec.Version = 1
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	rec.UpdatedAt = now
	err = d.batched(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bOrders)
		if b.Get([]byte(o.OrderNo)) != nil {
			return fmt.Errorf("order %s: %w", o.OrderNo, store.ErrExists)
		}
		if err := putOrder(tx, &rec); err != nil {
			return err
		}
		if d.users != nil {
			// Before the commit: no reader may see the order and miss the user.
			d.users.add(userPrefix(rec.Client, rec.User))
		}
		uk, sk, ak := orderIndexKeys(&rec)
		ck, csk := clientKeys(&rec)
		for _, kv := range []struct{ b, k []byte }{{bUserOrders, uk}, {bUserUpdated, userUpdatedKey(&rec)}, {bStatusOrders, sk}, {bAllOrders, ak},
			{bClientOrders, ck}, {bClientStatus, csk}} {
			if err := tx.Bucket(kv.b).Put(kv.k, nil); err != nil {
				return err
			}
		}
		return appendEvents(tx, evs)
	})
	if err != nil {
		return err
	}
	o.Version, o.CreatedAt, o.UpdatedAt = 1, rec.CreatedAt, rec.UpdatedAt
	return nil
}

func putOrder(tx *bolt.Tx, o *store.Order) error {
	v, err := marshal(o)
	if err != nil {
		return err
	}
	return tx.Bucket(bOrders).Put([]byte(o.OrderNo), v)
}

func getOrder(tx *bolt.Tx, no []byte) (*store.Order, error) {
	v := tx.Bucket(bOrders).Get(no)
	if v == nil {
		return nil, fmt.Errorf("order %s: %w", no, store.ErrNotFound)
	}
	var o store.Order
	if err := store.DecodeOrder(v, &o); err != nil {
		return nil, fmt.Errorf("embedded: decode record: %w", err)
	}
	return &o, nil
}

// GetOrder implements store.Orders.
func (d *DB) GetOrder(ctx context.Context, orderNo string) (*store.Order, error) {
	var o *store.Order
	err := d.view(ctx, func(tx *bolt.Tx) error {
		var err error
		o, err = getOrder(tx, []byte(orderNo))
		return err
	})
	return o, err
}

// UpdateOrder implements store.Orders.
func (d *DB) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, events ...store.Event) error {
	if err := validOrder(o); err != nil {
		return err
	}
	evs, err := d.orderEvents(o.OrderNo, events)
	if err != nil {
		return err
	}
	now := d.now()
	var version int64
	var created time.Time
	err = d.batched(ctx, func(tx *bolt.Tx) error {
		cur, err := getOrder(tx, []byte(o.OrderNo))
		if err != nil {
			return err
		}
		if cur.Status != expect {
			return fmt.Errorf("order %s is %s, not %s: %w", o.OrderNo, cur.Status, expect, store.ErrConflict)
		}
		if cur.Version != o.Version {
			return fmt.Errorf("order %s is at version %d, not %d: %w", o.OrderNo, cur.Version, o.Version, store.ErrConflict)
		}
		if cur.Client != o.Client || cur.User != o.User || !cur.CreatedAt.Equal(o.CreatedAt) {
			return fmt.Errorf("embedded: update order %s: %w", o.OrderNo, errImmutable)
		}
		rec := *o
		rec.CreatedAt = cur.CreatedAt
		rec.UpdatedAt = now
		rec.Version = cur.Version + 1
		created = cur.CreatedAt
		if err := putOrder(tx, &rec); err != nil {
			return err
		}
		ub := tx.Bucket(bUserUpdated)
		if err := ub.Delete(userUpdatedKey(cur)); err != nil {
			return err
		}
		if err := ub.Put(userUpdatedKey(&rec), nil); err != nil {
			return err
		}
		if rec.Status != cur.Status {
			_, oldKey, _ := orderIndexKeys(cur)
			_, newKey, _ := orderIndexKeys(&rec)
			sb := tx.Bucket(bStatusOrders)
			if err := sb.Delete(oldKey); err != nil {
				return err
			}
			if err := sb.Put(newKey, nil); err != nil {
				return err
			}
			_, oldKey = clientKeys(cur)
			_, newKey = clientKeys(&rec)
			cb := tx.Bucket(bClientStatus)
			if err := cb.Delete(oldKey); err != nil {
				return err
			}
			if err := cb.Put(newKey, nil); err != nil {
				return err
			}
		}
		version = rec.Version
		return appendEvents(tx, evs)
	})
	if err != nil {
		return err
	}
	o.Version, o.CreatedAt, o.UpdatedAt = version, created, now
	return nil
}

// ListOrders implements store.Orders.
func (d *DB) ListOrders(ctx context.Context, f store.OrderFilter) ([]*store.Order, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	limit = min(limit, store.MaxListLimit)
	if err := f.Check(); err != nil {
		return nil, fmt.Errorf("embedded: list orders: %w", err)
	}
	var out []*store.Order
	err := d.view(ctx, func(tx *bolt.Tx) error {
		var bucket, prefix []byte
		clients := tx.Bucket(bClientOrders) != nil // not in a file an earlier version wrote, opened read-only
		switch {
		case f.User != "":
			bucket, prefix = bUserOrders, userPrefix(f.Client, f.User)
		case (f.Client != "" || f.NoClient) && f.Status != "" && clients:
			bucket, prefix = bClientStatus, join(enc(f.Client), enc(string(f.Status)))
		case (f.Client != "" || f.NoClient) && clients:
			bucket, prefix = bClientOrders, enc(f.Client)
		case f.Status != "":
			bucket, prefix = bStatusOrders, enc(string(f.Status))
		default:
			bucket = bAllOrders
		}
		return scanNewest(tx.Bucket(bucket), prefix, f.Before, f.BeforeOrderNo, func(_, no []byte) (bool, error) {
			if d.listHook != nil {
				d.listHook(no)
			}
			o, err := getOrder(tx, no)
			if err != nil {
				return false, err
			}
			if f.ClientMatches(o) && (f.Status == "" || o.Status == f.Status) {
				out = append(out, o)
			}
			return len(out) < limit, nil
		})
	})
	return out, err
}

// scanNewest walks index keys prefix+ts(8)+orderNo from the newest down, starting
// strictly below prefix+ts(before)+beforeNo (when before is set), calling fn
// with each key's time (its 8 bytes) and order number until fn says stop. Keys of one instant sort by
// order number, so the walk is store.OrderListedBefore's order and the
// (before, beforeNo) cursor resumes exactly after the order it names.
func scanNewest(b *bolt.Bucket, prefix []byte, before time.Time, beforeNo string, fn func(at, no []byte) (bool, error)) error {
	c := b.Cursor()
	var k []byte
	start := prefixEnd(prefix)
	if !before.IsZero() {
		start = join(prefix, ts(before), []byte(beforeNo))
	}
	if start == nil {
		k, _ = c.Last()
	} else if k, _ = c.Seek(start); k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		if len(k) < len(prefix)+8 {
			continue
		}
		more, err := fn(k[len(prefix):len(prefix)+8], k[len(prefix)+8:])
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// LoadUserState implements store.UserStates with one read transaction, or
// none for a user who never ordered (userFilter: every order is in
// bUserOrders, so a user with one in bUserUpdated is in the filter). It
// reads the newest created orders (bUserOrders), then the newest updated
// (bUserUpdated) that are not among them, then those orders' announcement
// marks (bAnnounced).
func (d *DB) LoadUserState(ctx context.Context, client, user string) (*store.UserState, error) {
	st := &store.UserState{Client: client, User: user, Now: d.now()}
	// The filter's look-up builds the key on the stack: most users never
	// ordered, and their turns then allocate nothing here but st.
	var kb [64]byte
	if d.users != nil && !d.users.mayHave(appendUserPrefix(kb[:0], client, user)) {
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
		select {
		case <-d.stop: // closed: answer as a transaction would
			return nil, wrap(berrors.ErrDatabaseNotOpen)
		default:
		}
		return st, nil
	}
	prefix := userPrefix(client, user)
	err := d.view(ctx, func(tx *bolt.Tx) error {
		err := scanNewest(tx.Bucket(bUserOrders), prefix, time.Time{}, "", func(_, no []byte) (bool, error) {
			o, err := getOrder(tx, no)
			if err != nil {
				return false, err
			}
			st.Orders = append(st.Orders, o)
			return len(st.Orders) < store.UserStateOrders, nil
		})
		if err != nil {
			return err
		}
		created, updated := len(st.Orders), 0
		err = scanNewest(tx.Bucket(bUserUpdated), prefix, time.Time{}, "", func(at, no []byte) (bool, error) {
			i := indexOrder(st.Orders[:created], no)
			var o *store.Order
			if i >= 0 {
				o = st.Orders[i]
			} else {
				var err error
				if o, err = getOrder(tx, no); err != nil {
					return false, err
				}
			}
			if !bytes.Equal(at, ts(o.UpdatedAt)) {
				// Not the order's last write: a version without this
				// index rewrote the order since. The order's newest
				// write is not in the index; its created key still is.
				return true, nil
			}
			if i < 0 {
				st.Orders = append(st.Orders, o)
			}
			updated++
			return updated < store.UserStateOrders, nil
		})
		if err != nil {
			return err
		}
		return announcedIn(tx, prefix, st)
	})
	if err != nil {
		return nil, err
	}
	store.SortListed(st.Orders)
	return st, nil
}

// indexOrder is the index of the order numbered no in orders, or -1.
func indexOrder(orders []*store.Order, no []byte) int {
	for i, o := range orders {
		if o.OrderNo == string(no) {
			return i
		}
	}
	return -1
}
