package redis

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/logging/logtest"
)

// TestStartRefusedSaysSo: a Redis that answers the start's first check
// by refusing paygate's credentials (WRONGPASS) is no Redis that "did not
// answer at start": its warning says it refused and names the keys to
// look at, as an operator of a mistyped store.redis.password otherwise
// looked at the network.
func TestStartRefusedSaysSo(t *testing.T) {
	srv := redistest.StartServer(t)
	opts := aclUser(t, srv)
	opts.Password = "not-pg-secret"
	var buf logtest.Buffer
	opts.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	opts.KeyPrefix, opts.Owner, opts.RepairInterval, opts.NoWait = testPrefix(), "simulator:1", -1, true
	opts.MaxRetries, opts.DialTimeout = 1, time.Second
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	<-s.Started()
	_ = s.Close()
	out := buf.String()
	if strings.Contains(out, "did not answer") || !strings.Contains(out, "Redis refused paygate at start") ||
		!strings.Contains(out, "store.redis.username and password") || !strings.Contains(out, "WRONGPASS") {
		t.Errorf("the start's warning for a refused password:\n%s\nwant it refused, naming store.redis.username and password and Redis's answer", out)
	}
}

// TestStartOnAReplicaSaysSo: a Redis that answers the start's first check
// by refusing its write as a read-only replica (store.redis.addrs naming a
// replica, not the primary) answered: its warning says Redis refused, with
// Redis's answer, not that it did not answer, which sent the operator to
// the network.
func TestStartOnAReplicaSaysSo(t *testing.T) {
	primary := redistest.StartServer(t)
	replica := redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	var buf logtest.Buffer
	s, err := Open(Options{Addrs: []string{replica.Addr()}, KeyPrefix: testPrefix(), Owner: "simulator:1",
		RepairInterval: -1, NoWait: true, MaxRetries: 1, DialTimeout: time.Second,
		Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	<-s.Started()
	_ = s.Close()
	out := buf.String()
	if strings.Contains(out, "did not answer") || !strings.Contains(out, "Redis refused paygate's first write at start") ||
		!strings.Contains(out, "names a replica") || !strings.Contains(out, "READONLY You can't write") {
		t.Errorf("the start's warning on a read-only replica:\n%s\nwant it refused, naming a replica and Redis's answer", out)
	}
}
