package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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

func requireBinaries(t testing.TB) {
	t.Helper()
	for _, b := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			missing(t, "%s not installed: %v", b, err)
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testPrefix is a key prefix no other test uses.
func testPrefix() string { return "pgtest:" + randHex(6) + ":" }

// dropPrefix deletes every key under prefix (on every node of a cluster).
func dropPrefix(t testing.TB, c goredis.UniversalClient, prefix string) {
	t.Helper()
	ctx := context.Background()
	del := func(ctx context.Context, node goredis.Cmdable) error {
		iter := node.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			if err := node.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return del(ctx, n) })
	} else {
		err = del(ctx, c)
	}
	if err != nil {
		t.Errorf("cleaning up %s*: %v", prefix, err)
	}
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

// freePort finds a loopback port that is free, and whose cluster bus port
// (port+10000) is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if p+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		_ = bus.Close()
		return p
	}
	t.Fatal("no free port pair")
	return 0
}

var serverSeq atomic.Int64

// server is a redis-server the test started.
type server struct {
	t    testing.TB
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// startServer runs redis-server on a free loopback port in its own directory,
// with extra arguments, and waits until it answers.
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	requireBinaries(t)
	dir := filepath.Join(t.TempDir(), "redis-"+strconv.FormatInt(serverSeq.Add(1), 10))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, port: freePort(t), dir: dir}
	s.args = append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--protected-mode", "no", "--loglevel", "warning", "--logfile", filepath.Join(dir, "log")}, extra...)
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { _ = s.cmd.Wait(); close(done) }()
	s.waitUp()
}

// waitUp polls the external process until it answers PING (the only place
// these tests poll, with a deadline).
func (s *server) waitUp() {
	s.t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: s.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
			s.t.Fatalf("redis-server on %d exited: %s", s.port, log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %d did not answer: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond) // polling an external process
	}
}

// kill stops the server abruptly and waits for it to be gone.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

func (s *server) stop() { s.kill() }

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
	addrs := startClusterOf(t, 6, 1)
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var online, primaries atomic.Int32
		err := cc.ForEachMaster(context.Background(), func(ctx context.Context, n *goredis.Client) error {
			primaries.Add(1)
			info, err := n.Info(ctx, "replication").Result()
			if err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online") {
				online.Add(1)
			}
			return err
		})
		if err == nil && primaries.Load() == 3 && online.Load() == 3 {
			return addrs
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas not online: %d of %d primaries have one (%v)", online.Load(), primaries.Load(), err)
		}
		time.Sleep(50 * time.Millisecond) // polling external processes
	}
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
func startClusterServers(t testing.TB, n, replicas int) []*server {
	t.Helper()
	requireBinaries(t)
	var srvs []*server
	for range n {
		srvs = append(srvs, startServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000", "--appendonly", "no"))
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

func addrsOf(srvs []*server) []string {
	addrs := make([]string, len(srvs))
	for i, s := range srvs {
		addrs[i] = s.addr()
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
