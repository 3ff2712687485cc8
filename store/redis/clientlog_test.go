package redis

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/logging/logtest"
)

// TestClientLinesGoThroughTheLogger: go-redis's own lines (here: a pool
// that cannot dial) reach the store's logger, not stderr.
func TestClientLinesGoThroughTheLogger(t *testing.T) {
	// Port 1 (tcpmux) has no listener: every dial is refused. (A port
	// freed by closing a listener may be taken by a test running alongside.)
	const addr = "127.0.0.1:1"
	// A limit of its own: another test's dial failures in the last minute
	// would leave this one's out (TestClientLinesAreRateLimited).
	defer clientLines.Store(clientLines.Swap(newLineLimit(time.Now)))
	var buf logtest.Buffer
	s, err := Open(Options{Addrs: []string{addr}, Logger: slog.New(slog.NewJSONHandler(&buf, nil)),
		RepairInterval: -1, EpochInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A client of its own: the store's guard refuses commands to a Redis
	// it could not check, without dialing.
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("a ping to nothing answered")
	}
	if out := buf.String(); !strings.Contains(out, `"msg":"redis client"`) || !strings.Contains(out, "dial") {
		t.Errorf("go-redis's dial failures did not reach the store's logger; it got:\n%s", out)
	}
}

// TestClientLinesAreRateLimited: while Redis is down, go-redis logs a line
// for every command that finds no connection; every poll of an idle server
// (the sweep, the audit worker, the webhook relay) is one, and each request
// under load another, so an outage flooded the log with hundreds of lines a
// minute, though paygate's own warnings about it come once a minute. A line
// of one kind now comes at most once a minute, with the count of those
// left out since.
func TestClientLinesAreRateLimited(t *testing.T) {
	const addr = "127.0.0.1:1" // nothing listens: every dial is refused
	// A clock of the test's own, and a limit starting empty (another
	// test's lines count toward the package's).
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	defer clientLines.Store(clientLines.Swap(newLineLimit(clock)))
	var buf logtest.Buffer
	s, err := Open(Options{Addrs: []string{addr}, Logger: slog.New(slog.NewJSONHandler(&buf, nil)),
		RepairInterval: -1, EpochInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ping := func(n int) {
		t.Helper()
		for range n {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.Ping(ctx).Err()
			cancel()
			if err == nil {
				t.Fatal("a ping to nothing answered")
			}
		}
	}
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, `"msg":"redis client"`) {
				out = append(out, l)
			}
		}
		return out
	}
	ping(5)
	if got := lines(); len(got) != 1 {
		t.Fatalf("%d redis client lines for 5 failed commands within a minute; want 1:\n%s", len(got), strings.Join(got, "\n"))
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	ping(1)
	got := lines()
	if len(got) != 2 || !strings.Contains(got[1], `"suppressed":`) || strings.Contains(got[1], `"suppressed":0`) {
		t.Errorf("a minute later: %d lines, the last %q; want a second one counting the lines left out", len(got), got[len(got)-1])
	}
}

// TestClientLinesKeepWhatChanged: the limit leaves out repeats of a line,
// not news. Keyed by go-redis's format alone, a Sentinel failover within a
// minute of the master found at start (or of an earlier failover) was left
// out, so the log named a master that no longer was; and of two cluster
// nodes that could not be dialled only the first was named.
func TestClientLinesKeepWhatChanged(t *testing.T) {
	const (
		newMaster = "sentinel: new master=%q addr=%q"
		dialFail  = "redis: connection pool: failed to dial after %d attempts: %v"
	)
	type line struct {
		format string
		args   []any
	}
	tests := []struct {
		name  string
		lines []line
		want  []string // the details logged, in order
	}{
		{"a failover soon after start", []line{
			{newMaster, []any{"mymaster", "10.0.0.1:6379"}},
			{newMaster, []any{"mymaster", "10.0.0.2:6379"}},
		}, []string{"10.0.0.1:6379", "10.0.0.2:6379"}},
		{"a failover back", []line{
			{newMaster, []any{"mymaster", "10.0.0.1:6379"}},
			{newMaster, []any{"mymaster", "10.0.0.2:6379"}},
			{newMaster, []any{"mymaster", "10.0.0.1:6379"}},
		}, []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.1:6379"}},
		{"two nodes down, each named once", []line{
			{dialFail, []any{5, "dial tcp 10.0.0.1:6379: connect: connection refused"}},
			{dialFail, []any{5, "dial tcp 10.0.0.2:6379: connect: connection refused"}},
			{dialFail, []any{5, "dial tcp 10.0.0.1:6379: connect: connection refused"}},
			{dialFail, []any{5, "dial tcp 10.0.0.2:6379: connect: connection refused"}},
		}, []string{"10.0.0.1:6379", "10.0.0.2:6379"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			defer clientLines.Store(clientLines.Swap(newLineLimit(func() time.Time { return now })))
			var buf logtest.Buffer
			defer clientLog.Store(clientLog.Swap(slog.New(slog.NewJSONHandler(&buf, nil))))
			for _, l := range tc.lines {
				clientLogger{}.Printf(context.Background(), l.format, l.args...)
			}
			var got []string
			for _, l := range strings.Split(buf.String(), "\n") {
				// The test's lines alone: a client of another test may
				// still log its dial failures.
				if strings.Contains(l, `"msg":"redis client"`) && strings.Contains(l, "10.0.0.") {
					got = append(got, l)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d lines; want %d (%q):\n%s", len(got), len(tc.want), tc.want, strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("line %d %s; want it to name %s", i, got[i], w)
				}
			}
		})
	}
}
