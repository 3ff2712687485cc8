//go:build unix

package payments_test

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
	redisstore "github.com/paygate/paygate/store/redis"
)

// clusterLag is an env whose store is a Redis Cluster of three primaries,
// each with one replica, opened with store.redis.wait_replicas 1: an
// order and a refund proposal live on their own hash tags, often on two
// primaries, each WAIT answering for its own.
type clusterLag struct {
	*env
	tb     testing.TB
	st     *redisstore.Store
	srvs   []*redistest.Server
	prefix string
}

func newClusterLag(t *testing.T) *clusterLag {
	t.Helper()
	redistest.RequireBinaries(t)
	l := &clusterLag{tb: t, prefix: "pgtest:clag:"}
	var addrs []string
	for range 6 {
		s := redistest.StartServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
			"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
		l.srvs, addrs = append(l.srvs, s), append(addrs, s.Addr())
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range l.srvs {
		info := l.info(s, "cluster")
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(info, "cluster_state:ok") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s", s.Addr(), info)
			}
			time.Sleep(50 * time.Millisecond) // polling an external process
			info = l.info(s, "cluster")
		}
		if strings.Contains(l.info(s, "replication"), "role:master") {
			s.WaitReplicas(1)
		}
	}
	st, err := redisstore.Open(redisstore.Options{Addrs: addrs, Cluster: true, KeyPrefix: l.prefix, RepairInterval: -1,
		WaitReplicas: 1, WaitTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	l.st = st
	l.env = newEnv(t, envOptions{service: func(o *payments.Options) { o.Store = st }})
	l.env.st = st
	return l
}

func (l *clusterLag) info(s *redistest.Server, section string) string {
	l.tb.Helper()
	c := s.Client()
	var info string
	var err error
	if section == "cluster" {
		info, err = c.ClusterInfo(context.Background()).Result()
	} else {
		info, err = c.Info(context.Background(), section).Result()
	}
	if err != nil {
		l.tb.Fatal(err)
	}
	return info
}

// primaryOf is the address of the primary that holds key (under the
// store's prefix).
func (l *clusterLag) primaryOf(key string) string {
	l.tb.Helper()
	c, err := l.st.Client().(*goredis.ClusterClient).MasterForKey(context.Background(), l.prefix+key)
	if err != nil {
		l.tb.Fatal(err)
	}
	return c.Options().Addr
}

// replicaOf is the replica of the primary at addr.
func (l *clusterLag) replicaOf(addr string) *redistest.Server {
	l.tb.Helper()
	for _, s := range l.srvs {
		if strings.Contains(l.info(s, "replication"), "master_port:"+strings.TrimPrefix(addr, "127.0.0.1:")+"\r\n") {
			return s
		}
	}
	l.tb.Fatalf("no replica of %s", addr)
	return nil
}

// stop freezes s (SIGSTOP): a replica that takes nothing, so WAIT on its
// primary sees none acknowledge, until the function returned is called.
func (l *clusterLag) stop(s *redistest.Server) (resume func()) {
	l.tb.Helper()
	pid, err := strconv.Atoi(regexp.MustCompile(`process_id:(\d+)`).FindStringSubmatch(l.info(s, "server"))[1])
	if err != nil {
		l.tb.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		l.tb.Fatal(err)
	}
	resumed := false
	resume = func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	l.tb.Cleanup(resume)
	return resume
}

// TestRefundRetryUnreplicatedReservationSendsNothing: in a cluster with
// wait_replicas, a confirmation whose reservation of the order (refunding)
// no replica acknowledged in time is refused (unavailable) and sends
// nothing. The user's second tap found the order reserved for the
// proposal on its primary, went on under that reservation, spent the
// proposal (acknowledged by the replica of the proposal's own primary)
// and sent the refund while the order's replica still had it paid: a
// failover to it lost the refund's reservation, the order paid again with
// its money gone back. The second tap is refused as the first was until a
// replica has the reservation, and sends the refund once one has.
func TestRefundRetryUnreplicatedReservationSendsNothing(t *testing.T) {
	l := newClusterLag(t)
	ctx := context.Background()
	var o *store.Order
	var p *store.RefundProposal
	for i := 0; ; i++ {
		o = paidOrder(t, l.env, "oUser-clag-"+strconv.Itoa(i), 1)
		p = propose(t, l.env, o, 0)
		if l.primaryOf("{o:"+o.OrderNo+"}:rec") != l.primaryOf("{r:"+p.RefundID+"}") {
			break
		}
		if i == 20 {
			t.Fatal("every order's proposal on its own primary: the test checks nothing")
		}
	}
	resume := l.stop(l.replicaOf(l.primaryOf("{o:" + o.OrderNo + "}:rec")))
	if _, err := l.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("first tap: %v; want unavailable (the reservation not replicated)", err)
	}
	if got := l.order(o.OrderNo); got.Status != store.StatusRefunding || l.sim.RefundCount(o.OrderNo) != 0 {
		t.Fatalf("after the first tap: order %s, %d refunds sent; want refunding on the primary, none sent", got.Status, l.sim.RefundCount(o.OrderNo))
	}
	res, err := l.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
	if n := l.sim.RefundCount(o.OrderNo); n != 0 || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("second tap while no replica has the reservation: %+v, %v, %d refunds sent; want unavailable, none sent", res, err, n)
	}
	resume()
	if res, err := l.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
		t.Fatalf("tap once the replica is back: %+v, %v; want processing", res, err)
	}
	if n := l.sim.RefundCount(o.OrderNo); n != 1 {
		t.Errorf("refunds sent %d; want 1", n)
	}
}
