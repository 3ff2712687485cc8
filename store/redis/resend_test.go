package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// beforeScript calls f once, right before the first pipeline that runs the
// script whose SHA is armed is sent.
type beforeScript struct {
	sha atomic.Pointer[string]
	f   func()
}

func (h *beforeScript) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *beforeScript) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (h *beforeScript) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if sha := h.sha.Load(); sha != nil && slices.ContainsFunc(cmds, func(c goredis.Cmder) bool {
			return strings.EqualFold(c.Name(), "evalsha") && slices.Contains(c.Args(), any(*sha))
		}) && h.sha.CompareAndSwap(sha, nil) {
			h.f()
		}
		return next(ctx, cmds)
	}
}

// dialHook calls f once, before the first dial after it is armed.
type dialHook struct {
	armed atomic.Bool
	f     func()
}

func (h *dialHook) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h.armed.CompareAndSwap(true, false) {
			h.f()
		}
		return next(ctx, network, addr)
	}
}

func (h *dialHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (h *dialHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestMoneyWriteResentToARefusingRedis: a money write whose reply is lost
// (Redis stalled: here stopped) applies once Redis goes on, while go-redis
// sends it again on a new connection, which Redis refuses before running
// it: the password was rotated meanwhile (an ACL change, or clients full,
// is the same). go-redis reports the last refusal alone, and read as the
// write's own answer it was a plain error, which callers take for "not
// applied": payments let the purchase's claim go, or gave the day's order
// count back, while the claim or the order stood. A write whose re-send
// was refused is unavailable, "may have applied".
func TestMoneyWriteResentToARefusingRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := storetest.NewClock()
	// One connection, so that the re-send dials; no background checks,
	// which would take it.
	s := openOn(t, clock, Options{Addrs: []string{srv.Addr()}, MaxRetries: 1, DialTimeout: time.Second,
		ReadTimeout: 300 * time.Millisecond, PoolSize: 1, EpochInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // nothing may hang
	defer cancel()
	mustNil(t, "Ping", s.Ping(ctx))
	admin := srv.Client() // connected before the rotation, so it stays in
	mustNil(t, "admin PING", admin.Ping(ctx).Err())
	t.Cleanup(func() { _ = admin.ConfigSet(context.Background(), "requirepass", "").Err() })

	ck, _ := s.k.claim("rs-claim")
	paused := &beforeScript{f: srv.Pause}
	sha := s.sc.claim.Hash()
	paused.sha.Store(&sha)
	resend := &dialHook{f: func() {
		// The re-send dials: Redis goes on, runs the claim it was sent,
		// and the password changes.
		srv.Resume()
		for range 100 {
			if n, err := admin.Exists(ctx, ck).Result(); err == nil && n == 1 {
				break
			}
			time.Sleep(20 * time.Millisecond) // polling an external process
		}
		if err := admin.ConfigSet(ctx, "requirepass", "rotated").Err(); err != nil {
			t.Errorf("CONFIG SET requirepass: %v", err)
		}
	}}
	resend.armed.Store(true)
	s.Client().AddHook(paused)
	s.Client().AddHook(resend)

	c, created, err := s.ClaimPurchase(ctx, "rs-claim", "RS-1", time.Hour)
	if paused.sha.Load() != nil || resend.armed.Load() {
		t.Fatalf("the claim was not sent, lost and sent again as the test means: %v", err)
	}
	if n, _ := admin.Exists(ctx, ck).Result(); n != 1 {
		t.Fatalf("the claim did not apply: %v", err)
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a claim that applied, its re-send refused: %+v, created %v, %v; want ErrUnavailable (it may have applied)", c, created, err)
	}
}

// TestMoneyWriteOnARefusedConnection: a money write that needs a new
// connection, which Redis refuses at its handshake (here the password was
// changed on the server first; clients full is the same), is unavailable,
// and this Store is not taken for one whose Redis lost its data. go-redis
// reports a refusal at the handshake as the pipeline's error alone, leaving
// each command's reply empty and without an error, and runMoney read the
// replies only: the generation counter read 0, lower than this Store had
// seen it, so it declared Redis rolled back, refused every command until
// restarted and tried to stop every other replica too, while the write
// itself read as done with nothing in it.
func TestMoneyWriteOnARefusedConnection(t *testing.T) {
	srv := redistest.StartServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // nothing may hang
	defer cancel()
	admin := srv.Client() // connected before the passwords, so it stays in
	password := func(pw string) {
		t.Helper()
		mustNil(t, "CONFIG SET requirepass", admin.ConfigSet(ctx, "requirepass", pw).Err())
	}
	password("before")
	s := openOn(t, storetest.NewClock(), Options{Addrs: []string{srv.Addr()}, Password: "before", MaxRetries: 1})
	t.Cleanup(func() { _ = admin.ConfigSet(context.Background(), "requirepass", "").Err() })
	mustNil(t, "Ping", s.Ping(ctx))
	password("after")
	// The store's connections go (a restart, a failover); the admin's stays in.
	mustNil(t, "CLIENT KILL", admin.ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Err())

	for name, call := range map[string]func() (any, error){
		"ClaimPurchase": func() (any, error) {
			c, _, err := s.ClaimPurchase(ctx, "rf-claim", "RF-1", time.Hour)
			return c, err
		},
		"SeenNotification": func() (any, error) { return s.SeenNotification(ctx, "rf-notification", time.Hour) },
		"AppendAudit": func() (any, error) {
			return nil, s.AppendAudit(ctx, store.AuditRecord{Seq: 1, Hash: "h1", Body: []byte(`{}`)})
		},
	} {
		v, err := call()
		if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrDataLost) || !strings.Contains(fmt.Sprint(err), "WRONGPASS") {
			t.Errorf("%s on a connection Redis refused: %v, %v; want unavailable, Redis's refusal (WRONGPASS)", name, v, err)
		}
	}
	password("before")
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping with the password back: %v", err)
	}
}
