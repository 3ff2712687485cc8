package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// aclUser makes user pg, password pg-secret, on srv with every command
// but the ACL rules given (e.g. "-wait"), and returns the Options that
// log in as it.
func aclUser(t *testing.T, srv *redistest.Server, rules ...string) Options {
	t.Helper()
	args := append([]any{"ACL", "SETUSER", "pg", "reset", "on", ">pg-secret", "~*", "+@all"}, toAny(rules)...)
	if err := srv.Client().Do(context.Background(), args...).Err(); err != nil {
		t.Fatal(err)
	}
	return Options{Addrs: []string{srv.Addr()}, Username: "pg", Password: "pg-secret"}
}

// TestMoneyWriteAppliedButUnconfirmedIsUnavailable: a money write whose
// script applied but whose WAIT (wait_replicas) Redis refused, as it does
// for a user whose ACL lacks WAIT (@connection: an ACL of "+@read +@write
// +@scripting +ping"), was reported as a plain error, which the payments
// service takes for "not applied": it let the purchase's claim go while the
// order was recorded, so the next ask made a second order of the same
// purchase. Applied and unconfirmed is store.ErrUnavailable (may have
// applied), whatever Redis answered the WAIT.
func TestMoneyWriteAppliedButUnconfirmedIsUnavailable(t *testing.T) {
	ctx := context.Background()
	primary := redistest.StartServer(t, "--repl-diskless-sync-delay", "0")
	redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	primary.WaitReplicas(1)
	opts := aclUser(t, primary, "-wait")
	opts.WaitReplicas = 1
	s := openOn(t, nil, opts)
	_, _, err := s.ClaimPurchase(ctx, "acl-claim", "ACL-1", time.Hour)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ClaimPurchase whose WAIT Redis refused: %v; want store.ErrUnavailable (applied, unconfirmed)", err)
	}
	claim, _ := s.k.claim("acl-claim")
	if c, err := primary.Client().Exists(ctx, claim).Result(); err != nil || c != 1 {
		t.Fatalf("the claim is not in Redis (%d, %v): the test refuses the script, not its WAIT", c, err)
	}
	err = s.CreateOrder(ctx, storetest.NewOrder("ACL-2", "shop", "u1", time.Now()))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("CreateOrder whose WAIT Redis refused: %v; want store.ErrUnavailable (applied, unconfirmed)", err)
	}
}

// TestMoneyWriteRefusedInsideItsScriptIsUnavailable: Redis's ACL refuses a
// command a money script runs (a user short of one, or an ACL changed
// while a lost reply's re-send was on its way) with an error naming the
// script, which was kept as the script's own answer: a plain error, "not
// applied". But a script stopped there keeps what it wrote before (the
// claim's record, here, without its expiry), and a re-send refused so
// follows a try that applied: it is store.ErrUnavailable, "may have
// applied", as any other refusal of a money write.
func TestMoneyWriteRefusedInsideItsScriptIsUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	s := openOn(t, nil, aclUser(t, srv, "-pexpire"))
	_, _, err := s.ClaimPurchase(ctx, "acl-in-script", "ACL-S1", time.Hour)
	claim, _ := s.k.claim("acl-in-script")
	if n, xerr := srv.Client().Exists(ctx, claim).Result(); xerr != nil || n != 1 {
		t.Fatalf("the claim is not in Redis (%d, %v; the claim answered %v): the test refuses no command after the script wrote", n, xerr, err)
	}
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "pexpire") && !strings.Contains(err.Error(), "can't run") {
		t.Fatalf("a claim whose PEXPIRE Redis refused after its HSET applied: %v; want store.ErrUnavailable (it applied), naming Redis's refusal", err)
	}
}

// TestPingSaysWhenTheACLRefusesMoneyWrites: every money write is a Lua
// script (EVALSHA) and, with wait_replicas, a WAIT behind it, while Ping's
// write probe was a plain SET: a user whose ACL lacks @scripting, or WAIT,
// read ready on every replica, /readyz 200, while no order, claim or
// notification could be recorded; so too one whose ACL lacks TIME, which
// the order scripts call. The probe writes as money writes do, so Ping
// reports store.ErrWritesFail, naming Redis's answer.
func TestPingSaysWhenTheACLRefusesMoneyWrites(t *testing.T) {
	ctx := context.Background()
	primary := redistest.StartServer(t, "--repl-diskless-sync-delay", "0")
	redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	primary.WaitReplicas(1)
	for _, tc := range []struct {
		name  string
		rules []string
		wait  int
		ready bool
		says  string // what Redis answered, named in the error
	}{
		{"no scripting", []string{"-@scripting"}, 0, false, "NOPERM"},
		{"no WAIT, wait_replicas 1", []string{"-wait"}, 1, false, "NOPERM"},
		// TIME is @fast only: an ACL of categories lacks it, and
		// every order's script, which reads the server's clock, fails.
		{"no TIME", []string{"-time"}, 0, false, "can't run this command"},
		{"no WAIT, no wait_replicas", []string{"-wait"}, 0, true, ""},
		{"every command", nil, 1, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := aclUser(t, primary, tc.rules...)
			opts.WaitReplicas = tc.wait
			opts.EpochInterval = -1
			s := openOn(t, nil, opts)
			err := s.Ping(ctx)
			if tc.ready {
				if err != nil {
					t.Fatalf("Ping: %v; want ready", err)
				}
				return
			}
			if !errors.Is(err, store.ErrWritesFail) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Ping with an ACL that refuses money writes: %v; want store.ErrWritesFail naming %q", err, tc.says)
			}
			if err := s.CreateOrder(ctx, storetest.NewOrder("ACL-P"+randHex(4), "shop", "u1", time.Now())); err == nil {
				t.Fatal("CreateOrder succeeded: the test refuses no money write")
			}
		})
	}
}

// TestConformanceLeastPrivilegeACL runs the whole suite as a user with
// the ACL the README gives (keys under the prefix; @read, @write,
// @scripting, PING and WAIT), with wait_replicas, so that what it says
// is enough is.
func TestConformanceLeastPrivilegeACL(t *testing.T) {
	primary := redistest.StartServer(t, "--repl-diskless-sync-delay", "0")
	redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	primary.WaitReplicas(1)
	storetest.Run(t, func(t testing.TB, clock *storetest.Clock) store.Store {
		prefix := testPrefix()
		user := "pg" + randHex(4)
		if err := primary.Client().Do(context.Background(), "ACL", "SETUSER", user, "reset", "on", ">pg-secret",
			"~"+prefix+"*", "+@read", "+@write", "+@scripting", "+ping", "+wait", "+time").Err(); err != nil {
			t.Fatal(err)
		}
		return openOn(t, clock, Options{Addrs: []string{primary.Addr()}, Username: user, Password: "pg-secret",
			KeyPrefix: prefix, WaitReplicas: 1})
	})
}

// TestClaimRefusedInsideItsScriptIsUnavailable: ClaimEvents' lease is a
// script (through evalEach) that rewrites the outbox's head and then
// raises the outbox's version; Redis's ACL refusing the raise (an ACL
// changed since the event was queued) stops the script with the head
// leased, and the refusal, naming the script, was read as the script's own
// answer: a plain error, "not applied". It is store.ErrUnavailable, "may
// have applied", as a money script's is.
func TestClaimRefusedInsideItsScriptIsUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	opts := aclUser(t, srv)
	opts.EpochInterval = -1
	s := openOn(t, nil, opts)
	mustNil(t, "EnqueueEvents", s.EnqueueEvents(ctx, store.Event{ID: "acl-ev", Kind: "webhook", Key: "ACL-E1"}))
	mustNil(t, "ACL SETUSER", srv.Client().Do(ctx, "ACL", "SETUSER", "pg", "-incr").Err())
	evs, err := s.ClaimEvents(ctx, "webhook", s.now(), time.Minute, 1)
	_, ob, _ := s.k.orderTag("ACL-E1")
	if h, xerr := srv.Client().LIndex(ctx, ob, 0).Result(); xerr != nil || !strings.Contains(h, `"lease":"lease_`) {
		t.Fatalf("the head is not leased (%q, %v; the claim answered %v, %v): the test refuses no command after the script wrote", h, xerr, evs, err)
	}
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "incr") && !strings.Contains(err.Error(), "can't run") {
		t.Fatalf("a claim whose INCR Redis refused after its LSET applied: %v, %v; want store.ErrUnavailable (it applied), naming Redis's refusal", evs, err)
	}
}
