package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// Per-client order indexes. Each client (and the orders recorded without
// one) has an index of its orders by creation time, {idx}:cl:CLIENT, which
// ListOrders reads for the admin API's ?client= in place of every order of
// every client. The sync script writes it with the global indexes
// (luaSyncIndex), on {idx} as they are, and records the order in {idx}:cv.
// An order's client and creation time never change, so an entry is never
// stale: an order can only be missing from its client's index, when an
// earlier version indexed it, before the upgrade or, during a rolling
// upgrade, on a replica still running it.
//
// Every order indexed at all is in {idx}:v, whatever version indexed it,
// and only such orders are entered in {idx}:cv; neither loses members. So
// the client indexes hold every order exactly when the two hashes are of
// one length (clientIndexed), and until then ListOrders reads the global
// indexes, as earlier versions did: a list never misses the order of an
// earlier version's replica, and needs no record of which versions run.
// Repair enters the missing orders (indexClients), at start-up and every
// RepairInterval: once no earlier version writes, the lists read the
// client indexes from the next pass on. A count per status could not tell
// an earlier version's change of status from none (two changes can cancel
// out), so a client's orders of one status are read from the client's
// index, or from the status's if that is the shorter.

// clientIndexed reports whether the client indexes hold every order.
// It queues its reads on p; the answer is ready once p has run. A list
// reads the lengths in one script instead (luaClientIndexed): read one
// after the other, a sync between them (an order entered in both) could
// make them equal while an order an earlier version indexed was still
// missing.
func (s *Store) clientIndexed(ctx context.Context, p goredis.Pipeliner) func() bool {
	v := p.HLen(ctx, s.k.idx("v"))
	cv := p.HLen(ctx, s.k.idx("cv"))
	return func() bool { return v.Val() == cv.Val() }
}

// clientListIndex is the index ListOrders reads for f, which names a
// client (or none) and no user: the client's index once it is complete
// (the status's when f names a status with fewer orders), else the
// status's or the global one.
func (s *Store) clientListIndex(ctx context.Context, f store.OrderFilter) (string, error) {
	ci := s.k.clientOrders(f.Client)
	// One script, not a transaction: the ACL the README gives has no
	// MULTI (@transaction), which refused every list by client.
	keys := []string{s.k.idx("v"), s.k.idx("cv"), ci}
	if f.Status != "" {
		keys = append(keys, s.k.status(f.Status))
	}
	v, err := s.sc.clientIndexed.Run(ctx, s.c, keys).Result()
	if err != nil {
		return "", mapErr("list orders", err)
	}
	r := replySlice(v)
	complete := replyInt(r, 0) == replyInt(r, 1)
	inClient, inStatus := replyInt(r, 2), replyInt(r, 3)
	switch {
	case f.Status != "" && (!complete || inStatus < inClient):
		return s.k.status(f.Status), nil
	case !complete:
		return s.k.idx("all"), nil
	}
	return ci, nil
}

// indexClientsBatch is how many orders indexClients reads at a time.
const indexClientsBatch = 500

// indexClients enters every order missing from its client's index (see
// above) and reports how many it entered. It reads {idx}:v a batch at a
// time (HSCAN) and the records of the orders {idx}:cv lacks, and enters
// them in one script per batch, which writes what a sync would: safe beside
// writers of either version and run again after a lost reply. An order
// whose record is gone or does not decode is left out (and logged), and
// the lists go on reading the global indexes, which a list of that order
// could not read past either.
func (s *Store) indexClients(ctx context.Context) (int, error) {
	var complete func() bool
	if _, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		complete = s.clientIndexed(ctx, p)
		return nil
	}); err != nil {
		return 0, mapErr("index clients", err)
	}
	if complete() {
		return 0, nil
	}
	v, cv := s.k.idx("v"), s.k.idx("cv")
	n := 0
	var cursor uint64
	for {
		kv, next, err := s.c.HScan(ctx, v, cursor, "", indexClientsBatch).Result()
		if err != nil {
			return n, mapErr("index clients", err)
		}
		nos := make([]string, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			nos = append(nos, kv[i])
		}
		m, err := s.indexClientsOf(ctx, cv, nos)
		n += m
		if err != nil {
			return n, err
		}
		if next == 0 {
			return n, nil
		}
		cursor = next
	}
}

// indexClientsOf enters those of nos that cv lacks.
func (s *Store) indexClientsOf(ctx context.Context, cv string, nos []string) (int, error) {
	if len(nos) == 0 {
		return 0, nil
	}
	have, err := s.c.HMGet(ctx, cv, nos...).Result()
	if err != nil {
		return 0, mapErr("index clients", err)
	}
	var missing []string
	for i, h := range have {
		if h == nil {
			missing = append(missing, nos[i])
		}
	}
	if len(missing) == 0 {
		return 0, nil
	}
	cmds := make([]*goredis.SliceCmd, len(missing))
	if _, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, no := range missing {
			rk, _, _ := s.k.orderTag(no)
			cmds[i] = p.HMGet(ctx, rk, "j", "v")
		}
		return nil
	}); err != nil {
		return 0, mapErr("index clients", err)
	}
	keys := []string{cv}
	var args []any
	for i, cmd := range cmds {
		o, err := orderFromHMGet(missing[i], cmd.Val())
		if err != nil {
			s.log.WarnContext(ctx, "store: order left out of its client's index; lists by client read every order", "order_no", missing[i], "err", err)
			continue
		}
		keys = append(keys, s.k.clientOrders(o.Client))
		args = append(args, o.OrderNo, score(o.CreatedAt))
	}
	if len(args) == 0 {
		return 0, nil
	}
	if _, err := s.run(ctx, "index clients", s.sc.indexClients, keys, args...); err != nil {
		return 0, fmt.Errorf("redis: index clients: %w", err)
	}
	return len(keys) - 1, nil
}
