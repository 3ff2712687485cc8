package redis

import (
	"context"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// sentinelOptions are the Options the config gives in sentinel mode
// (cmd/paygate's openStore maps store.redis onto them): master_name, and the
// sentinels, not the master, in addrs.
func sentinelOptions(set *redistest.Sentinel, prefix string) Options {
	return Options{Addrs: set.Addrs(), MasterName: set.Name, KeyPrefix: prefix}
}

// TestSentinel runs the whole suite, the two-replica checks and the
// round-trip count on a master, a replica and a sentinel the test starts,
// the store reaching the master through the sentinel.
func TestSentinel(t *testing.T) {
	set := redistest.StartSentinel(t)
	open := func(t testing.TB, clock *storetest.Clock, prefix string) *Store {
		return openOn(t, clock, sentinelOptions(set, prefix))
	}
	t.Run("ReachesTheMaster", func(t *testing.T) {
		s := open(t, storetest.NewClock(), "")
		if _, ok := s.Client().(*goredis.Client); !ok {
			t.Fatalf("sentinel mode: got %T; want the failover *redis.Client", s.Client())
		}
		info, err := s.Client().Info(context.Background(), "server", "replication").Result()
		if err != nil {
			t.Fatalf("INFO: %v", err)
		}
		if !strings.Contains(info, "tcp_port:"+strconv.Itoa(set.Master.Port)+"\r\n") || !strings.Contains(info, "role:master") {
			t.Errorf("the store's commands go to:\n%s\nwant the master on port %d", info, set.Master.Port)
		}
	})
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t testing.TB, clock *storetest.Clock) store.Store { return open(t, clock, "") })
	})
	t.Run("Shared", func(t *testing.T) {
		storetest.RunShared(t, func(t testing.TB, clock *storetest.Clock) (store.Store, store.Store) {
			p := testPrefix()
			return open(t, clock, p), open(t, clock, p)
		})
	})
	t.Run("RoundTrips", func(t *testing.T) { testRoundTrips(t, open(t, storetest.NewClock(), "")) })
	t.Run("Repair", func(t *testing.T) {
		clock := storetest.NewClock()
		testRepair(t, clock, open(t, clock, ""))
	})
}
