package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store/storetest"
)

// sharedAddr is the Redis every developer machine and CI runner provides.
const sharedAddr = "127.0.0.1:6379"

// missing skips locally but fails in CI, where every dependency must be there.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set: a missing dependency fails the run)", msg)
	}
	t.Skipf("%s (set CI=true to make this fatal)", msg)
}

func requireSharedRedis(t testing.TB) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		missing(t, "no Redis at %s: %v", sharedAddr, err)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testPrefix is a key prefix no other test uses.
func testPrefix() string { return "pgtest:" + randHex(6) + ":" }

// dropPrefix deletes every key under prefix (on every master of a cluster).
func dropPrefix(t testing.TB, c goredis.UniversalClient, prefix string) {
	t.Helper()
	for _, k := range redistest.Keys(t, c, prefix) {
		if err := c.Del(context.Background(), k).Err(); err != nil {
			t.Errorf("cleaning up %s*: %v", prefix, err)
			return
		}
	}
}

// dropShared removes prefix's keys from the shared server through a client
// of its own: the store's client refuses every command once its guard finds
// the epoch marker gone, which the removal itself may make it find (a slow
// SCAN over a crowded server, the marker deleted before the rest).
func dropShared(t testing.TB, prefix string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr})
	defer c.Close()
	dropPrefix(t, c, prefix)
}

// openOn opens a store on addrs under a fresh prefix, removed at cleanup.
func openOn(t testing.TB, clock *storetest.Clock, opts Options) *Store {
	t.Helper()
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = testPrefix()
	}
	if clock != nil {
		opts.Now = clock.Now
	}
	if opts.RepairInterval == 0 {
		opts.RepairInterval = -1
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		// Built as Open builds the store's: with MasterName the addresses
		// are sentinels, which answer no SCAN.
		c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: opts.Addrs, IsClusterMode: opts.Cluster, MasterName: opts.MasterName})
		dropPrefix(t, c, opts.KeyPrefix)
		_ = c.Close()
		_ = s.Close()
	})
	return s
}

// startCluster starts three cluster-enabled servers, joins them with
// redis-cli --cluster create and waits for cluster_state:ok on every node.
func startCluster(t testing.TB) []string {
	t.Helper()
	return startClusterOf(t, 3, 0)
}

// startClusterWithReplicas starts three primaries with one replica each, as
// startCluster does, and also waits until every primary has its replica
// online, so that WAIT 1 is answered.
func startClusterWithReplicas(t testing.TB) []string {
	t.Helper()
	srvs := startClusterServers(t, 6, 1)
	var primaries []*redistest.Server
	for _, s := range srvs {
		info, err := s.Client().Info(context.Background(), "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "role:master") {
			primaries = append(primaries, s)
		}
	}
	if len(primaries) != 3 {
		t.Fatalf("%d primaries of 6 servers; want 3", len(primaries))
	}
	for _, p := range primaries {
		p.WaitReplicas(1)
	}
	return addrsOf(srvs)
}

// startClusterOf starts n cluster-enabled servers, joins them with
// redis-cli --cluster create (replicas per primary) and waits for
// cluster_state:ok on every node.
func startClusterOf(t testing.TB, n, replicas int) []string {
	t.Helper()
	return addrsOf(startClusterServers(t, n, replicas))
}

// startClusterServers is startClusterOf returning the servers, for a test
// that restarts one of them.
func startClusterServers(t testing.TB, n, replicas int) []*redistest.Server {
	t.Helper()
	var srvs []*redistest.Server
	for range n {
		srvs = append(srvs, redistest.StartServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"))
	}
	addrs := addrsOf(srvs)
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitClusterOK(t, addrs)
	return srvs
}

// waitClusterOK polls every node until it reports cluster_state:ok.
func waitClusterOK(t testing.TB, addrs []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				_ = c.Close()
				t.Fatalf("cluster node %s not ok: %v %s", a, err, info)
			}
			time.Sleep(50 * time.Millisecond) // polling external processes
		}
		_ = c.Close()
	}
}

func addrsOf(srvs []*redistest.Server) []string {
	addrs := make([]string, len(srvs))
	for i, s := range srvs {
		addrs[i] = s.Addr()
	}
	return addrs
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
