package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

func TestConformanceSingle(t *testing.T) {
	requireSharedRedis(t)
	storetest.Run(t, func(t testing.TB, clock *storetest.Clock) store.Store {
		return openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	})
}

func TestSharedSingle(t *testing.T) {
	requireSharedRedis(t)
	storetest.RunShared(t, func(t testing.TB, clock *storetest.Clock) (store.Store, store.Store) {
		prefix := testPrefix()
		a := openOn(t, clock, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
		b := openOn(t, clock, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
		return a, b
	})
}

// TestCluster runs the whole suite, the two-replica checks and the
// round-trip count on a three-node cluster the test starts; a CROSSSLOT error
// anywhere fails it.
func TestCluster(t *testing.T) {
	addrs := startCluster(t)
	open := func(t testing.TB, clock *storetest.Clock, prefix string) *Store {
		return openOn(t, clock, Options{Addrs: addrs, KeyPrefix: prefix})
	}
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
	t.Run("OutOfOrderSync", func(t *testing.T) { testOutOfOrderSync(t, open(t, storetest.NewClock(), "")) })
	t.Run("ListByClientOfAnEarlierVersion", func(t *testing.T) {
		testListByClientOfAnEarlierVersion(t, func(t *testing.T, clock *storetest.Clock) *Store { return open(t, clock, "") })
	})
	t.Run("Repair", func(t *testing.T) {
		clock := storetest.NewClock()
		testRepair(t, clock, open(t, clock, ""))
	})
	t.Run("RepairBeforeTheMoneyStep", func(t *testing.T) { testRepairBeforeTheMoneyStep(t, open) })
	t.Run("RefundRecordCopy", func(t *testing.T) { testRefundRecordCopyInACluster(t, addrs) })
	t.Run("AuditStrays", func(t *testing.T) {
		testAuditStrays(t, func(t *testing.T) *Store { return open(t, storetest.NewClock(), "") })
	})
	t.Run("Owner", func(t *testing.T) {
		// A Store with an owner makes its first check before the first
		// command reaches Redis. In a cluster that check's own write makes
		// the cluster client ask a node for its command table (COMMAND)
		// with a context of its own: the node's guard started the first
		// check again, under the lock the first one held, and Open hung.
		opts := Options{Addrs: addrs[:1], Cluster: true, KeyPrefix: testPrefix(), Owner: "wechatpay:1900000109", RepairInterval: -1}
		type result struct {
			s   *Store
			err error
		}
		opened := make(chan result, 1)
		go func() {
			s, err := Open(opts)
			opened <- result{s, err}
		}()
		select {
		case r := <-opened:
			if r.err != nil {
				t.Fatalf("Open: %v", r.err)
			}
			t.Cleanup(func() {
				c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: opts.Addrs})
				dropPrefix(t, c, opts.KeyPrefix)
				_ = c.Close()
				_ = r.s.Close()
			})
			testRoundTrips(t, r.s)
		case <-time.After(time.Minute):
			t.Fatal("Open of a cluster Store with an owner did not return in a minute")
		}
	})
	t.Run("SeedOnly", func(t *testing.T) {
		s := openOn(t, nil, Options{Addrs: addrs[:1], Cluster: true})
		if _, ok := s.Client().(*goredis.ClusterClient); !ok {
			t.Fatalf("Cluster with one seed: got %T; want a cluster client", s.Client())
		}
		testRoundTrips(t, s)
	})
}

// roundTrips counts commands and pipelines sent: each is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

func TestRoundTripsSingle(t *testing.T) {
	requireSharedRedis(t)
	testRoundTrips(t, openOn(t, storetest.NewClock(), Options{Addrs: []string{sharedAddr}}))
}

// testRoundTrips: a turn's state load is one round trip, for a user with no
// state and for one with orders.
func testRoundTrips(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.CreateOrder(ctx, storetest.NewOrder("RT-1", "shop", "has-orders", time.Now())); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	if err := s.CreateOrder(ctx, storetest.NewOrder("RT-2", "shop", "announced", time.Now())); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	if _, err := s.ClaimAnnouncement(ctx, "shop", "announced", "payable:", "RT-2", time.Hour); err != nil {
		t.Fatalf("ClaimAnnouncement: %v", err)
	}
	counter := &roundTrips{}
	s.Client().AddHook(counter)
	cases := []struct {
		name      string
		user      string
		orders    int
		announced int
	}{
		{"user with no payment state", "nobody", 0, 0},
		{"user with an order", "has-orders", 1, 0},
		{"user with an announced order", "announced", 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := counter.n.Load()
			us, err := s.LoadUserState(ctx, "shop", tc.user)
			if err != nil {
				t.Fatalf("LoadUserState: %v", err)
			}
			if got := counter.n.Load() - before; got != 1 {
				t.Errorf("round trips: got %d; want 1", got)
			}
			if len(us.Orders) != tc.orders {
				t.Errorf("orders: got %d; want %d", len(us.Orders), tc.orders)
			}
			if len(us.Announced) != tc.announced {
				t.Errorf("announced: got %v; want %d", us.Announced, tc.announced)
			}
		})
	}
	// The audit worker's pass every poll interval: a due read, of its kind
	// or of all, with a few events due is one range read and one pipeline.
	if err := s.EnqueueEvents(ctx, store.Event{ID: "rt-a", Kind: "audit", Key: "RT-1"},
		store.Event{ID: "rt-w", Kind: "webhook", Key: "webhook:RT-1"}); err != nil {
		t.Fatalf("EnqueueEvents: %v", err)
	}
	for _, tc := range []struct {
		name  string
		kinds []string
		due   int
	}{
		{"due read of a kind", []string{"audit"}, 1},
		{"due read of every kind", nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counter.n.Load()
			evs, err := s.DueEvents(ctx, time.Now().Add(time.Second), store.MaxListLimit, tc.kinds...)
			if err != nil {
				t.Fatalf("DueEvents: %v", err)
			}
			if got := counter.n.Load() - before; got != 2 {
				t.Errorf("round trips: got %d; want 2", got)
			}
			if len(evs) != tc.due {
				t.Errorf("due: got %d; want %d", len(evs), tc.due)
			}
		})
	}
}

func TestRepairSingle(t *testing.T) {
	requireSharedRedis(t)
	clock := storetest.NewClock()
	testRepair(t, clock, openOn(t, clock, Options{Addrs: []string{sharedAddr}}))
}

// testRepair simulates a crash right after the money step of a create (intent
// and order script ran, the user copy and indexes did not) and after an intent
// whose write never ran; Repair makes the first visible everywhere and drops
// the second.
func testRepair(t *testing.T, clock *storetest.Clock, s *Store) {
	ctx := context.Background()
	o := storetest.NewOrder("CR-1", "shop", "crashy", clock.Now())
	o.Version = 1
	elems, err := s.orderEvents(o.OrderNo, []store.Event{{ID: "cr-e1", Kind: "webhook"}})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.intent(ctx, o.OrderNo)
	if err != nil {
		t.Fatal(err)
	}
	j := mustJSON(t, o)
	rk, ob, obv := s.k.orderTag(o.OrderNo)
	args := createOrderArgs(j, o, in.tok, elems, in.fence())
	if _, err := s.run(ctx, "create order", s.sc.createOrder, []string{rk, ob, obv}, args...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.intent(ctx, "CR-never"); err != nil {
		t.Fatal(err)
	}

	visible := func() (state, listed, due bool) {
		us, err := s.LoadUserState(ctx, "shop", "crashy")
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.ListOrders(ctx, store.OrderFilter{Status: store.StatusAwaitingPayment})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := s.DueEvents(ctx, clock.Now(), 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(us.Orders) == 1, len(list) == 1, len(evs) == 1 && evs[0].ID == "cr-e1"
	}
	if st, l, d := visible(); st || l || d {
		t.Fatalf("before repair: state=%v listed=%v due=%v; the simulated crash should hide the order", st, l, d)
	}
	if _, err := s.GetOrder(ctx, "CR-1"); err != nil {
		t.Fatalf("the committed order must be readable by number: %v", err)
	}

	n, err := s.Repair(ctx)
	if err != nil || n != 0 {
		t.Fatalf("Repair within the grace period: got %d, %v; want 0 (the writer may still be running)", n, err)
	}
	ageNotes(t, s, DefaultRepairGrace+time.Second)
	n, err = s.Repair(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Repair: got %d, %v; want 2 intents replayed", n, err)
	}
	if st, l, d := visible(); !st || !l || !d {
		t.Errorf("after repair: state=%v listed=%v due=%v; want all visible", st, l, d)
	}
	left, err := s.c.ZCard(ctx, s.k.idx("notes")).Result()
	if err != nil || left != 0 {
		t.Errorf("intents left after repair: %d, %v; want 0", left, err)
	}

	t.Run("a stale outbox index heals on read", func(t *testing.T) {
		// Ack without its index step: the index still names CR-1.
		if _, err := s.run(ctx, "ack", s.sc.ack, []string{ob, obv}, "cr-e1"); err != nil {
			t.Fatal(err)
		}
		evs, err := s.DueEvents(ctx, clock.Now(), 10)
		if err != nil || len(evs) != 0 {
			t.Fatalf("DueEvents: got %v, %v; want nothing", ids(evs), err)
		}
		if n, err := s.c.ZCard(ctx, s.k.idx("ob")).Result(); err != nil || n != 0 {
			t.Errorf("index entries after the healing read: %d, %v; want 0", n, err)
		}
	})
}

func ids(evs []store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

// TestUnavailable stops a private Redis mid-test: every call fails with
// store.ErrUnavailable (no panic, no hang), and the store recovers when the
// server is back, with what it had committed. The dial and read timeouts
// are 2s and 5s, not 200ms and 500ms: a killed server refuses at once
// whatever they are, while the writes around the outage (each fsynced, the
// AOF set to always) must beat them, which a loaded CI machine's disk and
// scheduler did not promise within 500ms.
func TestUnavailable(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	s := openOn(t, storetest.NewClock(), Options{Addrs: []string{srv.Addr()}, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second})
	ctx := context.Background()
	if err := s.CreateOrder(ctx, storetest.NewOrder("UN-1", "shop", "u1", time.Now())); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}

	srv.Kill()

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
		{"GetOrder", func(ctx context.Context) error { _, err := s.GetOrder(ctx, "UN-1"); return err }},
		{"CreateOrder", func(ctx context.Context) error {
			return s.CreateOrder(ctx, storetest.NewOrder("UN-2", "shop", "u1", time.Now()))
		}},
		{"UpdateOrder", func(ctx context.Context) error {
			o := storetest.NewOrder("UN-1", "shop", "u1", time.Now())
			return s.UpdateOrder(ctx, o, store.StatusAwaitingPayment)
		}},
		{"LoadUserState", func(ctx context.Context) error { _, err := s.LoadUserState(ctx, "shop", "u1"); return err }},
		{"ClaimPurchase", func(ctx context.Context) error {
			_, _, err := s.ClaimPurchase(ctx, "k", "UN-3", time.Minute)
			return err
		}},
		{"SeenNotification", func(ctx context.Context) error { _, err := s.SeenNotification(ctx, "n", time.Minute); return err }},
		{"ConsumeRefundProposal", func(ctx context.Context) error { _, err := s.ConsumeRefundProposal(ctx, "r", "u1"); return err }},
		{"DueEvents", func(ctx context.Context) error { _, err := s.DueEvents(ctx, time.Now(), 10); return err }},
		{"AppendAudit", func(ctx context.Context) error { return s.AppendAudit(ctx, store.AuditRecord{Seq: 1, Hash: "h"}) }},
		{"Repair", func(ctx context.Context) error { _, err := s.Repair(ctx); return err }},
	}
	for _, c := range calls {
		t.Run("down/"+c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := c.call(ctx)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("got %v; want an error wrapping store.ErrUnavailable", err)
			}
		})
	}
	t.Run("deadline is unavailable too", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
		defer cancel()
		<-ctx.Done()
		if _, err := s.GetOrder(ctx, "UN-1"); !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v; want ErrUnavailable wrapping the deadline", err)
		}
	})

	srv.Restart()

	// go-redis backs off dialing after failures; the store must come back
	// on its own within a few seconds.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling the restarted process
	}
	got, err := s.GetOrder(ctx, "UN-1")
	if err != nil || got.OrderNo != "UN-1" {
		t.Fatalf("GetOrder after restart: %+v, %v", got, err)
	}
	if err := s.CreateOrder(ctx, storetest.NewOrder("UN-4", "shop", "u1", time.Now())); err != nil {
		t.Fatalf("CreateOrder after restart: %v", err)
	}
	us, err := s.LoadUserState(ctx, "shop", "u1")
	if err != nil || len(us.Orders) < 2 {
		t.Fatalf("LoadUserState after restart: %+v, %v", us, err)
	}
}

// TestWaitReplicas: with wait_replicas a money write returns once a replica
// has it; with the replica gone it is reported unavailable (fail closed),
// although the primary applied it.
func TestWaitReplicas(t *testing.T) {
	primary := redistest.StartServer(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	primary.WaitReplicas(1)
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: []string{primary.Addr()}, WaitReplicas: 1, WaitTimeout: 2 * time.Second}) // generous: a loaded CI machine
	ctx := context.Background()
	o := storetest.NewOrder("WR-1", "shop", "u1", clock.Now())
	if err := s.CreateOrder(ctx, o); err != nil {
		t.Fatalf("CreateOrder with a replica online: %v", err)
	}
	rc := goredis.NewClient(&goredis.Options{Addr: replica.Addr()})
	defer rc.Close()
	rk, _, _ := s.k.orderTag("WR-1")
	if n, err := rc.Exists(ctx, rk).Result(); err != nil || n != 1 {
		t.Errorf("the replica does not have the acknowledged order: %d, %v", n, err)
	}
	if _, _, err := s.ClaimPurchase(ctx, "wr-claim", "WR-1", time.Minute); err != nil {
		t.Errorf("ClaimPurchase with a replica online: %v", err)
	}
	if first, err := s.ClaimAnnouncement(ctx, "shop", "u1", "announced:", "WR-1", time.Hour); err != nil || !first {
		t.Errorf("ClaimAnnouncement with a replica online: %v, %v; want first", first, err)
	}
	if n, err := rc.Exists(ctx, s.k.userAnnounced("shop", "u1")).Result(); err != nil || n != 1 {
		t.Errorf("the replica does not have the acknowledged announcement claim: %d, %v", n, err)
	}

	replica.Kill()
	// The primary notices the lost replica only after a while; WAIT then sees
	// 0 replicas for the new write either way.
	o.Status = store.StatusPaid
	err := s.UpdateOrder(ctx, o, store.StatusAwaitingPayment)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("UpdateOrder without a replica: got %v; want ErrUnavailable", err)
	}
	got, gerr := s.GetOrder(ctx, "WR-1")
	if gerr != nil || got.Status != store.StatusPaid {
		t.Errorf("the primary should hold the write: %+v, %v", got, gerr)
	}
	_, _, err = s.ClaimPurchase(ctx, "wr-claim-2", "WR-2", time.Minute)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("ClaimPurchase without a replica: got %v; want ErrUnavailable", err)
	}
	// An announcement claim a failover could lose is not reported first:
	// the replica promoted would grant it again.
	first, err := s.ClaimAnnouncement(ctx, "shop", "u1", "announced:", "WR-2", time.Hour)
	if !errors.Is(err, store.ErrUnavailable) || first {
		t.Errorf("ClaimAnnouncement without a replica: got %v, %v; want ErrUnavailable, not first", first, err)
	}
}

func TestOptions(t *testing.T) {
	cases := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"no address", Options{}, true},
		{"brace in prefix", Options{Addrs: []string{sharedAddr}, KeyPrefix: "a{b}"}, true},
		{"tls with a bad address", Options{Addrs: []string{"no-port"}, TLS: true}, true},
		{"plain", Options{Addrs: []string{sharedAddr}, KeyPrefix: testPrefix(), RepairInterval: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.opts)
			if s != nil {
				_ = s.Close()
				c := goredis.NewClient(&goredis.Options{Addr: sharedAddr})
				dropPrefix(t, c, tc.opts.KeyPrefix) // the epoch marker Open wrote
				_ = c.Close()
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("got %v; want error=%v", err, tc.wantErr)
			}
		})
	}
}

func TestKeysEscape(t *testing.T) {
	k := keys{p: "p:"}
	a, _, _, _ := k.userTag("a:b", "c")
	b, _, _, _ := k.userTag("a", "b:c")
	if a == b {
		t.Errorf("client a:b user c and client a user b:c share key %s", a)
	}
	rec, _, _ := k.orderTag("x}y{z")
	if strings.Count(rec, "{") != 1 || strings.Count(rec, "}") != 1 {
		t.Errorf("order number with braces broke the hash tag: %s", rec)
	}
}

func BenchmarkLoadUserState(b *testing.B) {
	requireSharedRedis(b)
	s := openOn(b, nil, Options{Addrs: []string{sharedAddr}})
	b.Run("orders=5", func(b *testing.B) { storetest.BenchLoadUserState(b, s, 5) })
	b.Run("orders=0", func(b *testing.B) { storetest.BenchLoadUserState(b, s, 0) })
}

func BenchmarkTransition(b *testing.B) {
	requireSharedRedis(b)
	storetest.BenchTransition(b, openOn(b, nil, Options{Addrs: []string{sharedAddr}}))
}

func TestOutOfOrderSyncSingle(t *testing.T) {
	requireSharedRedis(t)
	testOutOfOrderSync(t, openOn(t, storetest.NewClock(), Options{Addrs: []string{sharedAddr}}))
}

// testOutOfOrderSync: two replicas' copy and index steps may land in either
// order; the older one must not undo the newer.
func testOutOfOrderSync(t *testing.T, s *Store) {
	ctx := context.Background()
	o := storetest.NewOrder("OO-1", "shop", "u1", time.Now())
	if err := s.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	newer, older := *o, *o
	newer.Version, newer.Status = 3, store.StatusPaid
	older.Version, older.Status = 2, store.StatusClosed
	for _, c := range []*store.Order{&newer, &older} {
		if err := s.syncUser(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.syncIndex(ctx, c, c.OrderNo, "", 0); err != nil {
			t.Fatal(err)
		}
	}
	us, err := s.LoadUserState(ctx, "shop", "u1")
	if err != nil || len(us.Orders) != 1 {
		t.Fatalf("LoadUserState: %+v, %v", us, err)
	}
	if got := us.Orders[0]; got.Version != 3 || got.Status != store.StatusPaid {
		t.Errorf("user copy: got v%d %s; want v3 paid", got.Version, got.Status)
	}
	cases := []struct {
		name string
		set  store.OrderStatus
		want bool
	}{
		{"newer status indexed", store.StatusPaid, true},
		{"older status not indexed", store.StatusClosed, false},
		{"original status left", store.StatusAwaitingPayment, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.c.ZScore(ctx, s.k.status(tc.set), "OO-1").Result()
			if got := err == nil; got != tc.want {
				t.Errorf("in %s index: got %v; want %v (%v)", tc.set, got, tc.want, err)
			}
		})
	}

	t.Run("outbox index", func(t *testing.T) {
		if err := s.EnqueueEvents(ctx, store.Event{ID: "oo-e1", Key: "OO-2", Kind: "webhook"}); err != nil {
			t.Fatal(err)
		}
		if err := s.AckEvent(ctx, "OO-2", "oo-e1"); err != nil {
			t.Fatal(err)
		}
		// The enqueue's index step (version 1, "has an event") replayed late,
		// after the ack's (version 2, "empty"): the entry is stale.
		if err := s.syncIndex(ctx, nil, "OO-2", "1", 0); err != nil {
			t.Fatal(err)
		}
		evs, err := s.DueEvents(ctx, time.Now(), 10)
		if err != nil || len(evs) != 0 {
			t.Fatalf("DueEvents: %v, %v; want nothing", ids(evs), err)
		}
		if _, err := s.c.ZScore(ctx, s.k.idx("ob"), "OO-2").Result(); !errors.Is(err, goredis.Nil) {
			t.Errorf("stale outbox index entry survived a read: %v", err)
		}
	})
}
