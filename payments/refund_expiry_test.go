package payments_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
	redisstore "github.com/paygate/paygate/store/redis"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// sharedSlowReserve is a store that replicas share (it does not say
// store.Local), whose write reserving an order for a refund takes 2 ms of
// clk: a proposal tapped just before its expiry lapses while the order is
// being reserved.
type sharedSlowReserve struct {
	fullStore
	clk *storetest.Clock
}

func (s sharedSlowReserve) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, events ...store.Event) error {
	err := s.fullStore.UpdateOrder(ctx, o, expect, events...)
	if err == nil && o.Status == store.StatusRefunding {
		s.clk.Advance(2 * time.Millisecond)
	}
	return err
}

// edgeReplicas is replica 1 (e, on clk1, its store shared and slow to
// reserve) and, on Redis, replica 2 (on clk2, over the same keys through a
// store handle of its own, as another process opens it); on the embedded
// store, which one process holds, replica 2 is nil.
func edgeReplicas(t *testing.T, driver string, clk1, clk2 *storetest.Clock) (*env, *payments.Service) {
	t.Helper()
	place := testdrivers.NewPlace(t, driver, clk1.Now)
	st1 := place.Open().(fullStore)
	e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
		o.Now = clk1.Now
		o.Store = sharedSlowReserve{fullStore: st1, clk: clk1}
	}})
	e.st = st1
	if driver != "redis" {
		return e, nil
	}
	st2, err := redisstore.Open(redisstore.Options{Addrs: []string{testdrivers.RedisAddr()}, KeyPrefix: place.Prefix, RepairInterval: -1, Now: clk2.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st2.Close() })
	svc2, err := payments.New(payments.Options{
		Store: st2, Backend: e.client, Notify: e.client.NotifyVerifier(), Catalog: e.catalog,
		MchID: e.sim.MchID(), AppID: e.sim.AppID(), Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: clk2.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc2.Close() })
	return e, svc2
}

// requireRedis skips a test of replicas sharing a Redis when there is none
// (drivers fails it under CI).
func requireRedis(t *testing.T) {
	t.Helper()
	if !slices.Contains(drivers(t), "redis") {
		t.Skip("no Redis: replicas sharing a store are tested on Redis")
	}
}

// realClocks are two clocks at the real time (the simulator signs with
// it), to be set apart by the test.
func realClocks() (*storetest.Clock, *storetest.Clock) {
	c1, c2 := storetest.NewClock(), storetest.NewClock()
	c1.Advance(time.Now().Sub(c1.Now()))
	c2.Advance(time.Now().Sub(c2.Now()))
	return c1, c2
}

// setTo moves c to at (forward or back).
func setTo(c *storetest.Clock, at time.Time) { c.Advance(at.Sub(c.Now())) }

// TestTapAtTheTTLEdgeReleasesTheOrder: on a store replicas share, a tap 1 ms
// before the proposal's expiry, which lapsed while the order was being
// reserved, is told the proposal is gone (410: "ask again in the chat").
// The order had stayed refunding, nothing sent, for a minute more (the
// allowance for another replica's slower clock) while request_refund told
// the model a refund was in progress. The proposal is ended in the store
// for every replica, whatever its clock, and the order is paid again at
// once: asked again, the model proposes anew, and a tap of the old
// proposal on a replica whose clock is behind is gone too, nothing sent.
func TestTapAtTheTTLEdgeReleasesTheOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk1, clk2 := realClocks()
			e, svc2 := edgeReplicas(t, driver, clk1, clk2)
			ctx := context.Background()
			const user = "oUser-edge-shared"
			o := paidOrder(t, e, user, 1)
			p := propose(t, e, o, 0)
			setTo(clk1, p.ExpiresAt.Add(-time.Millisecond))
			setTo(clk2, p.ExpiresAt.Add(-30*time.Second)) // replica 2's clock is behind
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", user, p.RefundID); !errors.Is(err, store.ErrGone) {
				t.Fatalf("the tap 1 ms before expiry: %v; want gone (the proposal lapsed during the reservation)", err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPaid || got.RefundReservedBy != "" {
				t.Errorf("told the proposal is gone, the order is %s (reserved by %q); want paid", got.Status, got.RefundReservedBy)
			}
			if svc2 != nil {
				if _, err := svc2.ConfirmRefund(ctx, "shop-bot", user, p.RefundID); !errors.Is(err, store.ErrGone) {
					t.Errorf("a tap of the lapsed proposal on a replica whose clock is behind: %v; want gone", err)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusPaid {
					t.Errorf("after the tap on replica 2 the order is %s; want paid", got.Status)
				}
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 0 {
				t.Errorf("refunds at WeChat Pay: %d; want none", n)
			}
			tc := call(t, newTools(e), caller(user), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"please"}`)
			if tc.result["status"] != "awaiting_user_confirmation" {
				t.Errorf("request_refund after the 410: %s; want a new proposal", tc.out.Result)
			}
		})
	}
}

// TestTapsAtTheTTLEdgeOnReplicasApart: the same proposal tapped at once on
// two replicas sharing the store, one whose clock sees it lapse during the
// reservation and one whose clock, 30 s behind, sees it live. Whichever
// wins, one refund at most goes to WeChat Pay, and never while the order
// is released: sent, the order is refunding and one tap ran; not sent,
// the order is paid and both taps were told the proposal is gone.
func TestTapsAtTheTTLEdgeOnReplicasApart(t *testing.T) {
	requireRedis(t)
	clk1, clk2 := realClocks()
	e, svc2 := edgeReplicas(t, "redis", clk1, clk2)
	ctx := context.Background()
	for i := range 12 {
		o := paidOrder(t, e, "oUser-edge-apart-"+string(rune('a'+i)), 1)
		p := propose(t, e, o, 0)
		setTo(clk1, p.ExpiresAt.Add(-time.Millisecond))
		setTo(clk2, p.ExpiresAt.Add(-30*time.Second))
		var wg sync.WaitGroup
		var err1, err2 error
		var res1, res2 *payments.RefundResult
		wg.Go(func() { res1, err1 = e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID) })
		wg.Go(func() { res2, err2 = svc2.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID) })
		wg.Wait()
		sent := e.sim.RefundCount(o.OrderNo)
		got := e.order(o.OrderNo)
		ran := 0
		for k, err := range []error{err1, err2} {
			res := []*payments.RefundResult{res1, res2}[k]
			switch {
			case err == nil && res.Status == payments.RefundPending:
				// a repeat of the tap that ran, answered with its state
			case err == nil:
				ran++
			case !errors.Is(err, store.ErrGone):
				t.Errorf("tap %d: %v", i, err)
			}
		}
		switch {
		case sent == 1 && ran == 1 && got.Status == store.StatusRefunding && got.RefundReservedBy == p.RefundID:
		case sent == 0 && ran == 0 && got.Status == store.StatusPaid:
		default:
			t.Errorf("taps %d: %d sent, %d ran (%v, %v), order %s reserved by %q", i, sent, ran, err1, err2, got.Status, got.RefundReservedBy)
		}
		// Back to now, for the next order's notification windows.
		setTo(clk1, time.Now())
		setTo(clk2, time.Now())
	}
}
