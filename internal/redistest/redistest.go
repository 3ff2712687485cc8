// Package redistest starts private Redis processes for tests: servers on
// free loopback ports in the test's temporary directory, and a Sentinel set
// (a master, its replica and one sentinel), all killed and removed when the
// test ends (and killed when the test binary dies without its cleanups); and PrefixState, a comparable picture of the keys under a
// prefix, for tests that prove a command left Redis as it found it. It is
// for tests only.
//
// Without redis-server and redis-cli a test is skipped on a developer's
// machine and fails when CI is set, as the store tests' own helpers do.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/freeport"
	"github.com/paygate/paygate/internal/testproc"
)

// Bounds of the waits on the processes: generous, for a loaded CI machine.
const (
	upWithin       = 10 * time.Second
	syncWithin     = 30 * time.Second
	discoverWithin = 30 * time.Second
	failoverWithin = 30 * time.Second
	pollEvery      = 50 * time.Millisecond
)

// RequireBinaries skips the test when redis-server or redis-cli is missing,
// and fails it when CI is set: there every dependency must be present.
func RequireBinaries(t testing.TB) {
	t.Helper()
	for _, b := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			msg := fmt.Sprintf("%s not installed: %v", b, err)
			if os.Getenv("CI") != "" {
				t.Fatalf("%s (CI is set: a missing dependency fails the run)", msg)
			}
			t.Skipf("%s (set CI=true to make this fatal)", msg)
		}
	}
}

// freePort finds a loopback port that is free, and whose cluster bus port
// (port+10000) is free too: a cluster-enabled server listens on both, and
// keeping the pair costs nothing to a server outside a cluster. Both are
// below the kernel's ephemeral range (freeport), where no other test's
// connection takes them before the server binds them.
func freePort(t testing.TB) int { return freeport.Port(t, 10000) }

var seq atomic.Int64

// Server is a redis-server (or sentinel) process the test started.
type Server struct {
	t        testing.TB
	Port     int
	Dir      string
	Password string // requirepass; "" for none
	args     []string
	cmd      *exec.Cmd
	done     <-chan struct{}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Client is a client of this server alone, closed when the test ends.
func (s *Server) Client() *goredis.Client {
	c := s.client()
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) client() *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: s.Addr(), Password: s.Password, MaxRetries: -1, DialTimeout: time.Second})
}

// Kill stops the server abruptly and waits until it is gone.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Pause stops the server process (SIGSTOP): its port still accepts
// connections, in the kernel's backlog, and nothing is answered until Resume
// (a stalled host, a long fork or swap storm). The process is resumed when
// the test ends, before it is killed.
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("SIGSTOP redis-server on %d: %v", s.Port, err)
	}
	s.t.Cleanup(s.Resume)
}

// Resume continues a paused server (SIGCONT); it answers what it was sent
// meanwhile.
func (s *Server) Resume() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Shutdown stops the server gracefully (SIGTERM: it writes what it persists
// and exits) and waits until it is gone.
func (s *Server) Shutdown() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
	s.cmd = nil
}

// Restart starts the server again, after killing it if it still runs, with
// the same arguments, port and directory (so it loads what it persisted
// there), and waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.run()
}

// StartServer runs redis-server without persistence (--save "" --appendonly
// no), with extra arguments, and waits until it answers PING.
func StartServer(t testing.TB, extra ...string) *Server {
	t.Helper()
	return start(t, nil, extra, "")
}

// start runs redis-server with pre (a config file, for a sentinel) before
// the common arguments and extra after them; with a password, the server
// requires it (and uses it with its master).
func start(t testing.TB, pre, extra []string, password string) *Server {
	t.Helper()
	RequireBinaries(t)
	dir := filepath.Join(t.TempDir(), "redis-"+strconv.FormatInt(seq.Add(1), 10))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Port: freePort(t), Dir: dir, Password: password}
	args := append(append([]string{}, pre...), "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--loglevel", "notice", "--logfile", filepath.Join(dir, "log"))
	if password != "" {
		args = append(args, "--requirepass", password, "--masterauth", password)
	}
	// After the common arguments: a later one overrides an earlier one
	// (--appendonly yes turns persistence on).
	s.args = append(args, extra...)
	t.Cleanup(s.Kill) // t.TempDir removes the directory after
	s.run()
	return s
}

// run starts redis-server with the server's arguments and waits until it
// answers PING. The server is killed with the test binary when that dies
// without its cleanups (testproc.Spawn), paused or not.
func (s *Server) run() {
	s.t.Helper()
	cmd := exec.Command("redis-server", s.args...)
	done, err := testproc.Spawn(cmd, syscall.SIGKILL)
	if err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.cmd, s.done = cmd, done
	s.waitUp()
}

// Log is the server's log file, for a failure message.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
	return string(b)
}

func (s *Server) waitUp() {
	s.t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), Password: s.Password, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(upWithin)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("redis-server on %d exited: %s", s.Port, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %d did not answer within %s: %v", s.Port, upWithin, err)
		}
		time.Sleep(20 * time.Millisecond) // polling an external process
	}
}

// poll calls cond every pollEvery until it returns "" (done) or within
// passes; then it fails the test with cond's last answer.
func poll(t testing.TB, what string, within time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, within, why)
		}
		time.Sleep(pollEvery) // polling external processes
	}
}

// WaitReplicas waits until the server is a master with n replicas online.
func (s *Server) WaitReplicas(n int) {
	s.t.Helper()
	c := s.client()
	defer c.Close()
	poll(s.t, s.Addr()+" has "+strconv.Itoa(n)+" replicas online", syncWithin, func() string {
		info, err := c.Info(context.Background(), "replication").Result()
		if err != nil {
			return err.Error()
		}
		if !strings.Contains(info, "role:master") {
			return "not a master:\n" + info
		}
		if strings.Count(info, "state=online") != n || !strings.Contains(info, "connected_slaves:"+strconv.Itoa(n)) {
			return info
		}
		return ""
	})
}

// Sentinel is a Sentinel set: a master, its replica and one sentinel
// monitoring them under Name (quorum 1). The sentinel itself never requires
// a password: paygate has no key for one.
type Sentinel struct {
	t        testing.TB
	Name     string
	Master   *Server // the master (after Failover, the promoted replica)
	Replica  *Server // the other one
	Sentinel *Server
}

// Addrs are the sentinels' addresses: what store.redis.addrs lists in
// sentinel mode.
func (s *Sentinel) Addrs() []string { return []string{s.Sentinel.Addr()} }

// StartSentinel starts a master, a replica of it and a sentinel, and waits
// until the replica is in sync and the sentinel knows both.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	return startSentinel(t, "")
}

// StartSentinelAuth is StartSentinel with a master and replica that require
// password (the sentinel is given it to monitor them).
func StartSentinelAuth(t testing.TB, password string) *Sentinel {
	t.Helper()
	return startSentinel(t, password)
}

func startSentinel(t testing.TB, password string) *Sentinel {
	t.Helper()
	RequireBinaries(t)
	s := &Sentinel{t: t, Name: "pgtest-" + strconv.FormatInt(seq.Add(1), 10)}
	fast := []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}
	s.Master = start(t, nil, fast, password)
	s.Replica = start(t, nil, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port)}, fast...), password)
	s.Master.WaitReplicas(1)
	// Started once the replica is online, so the sentinel's first INFO of
	// the master (sent at once, then every 10s) names it.
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	body := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 1\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 10000\n", s.Name, s.Master.Port)
	if password != "" {
		body += fmt.Sprintf("sentinel auth-pass %s %s\n", s.Name, password)
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Sentinel = start(t, []string{conf, "--sentinel"}, nil, "")
	s.waitKnown()
	return s
}

// sentinelClient is a client of the sentinel, closed when the test ends.
func (s *Sentinel) sentinelClient() *goredis.SentinelClient {
	c := goredis.NewSentinelClient(&goredis.Options{Addr: s.Sentinel.Addr(), MaxRetries: -1})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitKnown waits until the sentinel names the master as the master, with
// no failover in progress, and the replica as its replica, linked and up.
func (s *Sentinel) waitKnown() {
	s.t.Helper()
	master, replica := s.Master, s.Replica
	sc := s.sentinelClient()
	ctx := context.Background()
	poll(s.t, "sentinel knows master "+master.Addr()+" and replica "+replica.Addr(), discoverWithin, func() string {
		m, err := sc.Master(ctx, s.Name).Result()
		if err != nil {
			return err.Error()
		}
		if net.JoinHostPort(m["ip"], m["port"]) != master.Addr() || m["flags"] != "master" || m["num-slaves"] != "1" {
			return fmt.Sprintf("master: %v", m)
		}
		rs, err := sc.Replicas(ctx, s.Name).Result()
		if err != nil {
			return err.Error()
		}
		if len(rs) != 1 {
			return fmt.Sprintf("replicas: %v", rs)
		}
		r := rs[0]
		if net.JoinHostPort(r["ip"], r["port"]) != replica.Addr() || r["flags"] != "slave" || r["master-link-status"] != "ok" {
			return fmt.Sprintf("replica: %v", r)
		}
		return ""
	})
}

// Failover forces a failover (SENTINEL FAILOVER) and waits until the
// sentinel names the replica as the master; Master and Replica are swapped.
// It does not wait for the sentinel to turn the old master into a replica
// (it does so about 10s later); until then the old master still answers as
// a master, and the new one has no replica.
func (s *Sentinel) Failover() {
	s.t.Helper()
	ctx := context.Background()
	sc := s.sentinelClient()
	if err := sc.Failover(ctx, s.Name).Err(); err != nil {
		s.t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	poll(s.t, "sentinel names the new master "+s.Replica.Addr(), failoverWithin, func() string {
		a, err := sc.GetMasterAddrByName(ctx, s.Name).Result()
		if err != nil {
			return err.Error()
		}
		if got := net.JoinHostPort(a[0], a[1]); got != s.Replica.Addr() {
			return "master is " + got
		}
		return ""
	})
	s.Master, s.Replica = s.Replica, s.Master
}

// StartCluster starts n cluster-enabled servers (no replicas; n is at least
// 3, as redis-cli wants), joins them with redis-cli --cluster create and
// waits until every node reports cluster_state:ok.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	var srvs []*Server
	var addrs []string
	for range n {
		s := StartServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		srvs, addrs = append(srvs, s), append(addrs, s.Addr())
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range srvs {
		c := s.Client()
		poll(t, s.Addr()+" reports cluster_state:ok", syncWithin, func() string {
			info, err := c.ClusterInfo(context.Background()).Result()
			switch {
			case err != nil:
				return err.Error()
			case !strings.Contains(info, "cluster_state:ok"):
				return info
			}
			return ""
		})
	}
	return srvs
}

// RefusedAddr is an address no store answers at, for a store that is
// down: a dial there is refused at once. It is port 1, below the range the
// kernel hands out for port 0, so no server a parallel test starts (a
// private Redis, an httptest server) can come to listen there, as one did
// on the port of a listener a test had opened and closed to get a free
// address: that store then answered.
const RefusedAddr = "127.0.0.1:1"
