package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// ClaimPurchase implements store.Claims.
func (s *Store) ClaimPurchase(ctx context.Context, key, candidateOrderNo string, ttl time.Duration) (store.Claim, bool, error) {
	return s.claim(ctx, "claim purchase", key, -1, candidateOrderNo, ttl)
}

// AdvanceClaim implements store.Claims.
func (s *Store) AdvanceClaim(ctx context.Context, key string, fromGeneration int, newOrderNo string, ttl time.Duration) (store.Claim, bool, error) {
	return s.claim(ctx, "advance claim", key, fromGeneration, newOrderNo, ttl)
}

func (s *Store) claim(ctx context.Context, op, key string, from int, orderNo string, ttl time.Duration) (store.Claim, bool, error) {
	if key == "" || orderNo == "" || ttl <= 0 {
		return store.Claim{}, false, errors.New("redis: claim needs a key, an order number and a ttl")
	}
	ck, gk := s.k.claim(key)
	// The token is this call's: a run go-redis re-sends after losing the
	// first one's reply finds the claim bound with it and answers created,
	// as the first run did (luaClaim). The candidate cannot tell: payments
	// passes numbers already bound.
	v, err := s.runMoney(ctx, op, s.sc.claim, []string{ck, gk},
		orderNo, ms(ttl), s.serverMs(ctx, s.now()), from, ms(store.GenerationRetention), ms(expiryGrace), rand.Text())
	if err != nil {
		return store.Claim{}, false, err
	}
	r := replySlice(v)
	no, _ := replyStr(r, 0)
	return store.Claim{OrderNo: no, Generation: int(replyInt(r, 1))}, replyInt(r, 2) == 1, nil
}

// SeenNotification implements store.Notifications.
func (s *Store) SeenNotification(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	now := s.serverMs(ctx, s.now())
	v, err := s.runMoney(ctx, "seen notification", s.sc.seen, []string{s.k.one("n", id)},
		now, now+ms(ttl), ms(ttl+expiryGrace), rand.Text())
	if err != nil {
		return false, err
	}
	n, _ := v.(int64)
	return n == 1, nil
}

// IncrCounter implements store.Counters.
func (s *Store) IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	v, err := s.run(ctx, "incr counter", s.sc.counter, []string{s.k.one("k", key)},
		s.serverMs(ctx, s.now()), ms(ttl), ms(expiryGrace), rand.Text())
	if err != nil {
		return 0, err
	}
	n, _ := v.(int64)
	return n, nil
}

// DecrCounter implements store.Counters.
func (s *Store) DecrCounter(ctx context.Context, key, token string) error {
	_, err := s.run(ctx, "give back a count", s.sc.uncount, []string{s.k.one("k", key)}, s.serverMs(ctx, s.now()), token)
	return err
}

// AllowWindow implements store.Counters.
func (s *Store) AllowWindow(ctx context.Context, key string, limit int, window time.Duration, token string) (bool, error) {
	v, err := s.run(ctx, "allow in window", s.sc.window, []string{s.k.one("w", key)},
		s.serverMs(ctx, s.now()), ms(window), limit, token, ms(expiryGrace))
	if err != nil {
		return false, err
	}
	n, _ := v.(int64)
	return n == 1, nil
}

// AddTally implements store.Tallies.
func (s *Store) AddTally(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	v, err := s.run(ctx, "add tally", s.sc.addTally, []string{s.k.one("t", key)},
		delta, s.serverMs(ctx, s.now()), ms(ttl), ms(expiryGrace), rand.Text())
	if err != nil {
		return 0, err
	}
	return tallyReply("add tally", key, v)
}

// AddTallies implements store.Tallies: the adds' scripts in one pipeline,
// so one round trip (a cluster's client sends each node its part).
func (s *Store) AddTallies(ctx context.Context, adds []store.TallyAdd, ttl time.Duration) error {
	if len(adds) == 0 {
		return nil
	}
	now := s.serverMs(ctx, s.now())
	tokens := make([]string, len(adds)) // a pipeline re-sent adds nothing twice
	for i := range tokens {
		tokens[i] = rand.Text()
	}
	_, err := s.runBatch(ctx, "add tallies", s.sc.addTally, len(adds), func(i int) ([]string, []any) {
		return []string{s.k.one("t", adds[i].Key)}, []any{adds[i].Delta, now, ms(ttl), ms(expiryGrace), tokens[i]}
	})
	return err
}

// TakeLeases implements store.Leases: the keys' scripts (luaLease) in one
// pipeline, so one round trip. A lease is no money write: one lost in a
// failover costs at most a second query of an order, and is not confirmed
// as money writes are (runMoney).
func (s *Store) TakeLeases(ctx context.Context, holder string, keys []string, ttl time.Duration) ([]bool, error) {
	if holder == "" || ttl <= 0 {
		return nil, errors.New("redis: take leases needs a holder and a ttl")
	}
	if len(keys) == 0 {
		return nil, nil
	}
	now := s.serverMs(ctx, s.now())
	cmds, err := s.runBatch(ctx, "take leases", s.sc.lease, len(keys), func(i int) ([]string, []any) {
		return []string{s.k.one("l", keys[i])}, []any{holder, now, ms(ttl), ms(expiryGrace)}
	})
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(keys))
	for i, c := range cmds {
		n, _ := c.Int64()
		out[i] = n == 1
	}
	return out, nil
}

// runBatch runs sc n times in one pipeline, the i-th with the keys and
// arguments of call(i), loading the script and sending the pipeline again
// when Redis does not know it (NOSCRIPT): each run must be safe to send
// twice. The error is the first run's that failed, read as run's
// (writeErr), the load's too: a pipeline's re-send Redis refused, or
// refused to load the script for, may follow a try that applied.
func (s *Store) runBatch(ctx context.Context, op string, sc *goredis.Script, n int, call func(i int) ([]string, []any)) ([]*goredis.Cmd, error) {
	if err := s.refused(op); err != nil {
		return nil, err
	}
	cmds := make([]*goredis.Cmd, n)
	exec := func() error {
		_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := range n {
				keys, args := call(i)
				cmds[i] = sc.EvalSha(ctx, p, keys, args...)
			}
			return nil
		})
		return err
	}
	err := exec()
	if goredis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			return nil, writeErr(op, err)
		}
		err = exec()
	}
	if err != nil {
		return nil, writeErr(op, err)
	}
	return cmds, nil
}

// TakeTally implements store.Tallies.
func (s *Store) TakeTally(ctx context.Context, key string) (int64, error) {
	t := s.k.one("t", key)
	v, err := s.run(ctx, "take tally", s.sc.takeTally, []string{t, t + ":took:" + rand.Text()}, s.serverMs(ctx, s.now()))
	if err != nil {
		return 0, err
	}
	return tallyReply("take tally", key, v)
}

// tallyReply reads a tally script's reply: the sum as a decimal string.
func tallyReply(op, key string, v any) (int64, error) {
	str, _ := v.(string)
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis: %s %s: %q is not a sum: %w", op, key, str, err)
	}
	return n, nil
}

// PutExchange implements store.Exchanges. An order's refund record
// (store.RefundRecordKey) is kept on the order's hash tag (exchangeKey),
// and copied where an earlier version reads it (copyRefundRecord).
func (s *Store) PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	until := s.serverMs(ctx, s.now()) + ms(ttl)
	if _, err := s.run(ctx, "put exchange", s.sc.putExchange, []string{s.exchangeKey(key)},
		data, until, ms(ttl+expiryGrace)); err != nil {
		return err
	}
	if no, ok := strings.CutPrefix(key, store.RefundRecordKeyPrefix); ok {
		s.copyRefundRecord(ctx, no, data, until, ttl)
	}
	return nil
}

// PutRefundRecord implements store.RefundRecords: one script on the
// order's hash tag checks the order's version and writes the record, then
// a copy goes where an earlier version reads it (copyRefundRecord).
func (s *Store) PutRefundRecord(ctx context.Context, orderNo string, version int64, data []byte, ttl time.Duration) error {
	rk, _, _ := s.k.orderTag(orderNo)
	until := s.serverMs(ctx, s.now()) + ms(ttl)
	v, err := s.run(ctx, "put refund record", s.sc.putRecord, []string{rk, s.k.refundRecord(orderNo)},
		version, data, until, ms(ttl+expiryGrace))
	if err != nil {
		return err
	}
	r := replySlice(v)
	switch replyInt(r, 0) {
	case 1:
		s.copyRefundRecord(ctx, orderNo, data, until, ttl)
		return nil
	case -1:
		return fmt.Errorf("order %s: %w", orderNo, store.ErrNotFound)
	case -2:
		return fmt.Errorf("order %s is at version %d, not %d: %w", orderNo, replyInt(r, 1), version, store.ErrConflict)
	}
	return fmt.Errorf("redis: put refund record of order %s: unexpected reply %v", orderNo, v)
}

// copyRefundRecord writes order no's refund record, just written on the
// order's tag with until, also where the version of 2 December 2026 keeps
// and reads it ({x:refund-inflight:NO}), with the same until and expiry:
// during a rolling upgrade from that version, its replicas read only
// there, and WeChat Pay's SUCCESS of a refund recorded here and delivered
// to one of them would put a fully refunded order in review
// (refund_not_requested).
//
// On Redis Cluster the two keys are in different slots, so this is a
// second command. Lost (a crash or a failure between the two, logged
// here and not the caller's error: the record this version reads is
// written), the earlier version's replicas miss the record, as they did
// before the copy. The copy replaces no record with a later until
// (luaCopyRefundRecord): a copy that arrives late leaves the record a
// replica of the earlier version, or a later write of this version, put
// there since. It is marked a copy, which GetExchange does not read: the
// order's tag holds the record it copies or a later one, so a copy never
// outranks it, whatever its until.
//
// Compat: the release after this one may drop the copy (not GetExchange's
// read of the earlier key): a rolling upgrade to it starts from this
// version, whose replicas read the record on the order's tag.
func (s *Store) copyRefundRecord(ctx context.Context, no string, data []byte, until int64, ttl time.Duration) {
	_, err := s.run(ctx, "copy refund record for an earlier version", s.sc.copyRecord,
		[]string{s.k.one("x", store.RefundRecordKey(no))}, data, until, ms(ttl+expiryGrace))
	if err != nil {
		s.log.WarnContext(ctx, "store: refund record not copied where a replica of an earlier version reads it; during a rolling upgrade from that version, its SUCCESS delivered to such a replica puts the order in review",
			"order_no", no, "err", err)
	}
}

// exchangeKey is the key of exchange key: an order's refund record on the
// order's tag (keys.refundRecord), any other on its own.
func (s *Store) exchangeKey(key string) string {
	if no, ok := strings.CutPrefix(key, store.RefundRecordKeyPrefix); ok {
		return s.k.refundRecord(no)
	}
	return s.k.one("x", key)
}

// GetExchange implements store.Exchanges. An order's refund record is
// read on the order's tag and where an earlier version wrote it, on a tag
// of its own ({x:KEY}), and the later written of the two counts: its until
// (the server's clock at the write plus the record's ttl, the same for
// every record) is the later. So a record of an earlier version is read
// until this one writes one, and during a rolling upgrade the record a
// replica of the earlier version writes after it is read too. A copy
// this version left there for that version's replicas (copyRefundRecord,
// marked copy) is not read: the order's tag has the record it copies, or
// a later one.
func (s *Store) GetExchange(ctx context.Context, key string) ([]byte, error) {
	vals, err := s.c.HMGet(ctx, s.exchangeKey(key), "d", "until").Result()
	if err != nil {
		return nil, mapErr("get exchange", err)
	}
	if strings.HasPrefix(key, store.RefundRecordKeyPrefix) {
		was, err := s.c.HMGet(ctx, s.k.one("x", key), "d", "until", "copy").Result()
		if err != nil {
			return nil, mapErr("get exchange", err)
		}
		_, copied := replyStr(was, 2)
		if _, ok := replyStr(was, 0); ok && !copied && replyInt(was, 1) > replyInt(vals, 1) {
			vals = was
		}
	}
	d, ok := replyStr(vals, 0)
	if !ok || replyInt(vals, 1) <= s.serverMs(ctx, s.now()) {
		return nil, fmt.Errorf("exchange %s: %w", key, store.ErrNotFound)
	}
	return []byte(d), nil
}

// GetOrCreateSecret implements store.Secrets. The secret (the user hash
// key, privacy.hash_key left empty) is handed out only as a money write's
// result is: one script (luaSecret) reads it, or sets it when there is
// none, so the first writer wins, and runMoney puts the generation raise
// and, with WaitReplicas, WAIT behind it, found or made: a key a failover
// could lose is never used. Made and used without them, it was lost with
// a failover to a replica that never had it, and a replica started after
// made a second one, so one user got two hashes toward providers. A key
// found on the primary is confirmed too (the raise is a write, so WAIT
// covers the SET before it): another replica may have made it a moment
// ago and not yet have heard back. gen runs only when a plain read finds
// none. What it hands out, the Store reads back every EpochInterval and
// in Ping (checkEpoch): found gone or replaced, Redis lost it, and every
// command is refused until the replicas are restarted onto one key.
func (s *Store) GetOrCreateSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	key := s.k.one("s", name)
	var fresh []byte
	_, err := s.c.Get(ctx, key).Bytes()
	switch {
	case errors.Is(err, goredis.Nil):
		if fresh, err = gen(); err != nil {
			return nil, fmt.Errorf("redis: generate secret %s: %w", name, err)
		}
		if len(fresh) == 0 {
			return nil, fmt.Errorf("redis: generate secret %s: empty", name)
		}
	case err != nil:
		return nil, mapErr("get secret", err)
	}
	v, err := s.runMoney(ctx, "secret", s.sc.secret, []string{key}, fresh)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	cur, _ := v.(string)
	if cur == "" {
		// Read a moment ago, gone now: Redis lost it, which checkEpoch
		// tells the replicas that hold it; none is handed out here.
		return nil, fmt.Errorf("redis: secret %s: %w: gone since it was read", name, store.ErrUnavailable)
	}
	s.secretMu.Lock()
	if s.secrets == nil {
		s.secrets = make(map[string]string)
	}
	s.secrets[key] = cur
	s.secretMu.Unlock()
	return []byte(cur), nil
}
