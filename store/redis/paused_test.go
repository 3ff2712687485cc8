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

// TestPausedRedis: a real redis-server stopped (SIGSTOP) while a Store is
// in use, with a money write sent to it and unanswered: a stalled host, a
// long fork, a swap storm. The write is reported unavailable (it may apply),
// never done or refused; calls under a deadline end unavailable; once the
// server goes on it runs what it was sent, and the Store, which saw the
// generation counter raised behind its back, is not taken for one that lost
// data: the purchase stays bound to the number the unanswered claim bound it
// to, and money writes go on.
func TestPausedRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := storetest.NewClock()
	// serve's options (cmd/paygate openStore), with a short read timeout
	// so that the unanswered write gives up soon.
	s := openOn(t, clock, Options{Addrs: []string{srv.Addr()}, MaxRetries: 1, DialTimeout: time.Second, ReadTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // nothing may hang
	defer cancel()
	mustNil(t, "CreateOrder before the pause", s.CreateOrder(ctx, storetest.NewOrder("PZ-1", "shop", "u1", clock.Now())))
	mustNil(t, "Ping before the pause", s.Ping(ctx))

	hook := &beforeScript{f: srv.Pause}
	sha := s.sc.claim.Hash()
	hook.sha.Store(&sha)
	s.Client().AddHook(hook)
	_, _, err := s.ClaimPurchase(ctx, "pz-claim", "PZ-2", time.Hour)
	if hook.sha.Load() != nil {
		t.Fatalf("the claim's script was never sent: %v", err)
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a claim sent to a paused Redis: %v; want ErrUnavailable (it may have applied)", err)
	}
	for name, call := range map[string]func(context.Context) error{
		"Ping": s.Ping,
		"LoadUserState": func(ctx context.Context) error {
			_, err := s.LoadUserState(ctx, "shop", "u1")
			return err
		},
		"CreateOrder": func(ctx context.Context) error {
			return s.CreateOrder(ctx, storetest.NewOrder("PZ-9", "shop", "u1", clock.Now()))
		},
	} {
		cctx, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
		if err := call(cctx); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s on a paused Redis: %v; want ErrUnavailable", name, err)
		}
		ccancel()
	}

	srv.Resume()
	mustNil(t, "Ping once Redis goes on", s.Ping(ctx))
	cl, created, err := s.ClaimPurchase(ctx, "pz-claim", "PZ-3", time.Hour)
	mustNil(t, "ClaimPurchase once Redis goes on", err)
	if created || cl.OrderNo != "PZ-2" {
		t.Errorf("the purchase's claim after the pause: %+v, created %v; want PZ-2's, bound by the unanswered claim", cl, created)
	}
	mustNil(t, "CreateOrder once Redis goes on", s.CreateOrder(ctx, storetest.NewOrder("PZ-2", "shop", "u1", clock.Now())))
}
