package redis

import (
	"context"
	"errors"
	"strings"
	"testing"

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
			b := openOn(t, nil, Options{Addrs: []string{addr}, KeyPrefix: prefix})
			if err := b.Ping(ctx); err != nil {
				t.Errorf("Ping of a replica started after the loss: %v; want ok", err)
			}
			if err := a.Ping(ctx); err == nil {
				t.Error("the first replica's Ping is ok again once the second set a new marker")
			}
		})
	}
}
