package redis

import (
	"context"
	"errors"
	"strconv"
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
	args := append([]any{"ACL", "SETUSER", "pg", "on", ">pg-secret", "~*", "+@all"}, toAny(rules)...)
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
