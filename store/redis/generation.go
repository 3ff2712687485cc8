package redis

import (
	"context"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// Generation counters find a Redis that went back to an earlier state: one
// restarted from its last RDB snapshot or from an AOF that misses its last
// second, or a failover to a replica that lagged. The epoch marker, written
// long before, survives that, but the claims, orders, notification marks and
// audit records written since do not: the same purchase would be claimed
// again with a new number while the first order may still be paid, and the
// audit chain would reuse published sequence numbers.
//
// Each primary has one counter without expiry, PREFIX{gen:N}, that every
// money write raises with INCR right behind its script, in the same pipeline
// on the same server (runMoney). A snapshot, an AOF and a replica all hold a
// prefix of that server's commands, so one that lost a money write also lost
// the raise behind it. A Store remembers the highest value it has seen of
// each counter and compares every later sight against what it had seen
// before sending the command: an INCR must answer more, a GET (checkEpoch,
// every EpochInterval and in Ping) at least as much. Values only go up, so
// this needs no coordination between replicas: each compares only against
// what it saw itself. Less means Redis lost writes this Store saw made:
// markLost, which also changes the epoch marker so that the replicas that
// saw none of them stop too.
//
// Limits. Only what a Store saw can be missed: after the rollback, other
// replicas' money writes raise the counter again, and once it is back above
// what this Store saw, this Store can no longer tell. Every Store looks at
// least every EpochInterval and at each of its own money writes, so the
// rollback is found unless more money writes than were lost happen first.
// A money write made after the rollback and before its detection lands,
// as one made after a loss of all data does; the first one that finds it is
// reported as failed. A loss of all data is found by the first money write
// of any replica, whatever its counter saw: it reads the epoch marker too
// (runWrite).
//
// On a cluster a counter belongs to a primary, not to a key: it is the first
// of PREFIX{gen:0}, PREFIX{gen:1}, ... whose slot that primary serves, so
// every Store picks the same one from the same slot map, and a money write
// raises the counter of the primary that holds its keys. After a resharding
// the choice may move to another key; a Store has seen nothing of the new one
// yet, so that costs no false alarm, only the earlier sightings.

// genSearch bounds the search for a primary's counter; a primary that serves
// any slot is found well within it.
const genSearch = 1 << 16

// errRolledBack is the cause once a generation counter went back.
var errRolledBack error = lostError("Redis lost its data: it went back to an earlier state (a counter that every money write raises is lower than this replica saw it: a restart from an older RDB snapshot or from an AOF without its last writes, a failover to a replica that lagged); claims, orders, notification marks and audit records written since that state are gone, so a purchase could be claimed twice and audit sequence numbers reused: restart every paygate replica, then reconcile payments against WeChat Pay")

// gen is the i-th candidate for a primary's generation counter.
func (k keys) gen(i int) string { return k.one("gen", strconv.Itoa(i)) }

// genKey is the generation counter of the primary that holds key; "" for a
// client that has none (a type newStore was not built for).
func (s *Store) genKey(ctx context.Context, key string) (string, error) {
	switch c := s.c.(type) {
	case *goredis.ClusterClient:
		node, err := c.MasterForKey(ctx, key)
		if err != nil {
			return "", err
		}
		m, err := s.clusterGenKeys(ctx, c, map[string]bool{node.Options().Addr: true})
		return m[node.Options().Addr], err
	case *goredis.Client:
		return s.k.gen(0), nil
	}
	return "", nil
}

// genKeys are the generation counters of every primary, for checkEpoch. On
// a cluster, naming the primaries costs a CLUSTER SLOTS (ForEachMaster
// reloads the slot map, which also keeps it fresh).
func (s *Store) genKeys(ctx context.Context) ([]string, error) {
	cc, ok := s.c.(*goredis.ClusterClient)
	if !ok {
		gk, err := s.genKey(ctx, "")
		if gk == "" {
			return nil, err
		}
		return []string{gk}, err
	}
	var addrs []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error {
		s.genMu.Lock()
		addrs = append(addrs, n.Options().Addr)
		s.genMu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		want[a] = true
	}
	m, err := s.clusterGenKeys(ctx, cc, want)
	if err != nil {
		return nil, err
	}
	var gks []string
	for _, a := range addrs {
		if gk := m[a]; gk != "" { // "": a primary without slots holds no data
			gks = append(gks, gk)
		}
	}
	return gks, nil
}

// clusterGenKeys names the counter of each primary in want (by address):
// the first candidate in k.gen order whose slot it serves, by the client's
// slot map, without a round trip.
func (s *Store) clusterGenKeys(ctx context.Context, cc *goredis.ClusterClient, want map[string]bool) (map[string]string, error) {
	found := make(map[string]string, len(want))
	for i := 0; i < genSearch && len(found) < len(want); i++ {
		gk := s.k.gen(i)
		n, err := cc.MasterForKey(ctx, gk)
		if err != nil {
			return nil, err
		}
		if a := n.Options().Addr; want[a] && found[a] == "" {
			found[a] = gk
		}
	}
	return found, nil
}

// gensSeen is the highest value this Store has seen of each counter.
func (s *Store) gensSeen(gks []string) []int64 {
	out := make([]int64, len(gks))
	s.genMu.Lock()
	for i, gk := range gks {
		out[i] = s.genSeen[gk]
	}
	s.genMu.Unlock()
	return out
}

// sawGen records cur, the value of counter gk answered to a command sent
// after this Store had seen before: the answer to an INCR (incr) must be
// more, to a GET at least as much. Less means Redis went back to an earlier
// state (or, with the marker gone too, lost everything): markLost, and the
// error every caller then gets.
func (s *Store) sawGen(ctx context.Context, gk string, before, cur int64, incr bool) error {
	if cur < before || (incr && cur == before) {
		s.markLost(ctx, errRolledBack, "counter", gk, "seen", before, "now", cur)
		return fmt.Errorf("redis: %w: %w", store.ErrUnavailable, s.lostCause())
	}
	s.genMu.Lock()
	if cur > s.genSeen[gk] {
		s.genSeen[gk] = cur
	}
	s.genMu.Unlock()
	return nil
}
