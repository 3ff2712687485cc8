package redis

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// wantDataLost fails unless err is store.ErrUnavailable naming the loss.
func wantDataLost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "lost its data") {
		t.Errorf("%s: %v; want ErrUnavailable saying Redis lost its data", what, err)
	}
}

// waitLost polls the Store's flag, set by its background epoch check.
func waitLost(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.lost.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the Store did not notice within 10s that Redis went back to an earlier state")
		}
		time.Sleep(time.Millisecond) // poll the condition
	}
}

// TestRolledBackRedisIsRefused: Redis restarted from its last snapshot (or an
// AOF missing its last second, or a failover to a lagging replica) still has
// the epoch marker, written long before, but not the claims, orders and audit
// records written since. The Store must notice, or the same purchase is
// claimed again with a new number while the first order, whose payment
// parameters the user holds, may still be paid. Every way the Store reaches
// Redis notices: Ping, the background check, the next money write. Another
// replica that saw none of the lost writes is stopped too, and a replica
// started afterwards adopts the state as it is (restart every replica, then
// reconcile).
func TestRolledBackRedisIsRefused(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		interval time.Duration
		notice   func(t *testing.T, s *Store)
	}{
		{"found by Ping", -1, func(t *testing.T, s *Store) {
			wantDataLost(t, "Ping after Redis lost the writes since its snapshot", s.Ping(ctx))
		}},
		{"found by the background check", 5 * time.Millisecond, waitLost},
		{"found by the next money write", -1, func(t *testing.T, s *Store) {
			_, _, err := s.ClaimPurchase(ctx, "shop|u2|premium|1", "ORD-OTHER", time.Hour)
			wantDataLost(t, "the first money write after the rollback", err)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.StartServer(t)
			prefix := testPrefix()
			a := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, EpochInterval: tc.interval})
			b := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, EpochInterval: -1})
			for _, s := range []*Store{a, b} {
				if err := s.Ping(ctx); err != nil {
					t.Fatal(err)
				}
			}
			c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
			defer c.Close()
			if err := c.Save(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			claim, created, err := a.ClaimPurchase(ctx, "shop|u1|premium|1", "ORD-FIRST", time.Hour)
			if err != nil || !created {
				t.Fatalf("first claim: %+v %v %v", claim, created, err)
			}
			now := time.Now()
			o := &store.Order{OrderNo: "ORD-FIRST", Client: "shop", User: "u1", SKU: "premium", Quantity: 1,
				AmountFen: 4999, Currency: "CNY", Status: store.StatusAwaitingPayment, CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)}
			if err := a.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}

			srv.Kill()
			srv.Restart() // from the snapshot: the marker is there, the claim and the order are not

			tc.notice(t, a)
			wantDataLost(t, "Ping after the rollback", a.Ping(ctx))
			again, created2, err := a.ClaimPurchase(ctx, "shop|u1|premium|1", "ORD-SECOND", time.Hour)
			if err == nil && created2 {
				t.Errorf("the same purchase was claimed again with a new number %s while %s may still be paid", again.OrderNo, claim.OrderNo)
			}
			wantDataLost(t, "ClaimPurchase after the rollback", err)
			ck, _ := a.k.claim("shop|u1|premium|1")
			if n, err := c.Exists(ctx, ck).Result(); err != nil || n != 0 {
				t.Errorf("the purchase's claim is in Redis again: %d %v", n, err)
			}

			// b saw nothing that was lost; a told it through the marker.
			wantDataLost(t, "Ping of another replica", b.Ping(ctx))
			_, _, err = b.ClaimPurchase(ctx, "shop|u1|premium|1", "ORD-THIRD", time.Hour)
			wantDataLost(t, "ClaimPurchase on another replica", err)

			fresh := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, EpochInterval: -1})
			if err := fresh.Ping(ctx); err != nil {
				t.Errorf("Ping of a replica started after the rollback: %v; want ok", err)
			}
		})
	}
}

// TestOneLostWriteFoundByTheNextWrite: a restarted Redis has no script
// cached, so the first money write after the restart answers NOSCRIPT and
// is sent again; the generation raise pipelined behind the refused script
// ran all the same. Unchecked, it made up for exactly one lost write, and
// the write after a rollback that lost one was granted (the background
// check, reading the counter later, could no longer tell either).
func TestOneLostWriteFoundByTheNextWrite(t *testing.T) {
	ctx := context.Background()
	a := oneClaimRolledBack(t)

	_, created, err := a.ClaimPurchase(ctx, "shop|u2|premium|1", "ORD-AGAIN", time.Hour)
	if err == nil && created {
		t.Errorf("the purchase whose claim was lost was claimed again with a new number after the rollback")
	}
	wantDataLost(t, "the first money write after a rollback that lost one", err)
}

// TestAnnouncementClaimSurvivesRollback: a payment_confirmed announcement
// claimed after Redis's last snapshot is lost with everything written since
// when Redis restarts from it (or fails over to a replica that lagged), and
// bots deliver goods on payment_confirmed: the claim must be refused then,
// never granted a second time. The counter it was claimed with before
// (IncrCounter, without the generation raise) was granted again with Ping
// reporting nothing.
func TestAnnouncementClaimSurvivesRollback(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		notice func(t *testing.T, s *Store)
	}{
		{"found by Ping", func(t *testing.T, s *Store) {
			wantDataLost(t, "Ping after Redis lost the claim", s.Ping(ctx))
		}},
		{"found by the claim itself", func(*testing.T, *Store) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.StartServer(t)
			a := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, EpochInterval: -1})
			if err := a.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			o := &store.Order{OrderNo: "ORD-PAID", Client: "shop", User: "u1", SKU: "premium", Quantity: 1,
				AmountFen: 4999, Currency: "CNY", Status: store.StatusPaid, CreatedAt: now, PaidAt: now}
			if err := a.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
			defer c.Close()
			if err := c.Save(ctx).Err(); err != nil { // the paid order is in the snapshot
				t.Fatal(err)
			}
			if first, err := a.ClaimAnnouncement(ctx, "shop", "u1", "announced:", "ORD-PAID", 30*24*time.Hour); err != nil || !first {
				t.Fatalf("first announcement claim: %v %v", first, err)
			}
			srv.Kill()
			srv.Restart() // from the snapshot: the paid order is there, the claim is not

			tc.notice(t, a)
			first, err := a.ClaimAnnouncement(ctx, "shop", "u1", "announced:", "ORD-PAID", 30*24*time.Hour)
			if err == nil && first {
				t.Errorf("after Redis went back to before the announcement, its claim was granted again: payment_confirmed announced twice")
			}
			wantDataLost(t, "ClaimAnnouncement after the rollback", err)
		})
	}
}

// TestRolledBackShardIsRefused: in a cluster each primary has its own
// counter, so a shard that went back is found although the marker, on
// another shard, is intact.
func TestRolledBackShardIsRefused(t *testing.T) {
	ctx := context.Background()
	srvs := startClusterServers(t, 3, 0)
	addrs := addrsOf(srvs)
	prefix := testPrefix()
	a := openOn(t, nil, Options{Addrs: addrs, KeyPrefix: prefix, EpochInterval: -1})
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	cc := a.Client().(*goredis.ClusterClient)
	markerNode, err := cc.MasterForKey(ctx, a.k.one("meta", "epoch"))
	if err != nil {
		t.Fatal(err)
	}
	// A purchase whose claim is on another shard than the marker.
	var key string
	var node *goredis.Client
	for i := 0; node == nil; i++ {
		key = "shop|u" + string(rune('a'+i)) + "|premium|1"
		ck, _ := a.k.claim(key)
		n, err := cc.MasterForKey(ctx, ck)
		if err != nil {
			t.Fatal(err)
		}
		if n.Options().Addr != markerNode.Options().Addr {
			node = n
		}
	}
	var srv *redistest.Server
	for _, s := range srvs {
		if s.Addr() == node.Options().Addr {
			srv = s
		}
	}
	if err := node.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, created, err := a.ClaimPurchase(ctx, key, "ORD-FIRST", time.Hour); err != nil || !created {
		t.Fatalf("first claim: %v %v", created, err)
	}
	srv.Kill()
	srv.Restart()
	waitClusterOK(t, addrs)

	wantDataLost(t, "Ping after a shard went back", a.Ping(ctx))
	_, created, err := a.ClaimPurchase(ctx, key, "ORD-SECOND", time.Hour)
	if err == nil && created {
		t.Errorf("the same purchase was claimed again after its shard went back")
	}
	wantDataLost(t, "ClaimPurchase after a shard went back", err)
}

// TestLossFoundByAWriteSparesNewReplicas: after a restart without
// persistence a replica started since has adopted the new, empty Redis. An
// older replica whose next money write finds its counter gone must refuse,
// but must not change the marker the new one adopted (that is only done
// while the marker is still the old replica's own).
func TestLossFoundByAWriteSparesNewReplicas(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	prefix := testPrefix()
	old := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, EpochInterval: -1})
	if _, _, err := old.ClaimPurchase(ctx, "before", "ORD-BEFORE", time.Hour); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Restart()
	fresh := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, EpochInterval: -1})
	if err := fresh.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, err := old.ClaimPurchase(ctx, "after", "ORD-AFTER", time.Hour)
	wantDataLost(t, "the old replica's money write after the loss", err)
	if !errors.Is(err, errDataLost) {
		t.Errorf("cause: %v; want the marker's (errDataLost): the marker was not this replica's any more", err)
	}
	if err := fresh.Ping(ctx); err != nil {
		t.Errorf("Ping of the replica started after the loss: %v; want ok (its marker kept)", err)
	}
}

// TestLossFoundByTheFirstWriteOfAReplicaThatSawNoRaise: two replicas, the
// second opened before the first's money writes and not checking since (its
// background check is a second apart; here it is off). Redis loses its data
// (a flush, a restart without persistence; a cluster's keys dropped, its
// writes waiting for a replica); the first replica's claim of a purchase is
// gone. The second's claim of the same purchase, its first money write
// since, must be refused: its counter had seen no raise, so the raise
// behind its write looked new, and it claimed the purchase again with a
// new number while the first order may still be paid. The epoch marker its
// write finds gone says the loss.
func TestLossFoundByTheFirstWriteOfAReplicaThatSawNoRaise(t *testing.T) {
	single := func(lose func(*redistest.Server)) func(t *testing.T) (Options, func()) {
		return func(t *testing.T) (Options, func()) {
			srv := redistest.StartServer(t)
			return Options{Addrs: []string{srv.Addr()}}, func() { lose(srv) }
		}
	}
	cluster := func(start func(testing.TB) []string, opts Options) func(t *testing.T) (Options, func()) {
		return func(t *testing.T) (Options, func()) {
			opts.Addrs = start(t)
			return opts, func() {
				cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: opts.Addrs})
				defer cc.Close()
				dropPrefix(t, cc, "")
			}
		}
	}
	for _, tt := range []struct {
		name  string
		start func(t *testing.T) (Options, func())
	}{
		{"flushed", single(func(s *redistest.Server) { _ = s.Client().FlushAll(context.Background()).Err() })},
		{"restarted empty", single((*redistest.Server).Restart)},
		{"cluster, keys dropped", cluster(startCluster, Options{})},
		{"cluster with wait_replicas, keys dropped", cluster(startClusterWithReplicas, Options{WaitReplicas: 1, WaitTimeout: 2 * time.Second})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			opts, lose := tt.start(t)
			opts.KeyPrefix, opts.EpochInterval = testPrefix(), -1
			a, b := openOn(t, nil, opts), openOn(t, nil, opts)
			const key = "shop|u1|premium|1"
			if _, created, err := a.ClaimPurchase(ctx, key, "ORD-FIRST", time.Hour); err != nil || !created {
				t.Fatalf("first claim: %v %v", created, err)
			}
			lose()
			c, created, err := b.ClaimPurchase(ctx, key, "ORD-AGAIN", time.Hour)
			if err == nil {
				t.Errorf("the second replica claimed the purchase again after the loss (%s, created %v); want it refused", c.OrderNo, created)
			}
			wantDataLost(t, "the second replica's first money write after the loss", err)
			if _, _, err := b.ClaimPurchase(ctx, "shop|u2|premium|1", "ORD-OTHER", time.Hour); err == nil {
				t.Errorf("the second replica's next money write after the loss was granted; want every one refused")
			}
		})
	}
}

// lateFirstIntent moves the deadline of the first intent its client
// records back by by: a writer stalled before its money step once, as one
// retrying through a failover is.
type lateFirstIntent struct {
	sha  string
	by   time.Duration
	done *atomic.Bool
}

func (h lateFirstIntent) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h lateFirstIntent) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && runs(cmd, h.sha) && h.done.CompareAndSwap(false, true) {
			shiftDeadline(cmd, h.by)
		}
		return err
	}
}

func (h lateFirstIntent) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestOneLostWriteFoundByAStaleWrite: the generation raise pipelined behind
// a money script runs whatever the script answers. A writer whose intent
// went stale while Redis failed over (a failover to a replica that lagged
// takes longer than the fence) has its first money step refused as stale;
// the raise behind it, unchecked, made up for exactly one lost write, and
// the step retried under a fresh intent was granted after the rollback.
func TestOneLostWriteFoundByAStaleWrite(t *testing.T) {
	ctx := context.Background()
	a := oneClaimRolledBack(t)
	// The scripts are cached again (a replica started since loads them),
	// so no NOSCRIPT reply makes the first write after the rollback check
	// its raise.
	a.loadScripts(ctx)
	a.Client().AddHook(lateFirstIntent{sha: a.sc.intent.Hash(), by: DefaultRepairGrace, done: new(atomic.Bool)})

	o := storetest.NewOrder("ORD-AGAIN", "shop", "u2", time.Now())
	err := a.CreateOrder(ctx, o)
	if err == nil {
		t.Errorf("an order was created after a rollback that lost a money write")
	}
	wantDataLost(t, "the first money write after a rollback that lost one, refused as stale once", err)
}

// oneClaimRolledBack opens a store on a private Redis, claims a purchase
// (u1's), snapshots, claims another (u2's, ORD-LOST) and restarts Redis from
// the snapshot: one money write lost.
func oneClaimRolledBack(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	srv := redistest.StartServer(t)
	a := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, EpochInterval: -1})
	if _, _, err := a.ClaimPurchase(ctx, "shop|u1|premium|1", "ORD-KEPT", time.Hour); err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer c.Close()
	if err := c.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.ClaimPurchase(ctx, "shop|u2|premium|1", "ORD-LOST", time.Hour); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Restart() // from the snapshot: one money write lost
	return a
}
