package redis

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// TestTooFewReplicasWarned: with store.redis.wait_replicas above the
// replicas a primary has, every money write is refused (fail closed) while
// chat goes on, so the only sign was a log line per
// refused payment ("0 of 1 replicas within 1s"): Open warns once, naming
// the server, what it has and what is asked. Enough replicas, or no
// wait_replicas, say nothing.
func TestTooFewReplicasWarned(t *testing.T) {
	primary := redistest.StartServer(t, "--repl-diskless-sync-delay", "0")
	lone := redistest.StartServer(t)
	redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	primary.WaitReplicas(1)
	tests := []struct {
		name  string
		srv   *redistest.Server
		wait  int
		warns bool
	}{
		{"no replica, wait 1", lone, 1, true},
		{"one replica, wait 2", primary, 2, true},
		{"one replica, wait 1", primary, 1, false},
		{"no replica, no wait", lone, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf logtest.Buffer
			s := openOn(t, nil, Options{Addrs: []string{tc.srv.Addr()}, WaitReplicas: tc.wait,
				Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
			// Ping reports the shortfall too (TestPingSaysWhenReplicasAreShort).
			if err := s.Ping(context.Background()); (err != nil) != tc.warns || (err != nil && !errors.Is(err, store.ErrWritesFail)) {
				t.Fatalf("Ping: %v; want store.ErrWritesFail %v", err, tc.warns)
			}
			out := buf.String()
			warned := strings.Contains(out, `"wait_replicas"`)
			if warned != tc.warns {
				t.Fatalf("warned %v; want %v. The log:\n%s", warned, tc.warns, out)
			}
			if tc.warns && (!strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, tc.srv.Addr()) ||
				!strings.Contains(out, `"wait_replicas":`+strconv.Itoa(tc.wait))) {
				t.Errorf("the warning does not name the server %s and wait_replicas %d at level WARN:\n%s", tc.srv.Addr(), tc.wait, out)
			}
		})
	}
}
