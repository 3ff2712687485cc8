package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
)

// TestRefusedWriteNamesTheRollback: once a replica found Redis gone back to
// an earlier state, every refused command says so, not only Ping: money
// writes said "the epoch marker is gone", pointing operators at the wrong
// cause.
func TestRefusedWriteNamesTheRollback(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	a := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, EpochInterval: -1})
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer c.Close()
	if err := c.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.ClaimPurchase(ctx, "k1", "ORD-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Restart()
	_ = a.Ping(ctx) // finds the rollback
	if p := a.Ping(ctx); !errors.Is(p, errRolledBack) {
		t.Fatalf("Ping: %v; want errRolledBack", p)
	}
	_, _, err := a.ClaimPurchase(ctx, "k2", "ORD-2", time.Hour)
	if !errors.Is(err, errRolledBack) {
		t.Errorf("money write after the rollback: %v\nwant the rollback's cause (errRolledBack), as Ping and lostGuard give", err)
	}
}
