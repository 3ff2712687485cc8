package redis

import (
	"context"
	"log/slog"
	"strings"
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
