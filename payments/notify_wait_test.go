package payments_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	redisstore "github.com/paygate/paygate/store/redis"
)

// lagEnv is an env whose store is Redis on a private primary with one
// replica, opened with store.redis.wait_replicas 1, as a deployment that
// fails over to its replica must run.
type lagEnv struct {
	*env
	primary, replica *redistest.Server
	prefix           string
}

func newLagEnv(t *testing.T) *lagEnv {
	t.Helper()
	redistest.RequireBinaries(t)
	fast := []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}
	l := &lagEnv{primary: redistest.StartServer(t, fast...), prefix: "pgtest:lag:"}
	l.replica = redistest.StartServer(t, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(l.primary.Port)}, fast...)...)
	l.primary.WaitReplicas(1)
	// A second: a write the replica takes is acknowledged well within it
	// on a loaded machine (300ms was not, now and then); each refused one
	// waits it out.
	st, err := redisstore.Open(redisstore.Options{Addrs: []string{l.primary.Addr()}, KeyPrefix: l.prefix, RepairInterval: -1,
		WaitReplicas: 1, WaitTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	l.env = newEnv(t, envOptions{service: func(o *payments.Options) { o.Store = st }})
	l.st = st
	return l
}

// detach makes the replica stop taking the primary's writes (a replica
// that lags: WAIT sees none acknowledge them), until attach.
func (l *lagEnv) detach() {
	l.t.Helper()
	if err := l.replica.Client().ReplicaOf(context.Background(), "NO", "ONE").Err(); err != nil {
		l.t.Fatal(err)
	}
	l.primary.WaitReplicas(0)
}

// attach makes the replica take the primary's writes again, and waits
// until it has all of them.
func (l *lagEnv) attach() {
	l.t.Helper()
	if err := l.replica.Client().ReplicaOf(context.Background(), "127.0.0.1", strconv.Itoa(l.primary.Port)).Err(); err != nil {
		l.t.Fatal(err)
	}
	l.primary.WaitReplicas(1)
	// Online, and caught up: the replica acknowledged all the primary has.
	c := l.primary.Client()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.Info(context.Background(), "replication").Result()
		if err != nil {
			l.t.Fatal(err)
		}
		m := regexp.MustCompile(`master_repl_offset:(\d+)`).FindStringSubmatch(info)
		if m != nil && strings.Contains(info, ",offset="+m[1]+",") {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("replica not caught up within 10s:\n%s", info)
		}
		time.Sleep(10 * time.Millisecond) // polling an external process
	}
}

// onReplica is order no as the replica holds it: what a failover to it
// would serve.
func (l *lagEnv) onReplica(no string) *store.Order {
	l.t.Helper()
	st, err := redisstore.Open(redisstore.Options{Addrs: []string{l.replica.Addr()}, KeyPrefix: l.prefix, ReadOnly: true, RepairInterval: -1, EpochInterval: -1})
	if err != nil {
		l.t.Fatal(err)
	}
	defer st.Close()
	o, err := st.GetOrder(context.Background(), no)
	if err != nil {
		l.t.Fatalf("order %s on the replica: %v", no, err)
	}
	return o
}

// TestNotificationUnreplicatedRetryAnswersFail: with wait_replicas, a
// notification whose write no replica acknowledged in time is answered
// 500, so WeChat Pay retries. Its retry found the order changed on the
// primary, a duplicate, and was answered 204 while the replica still had
// the order as before: a failover to it lost the payment (or the refund),
// and WeChat Pay, acknowledged, never notified again. The retry is
// answered 500 as the first try was until a replica has the write, then
// 204.
func TestNotificationUnreplicatedRetryAnswersFail(t *testing.T) {
	cases := []struct {
		name string
		// prepare makes the order (the replica attached) and the
		// notification that moves it from before to after.
		prepare       func(t *testing.T, l *lagEnv) (*store.Order, *wxsim.Notification)
		before, after store.OrderStatus
	}{
		{name: "payment", before: store.StatusAwaitingPayment, after: store.StatusPaid,
			prepare: func(t *testing.T, l *lagEnv) (*store.Order, *wxsim.Notification) {
				o := l.create("oUser-lag-paid", 1)
				return o, l.buildPayment(l.paidTx(o), nil)
			}},
		{name: "refund", before: store.StatusRefunding, after: store.StatusRefunded,
			prepare: func(t *testing.T, l *lagEnv) (*store.Order, *wxsim.Notification) {
				o := paidOrder(t, l.env, "oUser-lag-refund", 1)
				p := propose(t, l.env, o, 0)
				if _, err := l.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); err != nil {
					t.Fatalf("confirm refund: %v", err)
				}
				rf, _ := l.sim.Refund(p.OutRefundNo)
				res := wxsim.RefundResource{MchID: l.sim.MchID(), TransactionID: rf.TransactionID, OutTradeNo: rf.OutTradeNo,
					RefundID: rf.RefundID, OutRefundNo: rf.OutRefundNo, RefundStatus: "SUCCESS"}
				res.Amount.Total, res.Amount.Refund = o.AmountFen, o.AmountFen
				n, err := l.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventRefundSuccess, OriginalType: "refund", Resource: res})
				if err != nil {
					t.Fatal(err)
				}
				return o, n
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLagEnv(t)
			o, n := tc.prepare(t, l)
			l.detach()
			if s, body := l.post(n.Header, n.Body); s != http.StatusInternalServerError {
				t.Fatalf("notification: %d %s; want 500 (not replicated: WeChat Pay retries)", s, body)
			}
			if got := l.order(o.OrderNo).Status; got != tc.after {
				t.Fatalf("order on the primary %s; want %s (applied, not replicated)", got, tc.after)
			}
			if got := l.onReplica(o.OrderNo).Status; got != tc.before {
				t.Fatalf("order on the replica %s; want %s (the replica lags)", got, tc.before)
			}
			if s, body := l.post(n.Header, n.Body); s != http.StatusInternalServerError {
				t.Fatalf("retry while no replica has the write: %d %s; want 500 as the first try", s, body)
			}
			l.attach()
			if s, body := l.post(n.Header, n.Body); s != http.StatusNoContent {
				t.Fatalf("retry once the replica is back: %d %s; want 204\n%s", s, body, l.logs)
			}
			if got := l.onReplica(o.OrderNo).Status; got != tc.after {
				t.Errorf("order on the replica %s after the 204; want %s", got, tc.after)
			}
		})
	}
}
