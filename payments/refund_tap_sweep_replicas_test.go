package payments_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestTapUnderAnOldReservationIsNotSweptByAnotherReplica: with a shared
// store (Redis replicas) the sweep asks WeChat Pay about a refunding order
// untouched for refundQueryAfter, judged by the order's UpdatedAt. A tap
// that goes on under the reservation an earlier confirmation of its
// proposal left (it reserved the order and stopped before spending the
// user's word) writes nothing to the order, so the order looked untouched
// for as long as that reservation was old while the tap's refund was on
// its way to WeChat Pay. Another replica's sweep read the tap's refund
// record, asked WeChat Pay (unknown: the tap's call had not arrived) and
// sent it too under the same number. WeChat Pay refused the sweep's and
// took the tap's a moment later: the sweep put the order back to paid
// while its refund went through, and the user, told it was processing,
// had an order another proposal could refund again.
func TestTapUnderAnOldReservationIsNotSweptByAnotherReplica(t *testing.T) {
	rt := &refusingRT{refuse: func(method, path string, nth int) bool {
		return method == http.MethodPost && path == "/v3/refund/domestic/refunds" && nth == 1
	}}
	var opts payments.Options
	var be *heldRefund
	e := newEnv(t, envOptions{driver: "redis", storeClock: true,
		client: func(c *wechatpay.Config) { c.Transport = rt },
		service: func(o *payments.Options) {
			// The first consumption fails: a confirmation that reserved
			// its order and stopped there.
			o.Store = &adoptStore{fullStore: o.Store.(fullStore), held: make(chan struct{}), goOn: make(chan struct{})}
			be = &heldRefund{Backend: o.Backend, at: make(chan struct{}), release: make(chan struct{})}
			o.Backend = be
			opts = *o
		}})
	other := otherReplica(t, opts)
	ctx := context.Background()
	o := paidOrder(t, e, "oUser-tap-old-reservation", 1)
	p := propose(t, e, o, 0)

	if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err == nil {
		t.Fatal("first confirmation: want its consumption's error")
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
		t.Fatalf("after the stopped tap the order is %s; want refunding", got.Status)
	}
	// The user taps again a while later, within the proposal's life.
	e.clock.Advance(2 * time.Minute)

	tapSweptMidCall(t, e, be, other, o, p, func() {})
	for _, l := range e.sim.Requests() {
		if l.Op == "refund" && !strings.EqualFold(l.OutRefundNo, p.OutRefundNo) {
			t.Errorf("a refund under another number: %s", l.OutRefundNo)
		}
	}
}

// TestTapOnAReplicaWhoseClockIsBehindIsNotSwept: the sweep leaves a
// refund alone while the confirmation that recorded it may still be at
// WeChat Pay (refundCallTimeout), judged by the record's ConfirmedAt, which
// is the confirming replica's clock. Replicas' clocks may be up to
// proposalSkew apart. Waiting refundQueryAfter (a minute, 30s past the
// call's bound) let a replica whose clock runs ahead of the confirming
// one's by more than 30s ask while the tap's call was on its way: unknown,
// the sweep sent the same refund beside it, WeChat Pay refused the sweep's
// and took the tap's, and the order went back to paid (refundable again)
// while its refund went through.
func TestTapOnAReplicaWhoseClockIsBehindIsNotSwept(t *testing.T) {
	for _, tc := range []struct {
		name   string
		behind time.Duration // how far the tap's replica's clock is behind the sweeper's (< proposalSkew)
		atWx   time.Duration // how long the tap's call has been on its way when the sweep comes (< refundCallTimeout)
	}{
		{"45s behind, 20s at wechat pay", 45 * time.Second, 20 * time.Second},
		{"59s behind, 2s at wechat pay", 59 * time.Second, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &refusingRT{refuse: func(method, path string, nth int) bool {
				return method == http.MethodPost && path == "/v3/refund/domestic/refunds" && nth == 1
			}}
			var opts payments.Options
			var be *heldRefund
			e := newEnv(t, envOptions{driver: "redis", storeClock: true,
				client: func(c *wechatpay.Config) { c.Transport = rt },
				service: func(o *payments.Options) {
					be = &heldRefund{Backend: o.Backend, at: make(chan struct{}), release: make(chan struct{})}
					o.Backend = be
					opts = *o
				}})
			opts.Now = func() time.Time { return e.clock.Now().Add(tc.behind) }
			other := otherReplica(t, opts)
			o := paidOrder(t, e, "oUser-tap-clock-behind", 1)
			p := propose(t, e, o, 0)

			tapSweptMidCall(t, e, be, other, o, p, func() { e.clock.Advance(tc.atWx) })
		})
	}
}

// tapSweptMidCall has the user confirm p's refund (again) on e and, while
// the call is held on its way to WeChat Pay (be), runs beforeSweep and then
// other's sweep, as another replica's; then it checks that what the user
// was told and what WeChat Pay holds agree: told it failed, no refund there
// and the order paid; told it is processing, one refund and the order not
// back to paid (refundable again).
func tapSweptMidCall(t *testing.T, e *env, be *heldRefund, other *payments.Service, o *store.Order, p *store.RefundProposal, beforeSweep func()) {
	t.Helper()
	ctx := context.Background()
	type answer struct {
		res *payments.RefundResult
		err error
	}
	confirmed := make(chan answer, 1)
	go func() {
		res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
		confirmed <- answer{res, err}
	}()
	select {
	case <-be.at: // recorded, on its way to WeChat Pay
	case a := <-confirmed:
		t.Fatalf("confirmation ended before sending: %+v, %v", a.res, a.err)
	case <-time.After(10 * time.Second):
		t.Fatal("the tap never sent its refund")
	}
	beforeSweep()
	if _, err := other.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	close(be.release)
	var a answer
	select {
	case a = <-confirmed:
	case <-time.After(10 * time.Second):
		t.Fatal("confirmation did not end")
	}
	got := e.order(o.OrderNo)
	refunds := e.sim.RefundCount(o.OrderNo)
	switch {
	case errors.Is(a.err, payments.ErrRefundFailed):
		if refunds != 0 || got.Status != store.StatusPaid {
			t.Errorf("the user was told the refund failed; %d refunds at WeChat Pay, order %s", refunds, got.Status)
		}
	case a.err == nil:
		if refunds != 1 || got.Status == store.StatusPaid {
			t.Errorf("the user was told the refund is %s; %d refunds at WeChat Pay, order %s (paid: refundable again)", a.res.Status, refunds, got.Status)
		}
	default:
		t.Fatalf("confirmation: %v", a.err)
	}
}
