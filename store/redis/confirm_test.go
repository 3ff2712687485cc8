package redis

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestConfirmOrder: ConfirmOrder answers whether the order is on a
// replica by a write and WAIT on its primary, and leaves Redis as it found
// it (no key, no generation raise: it is no money write); refused, as the
// write's own report was, while the replica takes nothing; without
// wait_replicas, nil without a round trip.
func TestConfirmOrder(t *testing.T) {
	ctx := context.Background()
	fast := []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}
	primary := redistest.StartServer(t, fast...)
	replica := redistest.StartServer(t, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.Port)}, fast...)...)
	primary.WaitReplicas(1)
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{primary.Addr()}, EpochInterval: -1, WaitReplicas: 1, WaitTimeout: time.Second})
	if err := s.CreateOrder(ctx, storetest.NewOrder("CONFIRM-1", "shop", "u1", clock.Now())); err != nil {
		t.Fatal(err)
	}
	admin := primary.Client()
	before := redistest.PrefixState(t, admin, s.k.p)
	if err := s.ConfirmOrder(ctx, "CONFIRM-1"); err != nil {
		t.Fatalf("confirm with the replica connected: %v", err)
	}
	if d := redistest.DiffState(before, redistest.PrefixState(t, admin, s.k.p)); len(d) > 0 {
		t.Errorf("confirm changed Redis: %v", d)
	}
	if err := replica.Client().ReplicaOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	primary.WaitReplicas(0)
	if err := s.ConfirmOrder(ctx, "CONFIRM-1"); !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, errNotReplicated) {
		t.Errorf("confirm without a replica: %v; want store.ErrUnavailable (not replicated)", err)
	}
	none, err := Open(Options{Addrs: []string{redistest.RefusedAddr}, KeyPrefix: testPrefix(), RepairInterval: -1, EpochInterval: -1, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	if err := none.ConfirmOrder(ctx, "CONFIRM-1"); err != nil {
		t.Errorf("confirm without wait_replicas: %v; want nil at once", err)
	}
}
