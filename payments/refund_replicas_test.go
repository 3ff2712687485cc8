package payments_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// twoReplicas builds two payments.Services over one store place (two store
// handles, as two processes would open), one simulator and one WeChat Pay
// client. e.svc is replica 1 (its notify route is the one the simulator
// calls); the second is returned with a notify URL of its own. tweak, when
// not nil, adjusts both replicas' options (the second gets a registry of
// its own and no commit hook, as otherReplica says); second, when not nil,
// then adjusts the second's alone (its clock, say).
func twoReplicas(t *testing.T, driver string, tweak, second func(*payments.Options)) (*env, *payments.Service, string) {
	t.Helper()
	place := testdrivers.NewPlace(t, driver, nil)
	st1 := place.Open()
	st2 := st1
	if driver == "redis" {
		st2 = place.Open()
	}
	return replicasOn(t, driver, st1.(fullStore), st2.(payments.Store), tweak, second)
}

// replicasOn is twoReplicas over the stores st1 (replica 1's, the env's)
// and st2 (replica 2's), two handles of one store.
func replicasOn(t *testing.T, driver string, st1 fullStore, st2 payments.Store, tweak, second func(*payments.Options)) (*env, *payments.Service, string) {
	t.Helper()
	var opts payments.Options
	e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
		o.Store = st1
		if tweak != nil {
			tweak(o)
		}
		opts = *o
	}})
	e.st = st1
	opts.Store = st2
	if second != nil {
		second(&opts)
	}
	svc2 := otherReplica(t, opts)
	n2 := httptest.NewServer(svc2.NotifyHandler())
	t.Cleanup(n2.Close)
	return e, svc2, n2.URL + payments.NotifyPath
}

func postTo(t *testing.T, url string, n *wxsim.Notification) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(n.Body))
	for k, v := range n.Header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTwoReplicasConfirmOneProposal: the same proposal tapped at once on
// two replicas sharing the store sends one refund; one tap is told it runs,
// the other 410.
func TestTwoReplicasConfirmOneProposal(t *testing.T) {
	requireRedis(t)
	e, svc2, _ := twoReplicas(t, "redis", nil, nil)
	ctx := context.Background()
	for i := range 15 {
		o := paidOrder(t, e, "oUser-two-"+string(rune('a'+i)), 1)
		p := propose(t, e, o, 0)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		res := make([]*payments.RefundResult, 4)
		for k := range 4 {
			svc := e.svc
			if k%2 == 1 {
				svc = svc2
			}
			wg.Go(func() { res[k], errs[k] = svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID) })
		}
		wg.Wait()
		ok := 0
		for k, err := range errs {
			switch {
			case err == nil && res[k].Status == payments.RefundProcessing:
				ok++
			case err == nil && res[k].Status == payments.RefundPending: // a repeat, answered with the refund's state
			default:
				t.Errorf("confirm: %+v, %v", res[k], err)
			}
		}
		if ok != 1 || e.sim.RefundCount(o.OrderNo) != 1 {
			t.Errorf("order %d: %d taps ran, %d refunds at wechat pay; want 1 and 1", i, ok, e.sim.RefundCount(o.OrderNo))
		}
		if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
			t.Errorf("order %d is %s; want refunding", i, got.Status)
		}
	}
}

// TestTwoReplicasTwoProposalsNeverExceedThePayment: two partial proposals of one order,
// together above what was paid, tapped at once on two replicas: never more
// refunded than paid, and the loser keeps its proposal.
func TestTwoReplicasTwoProposalsNeverExceedThePayment(t *testing.T) {
	requireRedis(t)
	e, svc2, n2 := twoReplicas(t, "redis", nil, nil)
	ctx := context.Background()
	for i := range 10 {
		o := paidOrder(t, e, "oUser-sum-"+string(rune('a'+i)), 1) // 4999
		// Two amounts: an identical request returns the open proposal.
		p1, p2 := propose(t, e, o, 3000), propose(t, e, o, 3001)
		var wg sync.WaitGroup
		var e1, e2 error
		wg.Go(func() { _, e1 = e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p1.RefundID) })
		wg.Go(func() { _, e2 = svc2.ConfirmRefund(ctx, "shop-bot", o.User, p2.RefundID) })
		wg.Wait()
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("order %d: confirm errors %v / %v; want exactly one to run", i, e1, e2)
		}
		winner := p1
		if e2 == nil {
			winner = p2
		}
		// Settle the winner on the second replica's notify route.
		rf, _ := e.sim.Refund(winner.OutRefundNo)
		res := wxsim.RefundResource{MchID: e.sim.MchID(), TransactionID: rf.TransactionID, OutTradeNo: rf.OutTradeNo,
			RefundID: rf.RefundID, OutRefundNo: rf.OutRefundNo, RefundStatus: "SUCCESS"}
		res.Amount.Total, res.Amount.Refund = o.AmountFen, winner.AmountFen
		n, _ := e.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventRefundSuccess, OriginalType: "refund", Resource: res})
		var codes []int
		var mu sync.Mutex
		for _, url := range []string{e.notify.URL + payments.NotifyPath, n2, e.notify.URL + payments.NotifyPath, n2} {
			wg.Go(func() {
				c := postTo(t, url, n)
				mu.Lock()
				codes = append(codes, c)
				mu.Unlock()
			})
		}
		wg.Wait()
		if slices.ContainsFunc(codes, func(c int) bool { return c != 204 }) {
			t.Errorf("copies answered %v; want 204 each", codes)
		}
		got := e.order(o.OrderNo)
		if got.Status != store.StatusPartiallyRefunded || got.RefundedFen != winner.AmountFen {
			t.Errorf("order %d: %s %d; want partially_refunded %d", i, got.Status, got.RefundedFen, winner.AmountFen)
		}
		loser := p2
		if winner == p2 {
			loser = p1
		}
		if _, err := svc2.ConfirmRefund(ctx, "shop-bot", o.User, loser.RefundID); !errors.Is(err, payments.ErrRefundAmount) {
			t.Errorf("loser confirm after: %v; want ErrRefundAmount", err)
		}
		if n := e.sim.RefundCount(o.OrderNo); n != 1 {
			t.Errorf("refunds at wechat pay %d; want 1", n)
		}
	}
}

// TestConfirmRacesCancelOnTwoReplicas: confirm on one replica, cancel on the other, at
// once: either the refund went to WeChat Pay and the order is refunding, or
// nothing went and the order is paid again (no reservation left behind).
func TestConfirmRacesCancelOnTwoReplicas(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			e, svc2, _ := twoReplicas(t, driver, nil, nil)
			ctx := context.Background()
			for i := range 20 {
				o := paidOrder(t, e, "oUser-cc-"+string(rune('a'+i)), 1)
				p := propose(t, e, o, 0)
				var wg sync.WaitGroup
				var cerr, xerr error
				wg.Go(func() { _, cerr = e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID) })
				wg.Go(func() { _, xerr = svc2.CancelRefund(ctx, "shop-bot", o.User, p.RefundID) })
				wg.Wait()
				sent := e.sim.RefundCount(o.OrderNo)
				got := e.order(o.OrderNo)
				switch {
				case sent == 1 && got.Status == store.StatusRefunding && cerr == nil && errors.Is(xerr, store.ErrGone):
				case sent == 0 && got.Status == store.StatusPaid && xerr == nil && errors.Is(cerr, store.ErrGone):
				default:
					t.Errorf("iteration %d: sent %d, order %s (reserved by %q), confirm %v, cancel %v", i, sent, got.Status, got.RefundReservedBy, cerr, xerr)
				}
			}
		})
	}
}
