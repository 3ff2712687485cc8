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

func (h *beforeScript) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.before([]goredis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (h *beforeScript) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.before(cmds)
		return next(ctx, cmds)
	}
}

// before calls f if cmds, a pipeline or one command, run the armed script.
func (h *beforeScript) before(cmds []goredis.Cmder) {
	if sha := h.sha.Load(); sha != nil && slices.ContainsFunc(cmds, func(c goredis.Cmder) bool {
		return strings.EqualFold(c.Name(), "evalsha") && slices.Contains(c.Args(), any(*sha))
	}) && h.sha.CompareAndSwap(sha, nil) {
		h.f()
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
// was refused is unavailable, "may have applied". So too a write that is
// not a money write (the day's order count, run by run): read as not
// counted, the count stood all the same.
func TestMoneyWriteResentToARefusingRedis(t *testing.T) {
	for _, tt := range []struct {
		name string
		sha  func(s *Store) string
		key  func(s *Store) string // the write's key, there once it applied
		call func(ctx context.Context, s *Store) (any, error)
	}{
		{
			name: "ClaimPurchase",
			sha:  func(s *Store) string { return s.sc.claim.Hash() },
			key:  func(s *Store) string { ck, _ := s.k.claim("rs-claim"); return ck },
			call: func(ctx context.Context, s *Store) (any, error) {
				c, created, err := s.ClaimPurchase(ctx, "rs-claim", "RS-1", time.Hour)
				return fmt.Sprintf("%+v, created %v", c, created), err
			},
		},
		{
			name: "IncrCounter",
			sha:  func(s *Store) string { return s.sc.counter.Hash() },
			key:  func(s *Store) string { return s.k.one("k", "rs-day") },
			call: func(ctx context.Context, s *Store) (any, error) { return s.IncrCounter(ctx, "rs-day", time.Hour) },
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
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

			key := tt.key(s)
			paused := &beforeScript{f: srv.Pause}
			sha := tt.sha(s)
			paused.sha.Store(&sha)
			resend := &dialHook{f: func() {
				// The re-send dials: Redis goes on, runs the write it was
				// sent, and the password changes.
				srv.Resume()
				for range 100 {
					if n, err := admin.Exists(ctx, key).Result(); err == nil && n == 1 {
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

			v, err := tt.call(ctx, s)
			if paused.sha.Load() != nil || resend.armed.Load() {
				t.Fatalf("the write was not sent, lost and sent again as the test means: %v", err)
			}
			if n, _ := admin.Exists(ctx, key).Result(); n != 1 {
				t.Fatalf("the write did not apply: %v", err)
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("a write that applied, its re-send refused: %v, %v; want ErrUnavailable (it may have applied)", v, err)
			}
		})
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
		// Not money writes, but read as refused they were not counted.
		"IncrCounter": func() (any, error) { return s.IncrCounter(ctx, "rf-day", time.Hour) },
		"AddTallies": func() (any, error) {
			return nil, s.AddTallies(ctx, []store.TallyAdd{{Key: "rf-tally", Delta: 1}}, time.Hour)
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

// TestBatchReloadRefusedAfterItApplied: the pipelined writes other than
// run's (ClaimEvents' leases, through evalEach; AddTallies, through
// runBatch) are sent again after a lost reply as run's are. When Redis
// lost its scripts meanwhile (a restart, SCRIPT FLUSH) the re-send is
// answered NOSCRIPT and the script loaded, and a load Redis refused (an
// ACL changed meanwhile) was read as a read's error: a plain error, "not
// applied", while the try before it had leased the event or counted the
// cost. A write whose reload was refused is unavailable, "may have
// applied", as runMoney's is.
func TestBatchReloadRefusedAfterItApplied(t *testing.T) {
	const obKey = "rb-order"
	for _, tt := range []struct {
		name string
		sha  func(s *Store) string
		// applied reports whether the write is in Redis.
		applied func(ctx context.Context, s *Store, admin *goredis.Client) bool
		call    func(ctx context.Context, s *Store) (any, error)
	}{
		{
			name:    "ClaimEvents",
			sha:     func(s *Store) string { return s.sc.claimEvent.Hash() },
			applied: leased(obKey),
			call:    claimOne,
		},
		{
			name: "AddTallies",
			sha:  func(s *Store) string { return s.sc.addTally.Hash() },
			applied: func(ctx context.Context, s *Store, admin *goredis.Client) bool {
				n, err := admin.HGet(ctx, s.k.one("t", "rb-tally"), "n").Int64()
				return err == nil && n == 7
			},
			call: func(ctx context.Context, s *Store) (any, error) {
				return nil, s.AddTallies(ctx, []store.TallyAdd{{Key: "rb-tally", Delta: 7}}, time.Hour)
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.StartServer(t)
			clock := storetest.NewClock()
			opts := aclUser(t, srv)
			// One connection, so that the re-send dials; no background checks,
			// which would take it.
			opts.MaxRetries, opts.DialTimeout, opts.ReadTimeout, opts.PoolSize, opts.EpochInterval = 1, time.Second, 300*time.Millisecond, 1, -1
			s := openOn(t, clock, opts)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // nothing may hang
			defer cancel()
			mustNil(t, "Ping", s.Ping(ctx))
			mustNil(t, "EnqueueEvents", s.EnqueueEvents(ctx, store.Event{ID: "rb-1", Kind: "webhook", Key: obKey}))
			admin := srv.Client() // the default user, whose ACL the test leaves alone
			mustNil(t, "admin PING", admin.Ping(ctx).Err())

			paused := &beforeScript{f: srv.Pause}
			sha := tt.sha(s)
			paused.sha.Store(&sha)
			resend := &dialHook{f: func() {
				// The re-send dials: Redis goes on, runs the write it was
				// sent, loses its scripts and refuses their load.
				srv.Resume()
				for range 100 {
					if tt.applied(ctx, s, admin) {
						break
					}
					time.Sleep(20 * time.Millisecond) // polling an external process
				}
				if err := refuseScriptLoad(ctx, admin); err != nil {
					t.Errorf("refusing the reload: %v", err)
				}
			}}
			resend.armed.Store(true)
			s.Client().AddHook(paused)
			s.Client().AddHook(resend)

			v, err := tt.call(ctx, s)
			if paused.sha.Load() != nil || resend.armed.Load() {
				t.Fatalf("the write was not sent, lost and sent again as the test means: %v", err)
			}
			if !tt.applied(ctx, s, admin) {
				t.Fatalf("the write did not apply: %v", err)
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("a write that applied, its reload refused: %v, %v; want ErrUnavailable (it may have applied)", v, err)
			}
		})
	}
}

// refuseScriptLoad empties Redis's script cache, so the re-send is refused
// NOSCRIPT, and takes SCRIPT LOAD from aclUser's user, so the load that
// follows is refused NOPERM.
func refuseScriptLoad(ctx context.Context, admin *goredis.Client) error {
	if err := admin.ScriptFlush(ctx).Err(); err != nil {
		return err
	}
	return admin.Do(ctx, "ACL", "SETUSER", "pg", "-script|load").Err()
}

// leased reports whether the head of key's outbox is leased.
func leased(key string) func(ctx context.Context, s *Store, admin *goredis.Client) bool {
	return func(ctx context.Context, s *Store, admin *goredis.Client) bool {
		_, ob, _ := s.k.orderTag(key)
		h, err := admin.LIndex(ctx, ob, 0).Result()
		return err == nil && strings.Contains(h, `"lease":"lease_`)
	}
}

func claimOne(ctx context.Context, s *Store) (any, error) {
	return s.ClaimEvents(ctx, "webhook", s.now(), time.Minute, 1)
}
