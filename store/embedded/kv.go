package embedded

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
)

// claimRec is a live claim; it is judged live while now < Until.
type claimRec struct {
	OrderNo    string `json:"order_no"`
	Generation int    `json:"generation"`
	Until      int64  `json:"until"`
}

// genRec remembers the last generation of a key beyond its claim.
type genRec struct {
	Generation int   `json:"generation"`
	Until      int64 `json:"until"`
}

// ClaimPurchase implements store.Claims.
func (d *DB) ClaimPurchase(ctx context.Context, key, candidateOrderNo string, ttl time.Duration) (store.Claim, bool, error) {
	return d.claim(ctx, key, -1, candidateOrderNo, ttl)
}

// AdvanceClaim implements store.Claims.
func (d *DB) AdvanceClaim(ctx context.Context, key string, fromGeneration int, newOrderNo string, ttl time.Duration) (store.Claim, bool, error) {
	return d.claim(ctx, key, fromGeneration, newOrderNo, ttl)
}

// claim is ClaimPurchase when from < 0, AdvanceClaim otherwise.
func (d *DB) claim(ctx context.Context, key string, from int, orderNo string, ttl time.Duration) (store.Claim, bool, error) {
	if key == "" || orderNo == "" || ttl <= 0 {
		return store.Claim{}, false, errors.New("embedded: claim needs a key, an order number and a ttl")
	}
	now := d.now()
	var c store.Claim
	var won bool
	err := d.batched(ctx, func(tx *bolt.Tx) error {
		cb, gb := tx.Bucket(bClaims), tx.Bucket(bClaimGens)
		var cur claimRec
		live := false
		if v := cb.Get([]byte(key)); v != nil {
			if err := unmarshal(v, &cur); err != nil {
				return err
			}
			live = now.UnixNano() < cur.Until
		}
		if live && (from < 0 || cur.Generation != from) {
			cur.Until = now.Add(ttl).UnixNano()
			c, won = store.Claim{OrderNo: cur.OrderNo, Generation: cur.Generation}, false
			return putJSON(cb, bClaims, key, cur)
		}
		var g genRec
		if v := gb.Get([]byte(key)); v != nil {
			if err := unmarshal(v, &g); err != nil {
				return err
			}
			if now.UnixNano() >= g.Until {
				g.Generation = 0
			}
		}
		next := max(g.Generation, cur.Generation*boolInt(live), from) + 1
		nc := claimRec{OrderNo: orderNo, Generation: next, Until: now.Add(ttl).UnixNano()}
		ng := genRec{Generation: next, Until: now.Add(ttl + store.GenerationRetention).UnixNano()}
		if err := putJSON(cb, bClaims, key, nc); err != nil {
			return err
		}
		c, won = store.Claim{OrderNo: orderNo, Generation: next}, true
		return putJSON(gb, bClaimGens, key, ng)
	})
	if err != nil {
		return store.Claim{}, false, err
	}
	return c, won, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// putJSON writes v under key in bucket b, named name, one of the buckets
// whose records expire (expiryIDs), and moves the record's entry in
// bExpiry to v's Until.
func putJSON(b *bolt.Bucket, name []byte, key string, v any) error {
	data, err := marshal(v)
	if err != nil {
		return err
	}
	id := expiryIDs[string(name)]
	if id == 0 {
		return fmt.Errorf("embedded: %s is no bucket of expiring records", name)
	}
	var r expiring
	if err := unmarshal(data, &r); err != nil {
		return err
	}
	ix := b.Tx().Bucket(bExpiry)
	if old := b.Get([]byte(key)); old != nil {
		var o expiring
		if unmarshal(old, &o) == nil && o.Until != r.Until {
			if err := ix.Delete(expiryKey(o.Until, id, []byte(key))); err != nil {
				return err
			}
		}
	}
	if err := b.Put([]byte(key), data); err != nil {
		return err
	}
	return ix.Put(expiryKey(r.Until, id, []byte(key)), nil)
}

// SeenNotification implements store.Notifications.
func (d *DB) SeenNotification(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	now := d.now().UnixNano()
	first := false
	err := d.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bNotes)
		if v := b.Get([]byte(id)); v != nil {
			var r expiring
			if err := unmarshal(v, &r); err != nil {
				return err
			}
			if now < r.Until {
				return nil
			}
		}
		first = true
		return putJSON(b, bNotes, id, expiring{Until: now + int64(ttl)})
	})
	return first, err
}

type counterRec struct {
	N     int64 `json:"n"`
	Until int64 `json:"until"`
	// Back holds the tokens of the window's give-backs (DecrCounter).
	Back []string `json:"back,omitempty"`
}

// IncrCounter implements store.Counters.
func (d *DB) IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	now := d.now().UnixNano()
	var n int64
	err := d.batched(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bCounters)
		var r counterRec
		if v := b.Get([]byte(key)); v != nil {
			if err := unmarshal(v, &r); err != nil {
				return err
			}
		}
		if now >= r.Until {
			r = counterRec{Until: now + int64(ttl)}
		}
		r.N++
		n = r.N
		return putJSON(b, bCounters, key, r)
	})
	return n, err
}

// DecrCounter implements store.Counters.
func (d *DB) DecrCounter(ctx context.Context, key, token string) error {
	now := d.now().UnixNano()
	return d.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bCounters)
		v := b.Get([]byte(key))
		if v == nil {
			return nil
		}
		var r counterRec
		if err := unmarshal(v, &r); err != nil {
			return err
		}
		if now >= r.Until || r.N <= 0 || slices.Contains(r.Back, token) {
			return nil
		}
		r.N--
		r.Back = append(r.Back, token)
		return putJSON(b, bCounters, key, r)
	})
}

// Windows share the counters' bucket (and its sweep) under their own
// prefix.
const windowPrefix = "window\x00"

// windowRec is a sliding window's admitted events, in the order admitted
// (oldest first unless the clock stepped back); Until, a window after the
// newest, lets the sweep remove a quiet one.
type windowRec struct {
	At     []int64  `json:"at"`
	Tokens []string `json:"tokens"`
	Until  int64    `json:"until"`
}

// AllowWindow implements store.Counters.
func (d *DB) AllowWindow(ctx context.Context, key string, limit int, window time.Duration, token string) (bool, error) {
	now := d.now().UnixNano()
	var ok bool
	err := d.batched(ctx, func(tx *bolt.Tx) error {
		ok = false // a run again in a group (batched) starts afresh
		b := tx.Bucket(bCounters)
		k := windowPrefix + key
		var r windowRec
		if v := b.Get([]byte(k)); v != nil {
			if err := unmarshal(v, &r); err != nil {
				return err
			}
		}
		if slices.Contains(r.Tokens, token) {
			ok = true
			return nil
		}
		// Every event a window old goes, wherever it is: a clock stepped
		// back admits one older than the one before it, and a cut of the
		// oldest run kept it behind a newer one, counted a minute too long.
		// One more than a window ahead was admitted before the clock
		// stepped back further than that (it ran an hour ahead): it counts
		// as admitted now, which is no earlier than it was, where its own
		// time kept the user at the limit for as long as the clock had been
		// ahead (Redis drops the window expiryGrace after its last event).
		at, tokens, capped := r.At[:0:0], r.Tokens[:0:0], false
		newest := now
		for i, a := range r.At {
			if a > now+int64(window) {
				a, capped = now, true
			}
			if a > now-int64(window) {
				at, tokens, newest = append(at, a), append(tokens, r.Tokens[i]), max(newest, a)
			}
		}
		// Until is the newest event's, which, after the clock stepped
		// back, is not the one admitted now.
		r.At, r.Tokens, r.Until = at, tokens, newest+int64(window)
		if len(at) >= limit {
			if capped {
				return putJSON(b, bCounters, k, r)
			}
			return nil
		}
		ok = true
		r.At, r.Tokens = append(at, now), append(tokens, token)
		return putJSON(b, bCounters, k, r)
	})
	return ok, err
}

// Leases share the counters' bucket (and its sweep) under their own
// prefix.
const leasePrefix = "lease\x00"

// leaseRec is a lease: Holder has it while now < Until.
type leaseRec struct {
	Holder string `json:"holder"`
	Until  int64  `json:"until"`
}

// TakeLeases implements store.Leases: one transaction, so one wait for the
// disk, for every key.
func (d *DB) TakeLeases(ctx context.Context, holder string, keys []string, ttl time.Duration) ([]bool, error) {
	if holder == "" || ttl <= 0 {
		return nil, errors.New("embedded: take leases needs a holder and a ttl")
	}
	if len(keys) == 0 {
		return nil, nil
	}
	now := d.now().UnixNano()
	out := make([]bool, len(keys))
	err := d.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bCounters)
		for i, key := range keys {
			var r leaseRec
			if v := b.Get([]byte(leasePrefix + key)); v != nil {
				if err := unmarshal(v, &r); err != nil {
					return err
				}
			}
			if r.Holder != holder && now < r.Until {
				out[i] = false
				continue
			}
			out[i] = true
			if err := putJSON(b, bCounters, leasePrefix+key, leaseRec{Holder: holder, Until: now + int64(ttl)}); err != nil {
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

// Tallies share the counters' bucket (and its sweep) under their own
// prefix.
const tallyPrefix = "tally\x00"

// AddTally implements store.Tallies: bbolt runs one write transaction at a
// time, so the read and the write of the sum are one step.
func (d *DB) AddTally(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	now := d.now().UnixNano()
	var n int64
	err := d.update(ctx, func(tx *bolt.Tx) error {
		var err error
		n, err = addTally(tx.Bucket(bCounters), key, delta, now, ttl)
		return err
	})
	return n, err
}

// AddTallies implements store.Tallies: one transaction, so one wait for
// the disk, for every add.
func (d *DB) AddTallies(ctx context.Context, adds []store.TallyAdd, ttl time.Duration) error {
	now := d.now().UnixNano()
	return d.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bCounters)
		for _, a := range adds {
			if _, err := addTally(b, a.Key, a.Delta, now, ttl); err != nil {
				return err
			}
		}
		return nil
	})
}

// addTally adds delta to key's sum in b and returns the new sum.
func addTally(b *bolt.Bucket, key string, delta, now int64, ttl time.Duration) (int64, error) {
	var r counterRec
	if v := b.Get([]byte(tallyPrefix + key)); v != nil {
		if err := unmarshal(v, &r); err != nil {
			return 0, err
		}
	}
	if now >= r.Until {
		r.N = 0
	}
	r.N = addBounded(r.N, delta)
	r.Until = now + int64(ttl)
	return r.N, putJSON(b, bCounters, tallyPrefix+key, r)
}

// addBounded is n+delta stopping at int64's ends: a sum that wrapped
// turned the dearest conversation's cost negative, and its paid order
// counted it as nothing. Redis stops there too (luaAddTally).
func addBounded(n, delta int64) int64 {
	switch {
	case delta > 0 && n > math.MaxInt64-delta:
		return math.MaxInt64
	case delta < 0 && n < math.MinInt64-delta:
		return math.MinInt64
	}
	return n + delta
}

// TakeTally implements store.Tallies.
func (d *DB) TakeTally(ctx context.Context, key string) (int64, error) {
	now := d.now().UnixNano()
	var n int64
	err := d.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bCounters)
		v := b.Get([]byte(tallyPrefix + key))
		if v == nil {
			return nil
		}
		var r counterRec
		if err := unmarshal(v, &r); err != nil {
			return err
		}
		if now < r.Until {
			n = r.N
		}
		return b.Delete([]byte(tallyPrefix + key))
	})
	return n, err
}

type exchangeRec struct {
	Data  []byte `json:"data"`
	Until int64  `json:"until"`
}

// PutExchange implements store.Exchanges.
func (d *DB) PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	r := exchangeRec{Data: data, Until: d.now().Add(ttl).UnixNano()}
	return d.update(ctx, func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bExchanges), bExchanges, key, r) })
}

// PutRefundRecord implements store.RefundRecords: the order's check and
// the record's write are one transaction.
func (d *DB) PutRefundRecord(ctx context.Context, orderNo string, version int64, data []byte, ttl time.Duration) error {
	r := exchangeRec{Data: data, Until: d.now().Add(ttl).UnixNano()}
	return d.update(ctx, func(tx *bolt.Tx) error {
		cur, err := getOrder(tx, []byte(orderNo))
		if err != nil {
			return err
		}
		if cur.Version != version {
			return fmt.Errorf("order %s is at version %d, not %d: %w", orderNo, cur.Version, version, store.ErrConflict)
		}
		return putJSON(tx.Bucket(bExchanges), bExchanges, store.RefundRecordKey(orderNo), r)
	})
}

// GetExchange implements store.Exchanges.
func (d *DB) GetExchange(ctx context.Context, key string) ([]byte, error) {
	now := d.now().UnixNano()
	var out []byte
	err := d.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bExchanges).Get([]byte(key))
		var r exchangeRec
		if v != nil {
			if err := unmarshal(v, &r); err != nil {
				return err
			}
		}
		if v == nil || now >= r.Until {
			return fmt.Errorf("exchange %s: %w", key, store.ErrNotFound)
		}
		out = r.Data
		return nil
	})
	return out, err
}

// GetOrCreateSecret implements store.Secrets.
func (d *DB) GetOrCreateSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var out []byte
	err := d.view(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bSecrets).Get([]byte(name)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil || out != nil {
		return out, err
	}
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("embedded: generate secret %s: %w", name, err)
	}
	if len(fresh) == 0 {
		return nil, fmt.Errorf("embedded: generate secret %s: empty", name)
	}
	err = d.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bSecrets)
		if v := b.Get([]byte(name)); v != nil {
			out = append([]byte(nil), v...)
			return nil
		}
		out = fresh
		return b.Put([]byte(name), fresh)
	})
	return out, err
}
