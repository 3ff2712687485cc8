package redis

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
)

// TestPingReportsLostData: a Redis that lost its data after a replica first
// reached it (restarted without persistence, flushed) fails that replica's
// Ping, so /readyz says so, while a replica that meets the new, empty Redis
// first adopts it. Nothing else reports the loss: scripts reload and reads
// just find nothing.
func TestPingReportsLostData(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		addr func(t *testing.T) (string, func())
	}{
		{"restart without persistence", func(t *testing.T) (string, func()) {
			srv := redistest.StartServer(t)
			return srv.Addr(), func() { srv.Kill(); srv.Restart() }
		}},
		{"flushed", func(t *testing.T) (string, func()) {
			return sharedAddr, nil // the flush is of this test's prefix only
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, restart := tc.addr(t)
			prefix := testPrefix()
			a := openOn(t, nil, Options{Addrs: []string{addr}, KeyPrefix: prefix})
			if err := a.Ping(ctx); err != nil {
				t.Fatalf("Ping before the loss: %v", err)
			}
			if restart != nil {
				restart()
			} else {
				c := goredis.NewClient(&goredis.Options{Addr: addr})
				dropPrefix(t, c, prefix)
				_ = c.Close()
			}
			for range 2 { // and it stays failed
				err := a.Ping(ctx)
				if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "lost its data") {
					t.Fatalf("Ping after the loss: %v; want ErrUnavailable saying the data was lost", err)
				}
			}
			assertRefusesWrites(t, a, []string{addr}, prefix)
			b := openOn(t, nil, Options{Addrs: []string{addr}, KeyPrefix: prefix})
			if err := b.Ping(ctx); err != nil {
				t.Errorf("Ping of a replica started after the loss: %v; want ok", err)
			}
			if err := a.Ping(ctx); err == nil {
				t.Error("the first replica's Ping is ok again once the second set a new marker")
			}
			assertRefusesWrites(t, a, []string{addr}, prefix)
		})
	}
}

// TestLostDataRefusedWithoutPing: the loss is found by the Store's own epoch
// check, without anyone calling Ping (no readiness probe configured), and
// from then on money writes fail closed.
func TestLostDataRefusedWithoutPing(t *testing.T) {
	prefix := testPrefix()
	a := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix, EpochInterval: 5 * time.Millisecond})
	if _, _, err := a.ClaimPurchase(context.Background(), "before", "ORD-BEFORE", time.Hour); err != nil {
		t.Fatalf("ClaimPurchase before the loss: %v", err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr})
	defer c.Close()
	dropPrefix(t, c, prefix)
	deadline := time.Now().Add(10 * time.Second)
	for !a.lost.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the Store did not notice within 10s that Redis lost its data")
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // poll the condition
	}
	assertRefusesWrites(t, a, []string{sharedAddr}, prefix)
}

// TestLostDataRefusedClusterWaitReplicas: with Redis Cluster and
// wait_replicas, money writes pipeline the script and WAIT on the key's
// primary's own client, which go-redis creates per node without the
// ClusterClient's hooks. Once the loss is known they must be refused all the
// same: a claim landing in the new, empty Redis is a second payable order for
// a purchase already claimed.
func TestLostDataRefusedClusterWaitReplicas(t *testing.T) {
	ctx := context.Background()
	addrs := startClusterWithReplicas(t)
	prefix := testPrefix()
	s := openOn(t, nil, Options{Addrs: addrs, KeyPrefix: prefix, WaitReplicas: 1, WaitTimeout: 2 * time.Second, EpochInterval: 5 * time.Millisecond})
	if _, created, err := s.ClaimPurchase(ctx, "shop|u1|premium|1", "ORD-BEFORE", time.Hour); err != nil || !created {
		t.Fatalf("claim before the loss: %v %v", created, err)
	}
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	dropPrefix(t, cc, prefix)
	deadline := time.Now().Add(10 * time.Second)
	for !s.lost.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the Store did not notice within 10s that Redis lost its data")
		}
		time.Sleep(time.Millisecond) // poll the condition
	}
	if _, err := s.GetOrder(ctx, "ORD-BEFORE"); err == nil || !strings.Contains(err.Error(), "lost its data") {
		t.Fatalf("GetOrder after the loss: %v; want refused", err)
	}
	_, created, err := s.ClaimPurchase(ctx, "shop|u1|premium|1", "ORD-AGAIN", time.Hour)
	ck, _ := s.k.claim("shop|u1|premium|1")
	n, _ := cc.Exists(ctx, ck).Result()
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "lost its data") {
		t.Errorf("ClaimPurchase after the loss: created=%v err=%v; want ErrUnavailable (lost its data)", created, err)
	}
	if n != 0 {
		t.Errorf("the claim was written into the new Redis after the loss was known")
	}
	assertRefusesWrites(t, s, addrs, prefix)
}

// assertRefusesWrites: after the loss every money write (a claim, an order
// created or updated, a notification mark, a refund proposal put or
// consumed, an audit record) fails with store.ErrUnavailable naming the loss,
// and none reaches Redis. addrs are the Store's: one server, or a cluster's
// nodes (every primary is searched).
func assertRefusesWrites(t *testing.T, s *Store, addrs []string, prefix string) {
	t.Helper()
	ctx := context.Background()
	want := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "lost its data") {
			t.Errorf("%s after the loss: %v; want ErrUnavailable saying the data was lost", op, err)
		}
	}
	now := time.Now()
	_, _, err := s.ClaimPurchase(ctx, "after", "ORD-AFTER", time.Hour)
	want("ClaimPurchase", err)
	o := &store.Order{OrderNo: "ORD-AFTER", Client: "c", User: "u", Status: store.StatusCreating, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	want("CreateOrder", s.CreateOrder(ctx, o))
	o.Status = store.StatusAwaitingPayment
	want("UpdateOrder", s.UpdateOrder(ctx, o, store.StatusCreating))
	_, err = s.SeenNotification(ctx, "N-AFTER", time.Hour)
	want("SeenNotification", err)
	want("PutRefundProposal", s.PutRefundProposal(ctx, &store.RefundProposal{RefundID: "R-AFTER", OrderNo: "ORD-AFTER", Client: "c", User: "u",
		AmountFen: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour), OutRefundNo: "RF-AFTER"}, time.Hour))
	_, err = s.ConsumeRefundProposal(ctx, "R-AFTER", "u")
	want("ConsumeRefundProposal", err)
	want("AppendAudit", s.AppendAudit(ctx, store.AuditRecord{Seq: 1, Hash: "after"}))

	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: addrs})
	defer c.Close()
	var mu sync.Mutex
	var found []string
	scan := func(ctx context.Context, node goredis.Cmdable) error {
		keys, err := node.Keys(ctx, prefix+"*").Result()
		mu.Lock()
		found = append(found, keys...)
		mu.Unlock()
		return err
	}
	if cc, ok := c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return scan(ctx, n) })
	} else {
		err = scan(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range found {
		if strings.Contains(k, "AFTER") || strings.Contains(k, "after") || k == s.k.audit("head") {
			t.Errorf("key %s was written after the loss", k)
		}
	}
}
