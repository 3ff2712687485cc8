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

// TestOpenNoWait: Open with NoWait returns at once on a Redis that does not
// answer (paused), its first check in the background. Meanwhile Ping says
// unavailable at once (/readyz answers a probe within its timeout), and a
// command waits for the start within its own deadline: refused,
// unavailable, when the deadline comes first (a turn's state load goes on
// without it), carried out once Redis answers the start, as it would have
// been after Open waited for it, not refused because a check was under
// way. Started closes once the check is made, StartErr nil.
func TestOpenNoWait(t *testing.T) {
	srv := redistest.StartServer(t)
	srv.Pause()
	t.Cleanup(srv.Resume) // before the server's own cleanup: openOn's drops its keys
	clock := storetest.NewClock()
	begin := time.Now()
	s := openOn(t, clock, Options{Addrs: []string{srv.Addr()}, Owner: "simulator:1", MaxRetries: 1, DialTimeout: time.Second, NoWait: true})
	if took := time.Since(begin); took > time.Second {
		t.Errorf("Open with NoWait on a paused Redis took %v; want it at once", took.Round(time.Millisecond))
	}
	select {
	case <-s.Started():
		t.Fatal("Started closed while Redis has answered nothing")
	default:
	}
	if err := s.Ping(context.Background()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping during the start: %v; want ErrUnavailable at once", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := s.LoadUserState(ctx, "shop", "u1")
	cancel()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("LoadUserState past its deadline during the start: %v; want ErrUnavailable", err)
	}

	created := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		created <- s.CreateOrder(ctx, storetest.NewOrder("NW-1", "shop", "u1", clock.Now()))
	}()
	srv.Resume()
	if err := <-created; err != nil {
		t.Errorf("CreateOrder sent during the start, Redis answering it: %v; want it done", err)
	}
	<-s.Started()
	if err := s.StartErr(); err != nil {
		t.Errorf("StartErr: %v; want nil", err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping after the start: %v", err)
	}
}
