package redis

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestPingSaysWhenWritesFail: /readyz (and the monitoring that watches it
// for a replica whose probes use /healthz) pings the store, and Redis's
// ping was PING and the epoch marker's GET, which a Redis that refuses
// every write answers: one at its maxmemory under noeviction (OOM), or a
// primary short of its min-replicas-to-write (NOREPLICAS), as one whose
// RDB snapshot failed (MISCONF). Every replica read ready while no order,
// claim or notification could be recorded. Ping now also writes a probe
// key, at most once per writeProbeEvery (on a Redis with appendfsync
// always every write is a fsync, and a replica's readiness is checked
// every few seconds), and reports store.ErrWritesFail from a refused one
// until a later probe succeeds: made again at each Ping while refused, so
// that Redis taking writes again is seen at once.
func TestPingSaysWhenWritesFail(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		param         string
		refuse, allow string
	}{
		{"full, under noeviction", "maxmemory", "1", "0"},
		{"short of replicas", "min-replicas-to-write", "1", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.StartServer(t, "--maxmemory-policy", "noeviction")
			clock := storetest.NewClock()
			s := openOn(t, clock, Options{Addrs: []string{srv.Addr()}, EpochInterval: -1})
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping of a healthy Redis: %v", err)
			}
			admin := srv.Client()
			if err := admin.ConfigSet(ctx, tc.param, tc.refuse).Err(); err != nil {
				t.Fatal(err)
			}
			if err := admin.Set(ctx, "pgtest:control", "x", time.Minute).Err(); err == nil {
				t.Fatalf("a write succeeded with %s %s; the test refuses no writes", tc.param, tc.refuse)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping within %s of the last probe: %v; want no new probe", writeProbeEvery, err)
			}
			clock.Advance(writeProbeEvery)
			err := s.Ping(ctx)
			if !errors.Is(err, store.ErrWritesFail) || !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("Ping of a Redis that refuses writes: %v; want store.ErrWritesFail", err)
			}
			// While Redis refuses, each Ping probes again: a refused
			// write costs Redis no fsync, and a refusal that lasted a
			// moment (one OOM at a peak) must not keep every replica
			// not ready for writeProbeEvery after Redis took writes
			// again.
			if err := s.Ping(ctx); !errors.Is(err, store.ErrWritesFail) {
				t.Fatalf("Ping again while Redis refuses writes: %v; want store.ErrWritesFail", err)
			}
			if err := admin.ConfigSet(ctx, tc.param, tc.allow).Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping at once after Redis takes writes again: %v; want ready (a new probe)", err)
			}
			// Taken, the probe is made at most once per writeProbeEvery
			// again.
			if err := admin.ConfigSet(ctx, tc.param, tc.refuse).Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping within %s of a taken probe: %v; want no new probe", writeProbeEvery, err)
			}
			if err := admin.ConfigSet(ctx, tc.param, tc.allow).Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPingSaysWhenReplicasAreShort: with store.redis.wait_replicas, every
// money write waits for that many replicas and, short of them, is refused
// (fail closed) though Redis took it: the probe key, set without waiting,
// was taken, and every replica read ready while no order could be
// recorded, as with min-replicas-to-write, which Redis refuses itself.
// Ping now reports store.ErrWritesFail while a primary has fewer replicas
// connected than wait_replicas (the count the start-up warning reads), and
// ready at the first Ping once they are back.
func TestPingSaysWhenReplicasAreShort(t *testing.T) {
	ctx := context.Background()
	primary := redistest.StartServer(t)
	s := openOn(t, storetest.NewClock(), Options{Addrs: []string{primary.Addr()}, EpochInterval: -1, WaitReplicas: 1})
	err := s.Ping(ctx)
	if !errors.Is(err, store.ErrWritesFail) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping of a Redis without the replica wait_replicas asks for: %v; want store.ErrWritesFail", err)
	}
	redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	primary.WaitReplicas(1)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping once the replica is connected: %v; want ready", err)
	}
}

// TestWriteProbeRaisesNoGeneration: Ping's write probe is written as money
// writes are (a script, WAIT with wait_replicas), but it raised the
// generation counter too: every replica's probe, every writeProbeEvery,
// brought a counter that went back (a failover to a replica that lagged)
// back toward what the replicas that saw the lost writes had seen, and once
// above it they could no longer tell the loss. The probe writes its key
// and leaves the counter where it was; a money write still raises it.
func TestWriteProbeRaisesNoGeneration(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{srv.Addr()}, EpochInterval: -1})
	admin := srv.Client()
	gen := func() int64 {
		t.Helper()
		n, err := admin.Get(ctx, s.k.gen(0)).Int64()
		if err != nil && !errors.Is(err, goredis.Nil) {
			t.Fatal(err)
		}
		return n
	}
	probeKey := s.k.one("meta", "write-probe")
	before := gen()
	for i := range 3 {
		if err := admin.Del(ctx, probeKey).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping %d: %v", i, err)
		}
		if n, err := admin.Exists(ctx, probeKey).Result(); err != nil || n != 1 {
			t.Fatalf("Ping %d wrote no probe (exists %d, %v): the test checks nothing", i, n, err)
		}
		if got := gen(); got != before {
			t.Fatalf("Ping %d's write probe moved the generation counter from %d to %d", i, before, got)
		}
		clock.Advance(writeProbeEvery)
	}
	if err := s.CreateOrder(ctx, storetest.NewOrder("GEN-1", "shop", "u1", clock.Now())); err != nil {
		t.Fatal(err)
	}
	if got := gen(); got != before+1 {
		t.Fatalf("a money write moved the generation counter from %d to %d; want one raise", before, got)
	}
}
