package redis

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/logging/logtest"
)

// TestEvictionPolicyWarned: a Redis that evicts keys under memory pressure
// is warned of at Open, since claims, tombstones and outbox queues would
// vanish silently; one that does not evict is not, and one that refuses
// CONFIG (managed Redis) opens and works without a word.
func TestEvictionPolicyWarned(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		warns bool
	}{
		{"volatile-lru", []string{"--maxmemory-policy", "volatile-lru"}, true},
		{"allkeys-lfu", []string{"--maxmemory-policy", "allkeys-lfu"}, true},
		{"noeviction", []string{"--maxmemory-policy", "noeviction"}, false},
		{"CONFIG disabled", []string{"--maxmemory-policy", "volatile-lru", "--rename-command", "CONFIG", ""}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.StartServer(t, tc.args...)
			if tc.name == "CONFIG disabled" {
				c := srv.Client()
				if err := c.ConfigGet(context.Background(), "maxmemory-policy").Err(); err == nil {
					t.Fatal("CONFIG GET answered on a server without CONFIG")
				}
			}
			var buf logtest.Buffer
			s := openOn(t, nil, Options{Addrs: []string{srv.Addr()}, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			out := buf.String()
			warned := strings.Contains(out, `"maxmemory_policy"`)
			if warned != tc.warns {
				t.Fatalf("warned %v; want %v. The log:\n%s", warned, tc.warns, out)
			}
			if tc.warns && (!strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, `"maxmemory_policy":"`+tc.name+`"`) ||
				!strings.Contains(out, srv.Addr())) {
				t.Errorf("the warning does not name the policy %s and the server %s at level WARN:\n%s", tc.name, srv.Addr(), out)
			}
		})
	}
}
