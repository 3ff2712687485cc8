package redis

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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
			srv := startServer(t)
			return srv.addr(), func() { srv.kill(); srv.start() }
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
			assertRefusesWrites(t, a, addr, prefix)
			b := openOn(t, nil, Options{Addrs: []string{addr}, KeyPrefix: prefix})
			if err := b.Ping(ctx); err != nil {
				t.Errorf("Ping of a replica started after the loss: %v; want ok", err)
			}
			if err := a.Ping(ctx); err == nil {
				t.Error("the first replica's Ping is ok again once the second set a new marker")
			}
			assertRefusesWrites(t, a, addr, prefix)
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
	assertRefusesWrites(t, a, sharedAddr, prefix)
}

// assertRefusesWrites: after the loss a claim, an order and an audit record
// fail with store.ErrUnavailable naming the loss, and none reaches Redis.
func assertRefusesWrites(t *testing.T, s *Store, addr, prefix string) {
	t.Helper()
	ctx := context.Background()
	want := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "lost its data") {
			t.Errorf("%s after the loss: %v; want ErrUnavailable saying the data was lost", op, err)
		}
	}
	_, _, err := s.ClaimPurchase(ctx, "after", "ORD-AFTER", time.Hour)
	want("ClaimPurchase", err)
	want("CreateOrder", s.CreateOrder(ctx, &store.Order{OrderNo: "ORD-AFTER", Client: "c", User: "u", Status: store.StatusCreating, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}))
	_, err = s.SeenNotification(ctx, "N-AFTER", time.Hour)
	want("SeenNotification", err)
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, "AFTER") || strings.Contains(k, "after") {
			t.Errorf("key %s was written after the loss", k)
		}
	}
}
