package redis

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
)

// TestAOFRestartIsNoRollback: a Redis with appendfsync always that is
// restarted (crash or graceful) keeps every write: no replica may take it for
// one gone back to an earlier state (Ping checks the generation counters),
// and money writes go on.
func TestAOFRestartIsNoRollback(t *testing.T) {
	ctx := context.Background()
	for _, graceful := range []bool{false, true} {
		srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
		prefix := testPrefix()
		a := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, EpochInterval: 5 * time.Millisecond})
		b := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, EpochInterval: -1})
		for _, s := range []*Store{a, b} {
			if err := s.Ping(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 20 {
			if _, _, err := a.ClaimPurchase(ctx, "k"+string(rune('a'+i)), "ORD", time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if graceful {
			srv.Shutdown()
		} else {
			srv.Kill()
		}
		srv.Restart()
		for _, s := range []*Store{a, b} {
			var err error
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); { // until it reconnects
				if err = s.Ping(ctx); err == nil {
					break
				}
			}
			if err != nil || s.lost.Load() {
				t.Fatalf("graceful=%v: Ping after an AOF restart: %v (lost=%v)", graceful, err, s.lost.Load())
			}
		}
		if _, _, err := b.ClaimPurchase(ctx, "after", "ORD2", time.Hour); err != nil {
			t.Fatalf("graceful=%v: money write after an AOF restart: %v", graceful, err)
		}
	}
}
