package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestSentinelFailover forces a failover with the store in use. The same
// Store goes on on the new master: what it wrote before is there, and it
// writes orders, outbox events and audit links. With wait_replicas, money
// writes fail closed, within the wait, while no replica acknowledges (the
// old master is gone), and pass again once the new master has a replica.
func TestSentinelFailover(t *testing.T) {
	set := redistest.StartSentinel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // no call may hang
	defer cancel()
	clock := storetest.NewClock()
	opts := sentinelOptions(set, testPrefix())
	s := openOn(t, clock, opts)
	wopts := opts
	wopts.WaitReplicas, wopts.WaitTimeout = 1, time.Second
	w := openOn(t, clock, wopts) // a replica configured with wait_replicas: 1

	// In use: an order with its outbox event and an audit link, acknowledged
	// by the replica that is about to become the master.
	mustNil(t, "CreateOrder before the failover", w.CreateOrder(ctx, storetest.NewOrder("FO-1", "shop", "u1", clock.Now()),
		store.Event{ID: "fo-e1", Kind: "webhook"}))
	rec1 := store.AuditRecord{Seq: 1, Hash: "h1", Body: []byte(`{"n":1}`)}
	mustNil(t, "AppendAudit before the failover", w.AppendAudit(ctx, rec1))
	before, err := s.GetOrder(ctx, "FO-1")
	mustNil(t, "GetOrder before the failover", err)

	// A reader keeps using the store through the failover: a read may fail
	// as unavailable while the master changes, never find the order gone.
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() {
		var bad error
		for reads := 0; ; reads++ {
			select {
			case <-stop:
				if bad == nil && reads == 0 {
					bad = errors.New("no read ran")
				}
				readerDone <- bad
				return
			default:
			}
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.GetOrder(rctx, "FO-1")
			rcancel()
			if err != nil && !errors.Is(err, store.ErrUnavailable) && bad == nil {
				bad = err
			}
		}
	}()

	old := set.Master
	set.Failover()
	// The old master is lost with the failover, so the new one has no
	// replica: WAIT cannot be acknowledged.
	old.Kill()
	close(stop)
	if err := <-readerDone; err != nil {
		t.Errorf("a read during the failover: %v; want the order or ErrUnavailable", err)
	}

	t.Run("the same Store writes on the new master", func(t *testing.T) {
		got, err := s.GetOrder(ctx, "FO-1")
		mustNil(t, "GetOrder of the order created before", err)
		if got.Version != before.Version || got.Status != before.Status {
			t.Errorf("order created before: got v%d %s; want v%d %s", got.Version, got.Status, before.Version, before.Status)
		}
		mustNil(t, "CreateOrder", s.CreateOrder(ctx, storetest.NewOrder("FO-2", "shop", "u1", clock.Now()),
			store.Event{ID: "fo-e2", Kind: "webhook"}))
		if _, err := s.GetOrder(ctx, "FO-2"); err != nil {
			t.Errorf("GetOrder of the new order: %v", err)
		}
		got.Status = store.StatusPaid
		mustNil(t, "UpdateOrder of the order created before", s.UpdateOrder(ctx, got, store.StatusAwaitingPayment))
		us, err := s.LoadUserState(ctx, "shop", "u1")
		mustNil(t, "LoadUserState", err)
		if len(us.Orders) != 2 {
			t.Errorf("user state: got %d orders; want 2", len(us.Orders))
		}
		mustNil(t, "EnqueueEvents", s.EnqueueEvents(ctx, store.Event{ID: "fo-e3", Kind: "audit", Key: "fo-audit"}))
		evs, err := s.DueEvents(ctx, clock.Now().Add(time.Minute), store.MaxListLimit)
		mustNil(t, "DueEvents", err)
		if got := strings.Join(ids(evs), ","); got != "fo-e1,fo-e2,fo-e3" {
			t.Errorf("due events: got %s; want fo-e1,fo-e2,fo-e3", got)
		}
		mustNil(t, "AppendAudit", s.AppendAudit(ctx, store.AuditRecord{Seq: 2, PrevHash: rec1.Hash, Hash: "h2", Body: []byte(`{"n":2}`)}))
		recs, err := s.ReadAudit(ctx, 1, 10)
		mustNil(t, "ReadAudit", err)
		if len(recs) != 2 || recs[0].Hash != "h1" || recs[1].Hash != "h2" {
			t.Errorf("audit chain: got %+v; want h1, h2", recs)
		}
		mustNil(t, "Ping", s.Ping(ctx))
		info, err := s.Client().Info(ctx, "server").Result()
		mustNil(t, "INFO", err)
		if !strings.Contains(info, "tcp_port:"+strconv.Itoa(set.Master.Port)+"\r\n") {
			t.Errorf("the store's commands go to:\n%s\nwant the new master on port %d", info, set.Master.Port)
		}
	})

	t.Run("wait_replicas without a replica fails closed", func(t *testing.T) {
		// Bounded well above WaitTimeout: a loaded CI machine.
		const bound = 10 * time.Second
		cases := []struct {
			name string
			call func(ctx context.Context) error
		}{
			{"CreateOrder", func(ctx context.Context) error {
				return w.CreateOrder(ctx, storetest.NewOrder("FO-3", "shop", "u1", clock.Now()))
			}},
			{"ClaimPurchase", func(ctx context.Context) error {
				_, _, err := w.ClaimPurchase(ctx, "fo-claim", "FO-3", time.Minute)
				return err
			}},
			{"AppendAudit", func(ctx context.Context) error {
				head, err := w.AuditHead(ctx)
				if err != nil {
					return err
				}
				return w.AppendAudit(ctx, store.AuditRecord{Seq: head.Seq + 1, PrevHash: head.Hash, Hash: "h-unacked", Body: []byte(`{}`)})
			}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				cctx, cancel := context.WithTimeout(ctx, bound)
				defer cancel()
				start := time.Now()
				err := c.call(cctx)
				took := time.Since(start)
				if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, errNotReplicated) {
					t.Errorf("got %v after %s; want ErrUnavailable, not replicated", err, took)
				}
				if took >= bound {
					t.Errorf("took %s, the whole bound: the wait (%s) does not end the call", took, wopts.WaitTimeout)
				}
				if took < wopts.WaitTimeout {
					t.Errorf("failed after %s, before the wait (%s) was over: %v", took, wopts.WaitTimeout, err)
				}
			})
		}
		if _, err := w.GetOrder(ctx, "FO-3"); err != nil {
			t.Errorf("the master applies a write it reports unreplicated (Options.WaitReplicas): %v", err)
		}
	})

	t.Run("wait_replicas with a replica again", func(t *testing.T) {
		r := redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(set.Master.Port))
		set.Master.WaitReplicas(1)
		mustNil(t, "CreateOrder", w.CreateOrder(ctx, storetest.NewOrder("FO-4", "shop", "u1", clock.Now())))
		rk, _, _ := w.k.orderTag("FO-4")
		if n, err := r.Client().Exists(ctx, rk).Result(); err != nil || n != 1 {
			t.Errorf("the replica does not have the acknowledged order: %d, %v", n, err)
		}
		head, err := w.AuditHead(ctx)
		mustNil(t, "AuditHead", err)
		mustNil(t, "AppendAudit", w.AppendAudit(ctx, store.AuditRecord{Seq: head.Seq + 1, PrevHash: head.Hash, Hash: "h-acked", Body: []byte(`{}`)}))
		mustNil(t, "Ping", w.Ping(ctx))
		mustNil(t, "Ping", s.Ping(ctx))
	})
}

func mustNil(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
