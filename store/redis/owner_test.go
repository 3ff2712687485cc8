package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestAnotherDeploymentsPrefixIsRefused: two paygate deployments on one
// Redis with one key_prefix (the default, "paygate:", when the second was
// added without one of its own: a staging beside production, a second
// merchant) shared every key: each one's sweep queried its own WeChat Pay
// for the other's orders, expiring those it did not find and prepaying the
// other's unfinished ones at the wrong merchant, its workers delivered the
// other's webhooks, its managers approved the other's orders. The first
// deployment to reach the prefix owns it (Options.Owner: the payments
// backend and merchant); a Store of another owner fails Open when it
// reaches Redis there, and otherwise refuses every command from when it
// first does, Ping saying why; one of the same owner, or one without an
// owner (a tool), shares the prefix as replicas do.
func TestAnotherDeploymentsPrefixIsRefused(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	prefix := testPrefix()
	prod := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, Owner: "wechatpay:1900000109"})
	if _, _, err := prod.ClaimPurchase(ctx, "owner-claim", "OW-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"wechatpay:1900000109", ""} {
		replica := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, Owner: owner})
		if err := replica.Ping(ctx); err != nil {
			t.Fatalf("Ping of a Store owned %q beside its owner: %v", owner, err)
		}
	}

	_, err := Open(Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, Owner: "simulator:1900000109", RepairInterval: -1})
	if !errors.Is(err, store.ErrOtherDeployment) || !strings.Contains(err.Error(), "store.redis.key_prefix") ||
		!strings.Contains(err.Error(), "wechatpay:1900000109") {
		t.Fatalf("Open under another deployment's prefix: %v; want store.ErrOtherDeployment naming the owner and store.redis.key_prefix", err)
	}

	// Started while Redis was away: refused from when it first reaches it.
	srv2 := redistest.StartServer(t)
	p2 := testPrefix()
	prod2 := openOn(t, nil, Options{Addrs: []string{srv2.Addr()}, KeyPrefix: p2, Owner: "wechatpay:1900000109"})
	if err := prod2.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv2.Shutdown()
	staging := openOn(t, nil, Options{Addrs: []string{srv2.Addr()}, KeyPrefix: p2, Owner: "simulator:1900000109", MaxRetries: -1, EpochInterval: -1})
	srv2.Restart() // no persistence: prod2 finds its data lost; the owner mark is gone too
	if err := prod2.Ping(ctx); !errors.Is(err, store.ErrDataLost) {
		t.Fatalf("prod2 Ping after the restart: %v", err)
	}
	// A fresh owner replica takes the empty Redis first, then staging reaches it.
	fresh := openOn(t, nil, Options{Addrs: []string{srv2.Addr()}, KeyPrefix: p2, Owner: "wechatpay:1900000109"})
	if err := fresh.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := staging.Ping(ctx); !errors.Is(err, store.ErrOtherDeployment) || !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Ping of a Store under another deployment's prefix: %v; want store.ErrOtherDeployment", err)
		}
	}
	if err := staging.CreateOrder(ctx, storetest.NewOrder("OW-2", "shop", "u1", time.Now())); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("CreateOrder under another deployment's prefix: %v; want refused, store.ErrUnavailable", err)
	}
	if _, err := fresh.GetOrder(ctx, "OW-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the other deployment's order reached the owner's keys: %v", err)
	}
}

// TestAnotherDeploymentIsRefusedBeforeItsFirstCheck: a Store of another
// deployment started while Redis was away checked the owner only at its
// first Ping or epoch check (every EpochInterval), and every other command
// went through until then: when Redis came back with the owner's data, the
// other deployment's sweep read the owner's pending orders to settle them
// at its own merchant, and its bots' orders landed among the owner's. The
// first command to reach Redis now checks the owner first.
func TestAnotherDeploymentIsRefusedBeforeItsFirstCheck(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	prefix := testPrefix()
	prod := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, Owner: "wechatpay:1900000109", EpochInterval: -1})
	if err := prod.CreateOrder(ctx, storetest.NewOrder("OW-3", "shop", "u1", time.Now())); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	staging := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, Owner: "simulator:1900000109", MaxRetries: -1, EpochInterval: -1})
	srv.Restart() // with its data: prod's order and owner mark are there
	if o, err := staging.GetOrder(ctx, "OW-3"); !errors.Is(err, store.ErrOtherDeployment) {
		t.Fatalf("GetOrder of the owner's order by another deployment before its first Ping: %v, %v; want store.ErrOtherDeployment", o, err)
	}
	if err := staging.CreateOrder(ctx, storetest.NewOrder("OW-4", "shop", "u1", time.Now())); !errors.Is(err, store.ErrOtherDeployment) {
		t.Fatalf("CreateOrder by another deployment: %v; want store.ErrOtherDeployment", err)
	}
	if _, err := prod.GetOrder(ctx, "OW-4"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the other deployment's order reached the owner's keys: %v", err)
	}
	if err := prod.Ping(ctx); err != nil {
		t.Fatalf("the owner's Ping: %v", err)
	}
}
