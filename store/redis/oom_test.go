package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestFullRedisIsUnavailable: a Redis at its maxmemory under noeviction
// (the policy paygate requires) refuses every write with "OOM command not
// allowed when used memory > 'maxmemory'" until memory is freed: "not now",
// as NOREPLICAS is, so money writes fail as store.ErrUnavailable (payment
// tools then say payments are temporarily unavailable, the user API 503,
// notifications store_unavailable) and work again once it has room.
func TestFullRedisIsUnavailable(t *testing.T) {
	srv := redistest.StartServer(t)
	s := openOn(t, nil, Options{Addrs: []string{srv.Addr()}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	admin := srv.Client()
	if err := admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		name string
		call func() error
	}{
		{"ClaimPurchase", func() error { _, _, err := s.ClaimPurchase(ctx, "oom-claim", "OOM-1", time.Minute); return err }},
		{"CreateOrder", func() error {
			return s.CreateOrder(ctx, storetest.NewOrder("OOM-2", "shop", "u1", time.Now()), store.Event{ID: "oom-e", Kind: "webhook"})
		}},
		{"SeenNotification", func() error { _, err := s.SeenNotification(ctx, "oom-n", time.Minute); return err }},
	}
	for _, w := range writes {
		err := w.call()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s on a full Redis: %v; want store.ErrUnavailable", w.name, err)
		}
	}
	if err := admin.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	for _, w := range writes {
		if err := w.call(); err != nil {
			t.Errorf("%s once Redis has room: %v", w.name, err)
		}
	}
}
