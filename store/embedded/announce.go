package embedded

import (
	"bytes"
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
)

// announceKey is the key of an announcement mark in bAnnounced: the user's
// prefix, the order's number, then the kind, so that the marks of one of
// the user's orders are one range (announcePrefix) LoadUserState reads in
// its own transaction.
func announceKey(client, user, orderNo, kind string) []byte {
	return append(announcePrefix(userPrefix(client, user), orderNo), kind...)
}

func announcePrefix(user []byte, orderNo string) []byte {
	return appendEnc(bytes.Clone(user), orderNo)
}

// ClaimAnnouncement implements store.Announcements: one write transaction
// (one fsync), which also reads an earlier version's counter and, for a
// claim it grants, sets it, so the upgrade, and a rollback to an earlier
// version (which claims with that counter alone), cost nothing more. The mark is an expiring record that the
// sweep removes once its ttl has passed.
func (d *DB) ClaimAnnouncement(ctx context.Context, client, user, kind, orderNo string, ttl time.Duration) (bool, error) {
	if kind == "" || orderNo == "" || ttl <= 0 {
		return false, errors.New("embedded: an announcement claim needs a kind, an order number and a ttl")
	}
	now := d.now().UnixNano()
	first := false
	err := d.batched(ctx, func(tx *bolt.Tx) error {
		first = false // a run again in a group (batched) starts afresh
		b := tx.Bucket(bAnnounced)
		k := announceKey(client, user, orderNo, kind)
		if v := b.Get(k); v != nil {
			var r expiring
			if err := unmarshal(v, &r); err != nil {
				return err
			}
			if now < r.Until {
				return nil
			}
		}
		var legacy counterRec
		if v := tx.Bucket(bCounters).Get([]byte(kind + orderNo)); v != nil {
			if err := unmarshal(v, &legacy); err != nil {
				return err
			}
		}
		first = !(now < legacy.Until && legacy.N >= 1)
		if err := putJSON(b, bAnnounced, string(k), expiring{Until: now + int64(ttl)}); err != nil {
			return err
		}
		if !first {
			return nil
		}
		// The counter too, as the Redis driver raises it: an earlier
		// version, which claims with it alone, opening the file after a
		// rollback must find the order announced, not announce it again.
		return putJSON(tx.Bucket(bCounters), bCounters, kind+orderNo, counterRec{N: 1, Until: now + int64(ttl)})
	})
	if err != nil {
		return false, err
	}
	return first, nil
}

// announcedIn adds the live marks of the user's orders to st, in the
// transaction that read the orders. A user with no mark costs one seek.
func announcedIn(tx *bolt.Tx, user []byte, st *store.UserState) error {
	now := st.Now.UnixNano()
	c := tx.Bucket(bAnnounced).Cursor()
	if k, _ := c.Seek(user); k == nil || !bytes.HasPrefix(k, user) {
		return nil
	}
	p := bytes.Clone(user)
	for _, o := range st.Orders {
		p = appendEnc(p[:len(user)], o.OrderNo)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			var r expiring
			if err := unmarshal(v, &r); err != nil {
				return err
			}
			if now < r.Until {
				if st.Announced == nil {
					st.Announced = make(map[store.Announcement]bool)
				}
				st.Announced[store.Announcement{Kind: string(k[len(p):]), OrderNo: o.OrderNo}] = true
			}
		}
	}
	return nil
}
