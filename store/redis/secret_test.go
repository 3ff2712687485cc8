package redis

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// TestSecretWaitsForReplicas: with wait_replicas, the user hash key
// (privacy.hash_key, generated once and kept in the store) is used only
// once a replica has it. Written with no WAIT, a failover to a replica
// that never got it lost it, and a replica started after generated a
// second key: one user, two hashes toward providers. A key found on a
// primary that no replica confirms is not used either: it may be the one
// another replica just wrote.
func TestSecretWaitsForReplicas(t *testing.T) {
	primary := redistest.StartServer(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	primary.WaitReplicas(1)
	s := openOn(t, nil, Options{Addrs: []string{primary.Addr()}, WaitReplicas: 1, WaitTimeout: 2 * time.Second}) // generous: a loaded CI machine
	ctx := context.Background()
	gen := func(v string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(v), nil } }

	v, err := s.GetOrCreateSecret(ctx, "hash_key", gen("k1"))
	if err != nil || string(v) != "k1" {
		t.Fatalf("GetOrCreateSecret with a replica online: %q, %v; want k1", v, err)
	}
	rc := goredis.NewClient(&goredis.Options{Addr: replica.Addr()})
	defer rc.Close()
	if got, err := rc.Get(ctx, s.k.one("s", "hash_key")).Bytes(); err != nil || string(got) != "k1" {
		t.Errorf("the replica does not have the acknowledged secret: %q, %v", got, err)
	}

	replica.Kill()
	if v, err := s.GetOrCreateSecret(ctx, "other_key", gen("k2")); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a secret made without a replica: %q, %v; want ErrUnavailable", v, err)
	}
	if v, err := s.GetOrCreateSecret(ctx, "other_key", gen("k3")); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a secret found on the primary that no replica confirms: %q, %v; want ErrUnavailable", v, err)
	}
}

// TestReplicaFindsItsHashKeyGone: a replica that hashes users with the key
// it loaded from Redis, and finds that key gone or replaced (a failover to
// a replica that never had it, and a paygate started since made its own),
// hashes one user apart from the replicas started since. It refuses to go
// on, as for any data Redis lost: Ping fails (/readyz 503), an ALERT, every
// command refused; and the others stop too, so every replica is restarted
// onto the one key Redis now holds.
func TestReplicaFindsItsHashKeyGone(t *testing.T) {
	ctx := context.Background()
	gen := func(v string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(v), nil } }
	tests := []struct {
		name   string
		change func(t *testing.T, c *goredis.Client, key string, prefix string)
	}{
		{"gone", func(t *testing.T, c *goredis.Client, key, _ string) {
			if err := c.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by a replica started since", func(t *testing.T, c *goredis.Client, key, prefix string) {
			if err := c.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
			b := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix, EpochInterval: -1})
			if v, err := b.GetOrCreateSecret(ctx, "hash_key", gen("from-b")); err != nil || string(v) != "from-b" {
				t.Fatalf("the later replica's key: %q, %v", v, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testPrefix()
			logs := &logtest.Buffer{}
			a := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix, EpochInterval: -1, Logger: logging.New(logs, slog.LevelDebug, nil)})
			other := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix, EpochInterval: -1})
			if err := other.Ping(ctx); err != nil {
				t.Fatalf("Ping of another replica before the loss: %v", err)
			}
			v, err := a.GetOrCreateSecret(ctx, "hash_key", gen("from-a"))
			if err != nil || !bytes.Equal(v, []byte("from-a")) {
				t.Fatalf("GetOrCreateSecret: %q, %v", v, err)
			}
			if err := a.Ping(ctx); err != nil {
				t.Fatalf("Ping before the loss: %v", err)
			}
			c := goredis.NewClient(&goredis.Options{Addr: sharedAddr})
			defer c.Close()
			tc.change(t, c, a.k.one("s", "hash_key"), prefix)

			err = a.Ping(ctx)
			if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, store.ErrDataLost) || !strings.Contains(err.Error(), "hash key") {
				t.Fatalf("Ping of the replica whose hash key is gone: %v; want ErrUnavailable, ErrDataLost, naming the hash key", err)
			}
			// The ALERT names the Redis key that lost it, which is no
			// secret: masked, it told the operator nothing.
			if l := logs.String(); !strings.Contains(l, `"alert":true`) || !strings.Contains(l, `"`+a.k.one("s", "hash_key")+`"`) {
				t.Errorf("the ALERT does not name the Redis key %s: %s", a.k.one("s", "hash_key"), l)
			}
			assertRefusesWrites(t, a, []string{sharedAddr}, prefix)
			if err := other.Ping(ctx); !errors.Is(err, store.ErrDataLost) {
				t.Errorf("Ping of a replica started before the loss: %v; want ErrDataLost, every replica restarted onto one key", err)
			}
		})
	}
}
