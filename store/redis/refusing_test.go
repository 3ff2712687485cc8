package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestRefusingRedisIsUnavailable: a Redis that refuses every write until
// an operator acts, before the write applies, is "not now", as one without
// its replicas (NOREPLICAS) is: money writes fail as store.ErrUnavailable
// (payment tools then say payments are temporarily unavailable, the user
// API 503, notifications store_unavailable) and work again once it takes
// writes. Full: at its maxmemory under noeviction, the policy paygate
// requires (OOM). Unable to persist: its last RDB snapshot failed (a full
// or read-only disk) with stop-writes-on-bgsave-error, the default
// (MISCONF).
func TestRefusingRedisIsUnavailable(t *testing.T) {
	for _, tt := range []struct {
		name   string
		extra  []string // redis-server arguments
		refuse func(ctx context.Context, c *goredis.Client) error
		accept func(ctx context.Context, c *goredis.Client) error
	}{
		{
			name: "full",
			refuse: func(ctx context.Context, c *goredis.Client) error {
				return c.ConfigSet(ctx, "maxmemory", "1").Err()
			},
			accept: func(ctx context.Context, c *goredis.Client) error {
				return c.ConfigSet(ctx, "maxmemory", "0").Err()
			},
		},
		{
			// /proc takes no file, even from root: every snapshot fails.
			name:  "unable to persist",
			extra: []string{"--save", "3600 1", "--dir", "/proc"},
			refuse: func(ctx context.Context, c *goredis.Client) error {
				if err := c.BgSave(ctx).Err(); err != nil {
					return err
				}
				for {
					info, err := c.Info(ctx, "persistence").Result()
					if err != nil {
						return err
					}
					if strings.Contains(info, "rdb_last_bgsave_status:err") {
						return nil
					}
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(20 * time.Millisecond): // polling the server's own state
					}
				}
			},
			accept: func(ctx context.Context, c *goredis.Client) error {
				return c.ConfigSet(ctx, "save", "").Err()
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.StartServer(t, tt.extra...)
			s := openOn(t, nil, Options{Addrs: []string{srv.Addr()}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			admin := srv.Client()
			if err := tt.refuse(ctx, admin); err != nil {
				t.Fatal(err)
			}
			writes := []struct {
				name string
				call func() error
			}{
				{"ClaimPurchase", func() error { _, _, err := s.ClaimPurchase(ctx, "refused-claim", "RF-1", time.Minute); return err }},
				{"CreateOrder", func() error {
					return s.CreateOrder(ctx, storetest.NewOrder("RF-2", "shop", "u1", time.Now()), store.Event{ID: "rf-e", Kind: "webhook"})
				}},
				{"SeenNotification", func() error { _, err := s.SeenNotification(ctx, "rf-n", time.Minute); return err }},
			}
			for _, w := range writes {
				if err := w.call(); !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("%s on a Redis that refuses writes: %v; want store.ErrUnavailable", w.name, err)
				}
			}
			if err := tt.accept(ctx, admin); err != nil {
				t.Fatal(err)
			}
			for _, w := range writes {
				if err := w.call(); err != nil {
					t.Errorf("%s once Redis takes writes again: %v", w.name, err)
				}
			}
		})
	}
}
