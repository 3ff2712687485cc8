package redis

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/logging/logtest"
)

// TestEvictionPolicyWarned: a Redis that evicts keys under memory pressure
// is warned of at Open, since claims, tombstones and outbox queues would
// vanish silently; one that does not evict is not. A managed Redis
// (ElastiCache, Azure Cache, Memorystore) refuses CONFIG, or renames it,
// and often evicts by default (volatile-lru): its policy is read from INFO
// instead, which such a Redis answers, and so too for a user whose ACL
// denies CONFIG. One that answers neither opens and works without a word.
func TestEvictionPolicyWarned(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		setup  func(t *testing.T, srv *redistest.Server) Options
		policy string
		warns  bool
	}{
		{"volatile-lru", []string{"--maxmemory-policy", "volatile-lru"}, nil, "volatile-lru", true},
		{"allkeys-lfu", []string{"--maxmemory-policy", "allkeys-lfu"}, nil, "allkeys-lfu", true},
		{"noeviction", []string{"--maxmemory-policy", "noeviction"}, nil, "noeviction", false},
		{"CONFIG renamed away", []string{"--maxmemory-policy", "volatile-lru", "--rename-command", "CONFIG", ""}, nil, "volatile-lru", true},
		{"ACL denies CONFIG", []string{"--maxmemory-policy", "allkeys-lru"}, deniedACL("-config"), "allkeys-lru", true},
		{"ACL denies CONFIG, noeviction", []string{"--maxmemory-policy", "noeviction"}, deniedACL("-config"), "noeviction", false},
		{"ACL denies CONFIG and INFO", []string{"--maxmemory-policy", "volatile-lru"}, deniedACL("-config", "-info"), "volatile-lru", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.StartServer(t, tc.args...)
			var opts Options
			if tc.setup != nil {
				opts = tc.setup(t, srv)
			}
			if strings.Contains(tc.name, "CONFIG") {
				c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Username: opts.Username, Password: opts.Password})
				err := c.ConfigGet(context.Background(), "maxmemory-policy").Err()
				_ = c.Close()
				if err == nil {
					t.Fatal("CONFIG GET answered where it is refused")
				}
			}
			want := "" // the attribute the warning carries; "" for none
			if tc.warns {
				want = `"maxmemory_policy":"` + tc.policy + `"`
			}
			wantWarning(t, openedLog(t, srv.Addr(), opts), want, srv.Addr(), `"maxmemory_policy"`)
		})
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// TestStartupWarningsWhenRedisComesUpLater: paygate started before its
// Redis (a compose file or a pod without ordering, a Redis restarting at
// the time) warns of an evicting policy, and of fewer replicas than
// wait_replicas, once it first reaches it: the checks ran only at Open and
// failed against a Redis not yet there, so the warnings were never logged.
func TestStartupWarningsWhenRedisComesUpLater(t *testing.T) {
	srv := redistest.StartServer(t, "--maxmemory-policy", "volatile-lru")
	srv.Kill()
	var buf logtest.Buffer
	s := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, WaitReplicas: 1, MaxRetries: -1,
		Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping answered with Redis down")
	}
	if out := buf.String(); strings.Contains(out, `"maxmemory_policy"`) {
		t.Fatalf("warned of a policy of a Redis not reached:\n%s", out)
	}
	srv.Restart()
	_ = s.Ping(context.Background()) // store.ErrWritesFail: no replica
	_ = s.Ping(context.Background())
	out := buf.String()
	if strings.Count(out, `"maxmemory_policy":"volatile-lru"`) != 1 {
		t.Errorf("want one warning of the policy volatile-lru once Redis is reached; the log:\n%s", out)
	}
	if strings.Count(out, `"wait_replicas":1`) != 1 {
		t.Errorf("want one warning of the replicas short of wait_replicas once Redis is reached; the log:\n%s", out)
	}
}
