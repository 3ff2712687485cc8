package payments_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestSweepRefundPassEndsWhenRateLimited: four confirmed refunds are late
// (WeChat Pay holds them PROCESSING, no notification came), and WeChat
// Pay answers the sweep's refund queries 429 FREQUENCY_LIMITED. The pass
// of refunding orders ends at the first refund so answered (its three
// attempts), as the pass of pending orders does, and the next pass starts
// past it; the pass once WeChat Pay answers queries each refund once. No
// refund is ended on a 429: each order stays refunding, no outcome noted.
// The sweep queried every late refund three times over, 8 queries for
// two limited ones into a WeChat Pay asking for fewer.
func TestSweepRefundPassEndsWhenRateLimited(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{driver: driver})
			var orders []*store.Order
			refundNo := map[string]string{}
			for i := range 4 {
				o := paidOrder(t, e, fmt.Sprintf("oUser-refund-limited-%d", i), 1)
				p := propose(t, e, o, 0)
				if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
					t.Fatalf("confirm: %v, %v; want processing", resStatus(res), err)
				}
				orders = append(orders, o)
				refundNo[o.OrderNo] = p.OutRefundNo
			}
			e.clock.Advance(2 * time.Minute) // past refundQueryAfter and recordedGrace
			queried := asked(e, "refund-query")

			e.sim.InjectFault(wxsim.Fault{Op: "refund-query", Kind: wxsim.FaultFrequencyLimited, Times: 6})
			var passed []string
			for pass := 1; pass <= 2; pass++ {
				before := len(queried())
				st, err := e.svc.Sweep(ctx)
				if err != nil {
					t.Fatal(err)
				}
				q := queried()[before:]
				if !oneNumberThrice(q) || st.Errors != 1 || st.Changed != 0 {
					t.Fatalf("pass %d under 429: %d refund queries %v, %+v; want one refund's three attempts, 1 error", pass, len(q), q, st)
				}
				passed = append(passed, q[0])
			}
			if passed[0] == passed[1] {
				t.Errorf("both passes stopped at %s; want the second to start past the first's", passed[0])
			}
			before := len(queried())
			if st, err := e.svc.Sweep(ctx); err != nil || st.Checked != 4 || st.Errors != 0 {
				t.Fatalf("pass once WeChat Pay answers: %+v, %v; want 4 checked", st, err)
			}
			seen := timesEach(queried()[before:])
			for _, o := range orders {
				if seen[refundNo[o.OrderNo]] != 1 {
					t.Errorf("refund of %s queried %d times in the pass; want once", o.OrderNo, seen[refundNo[o.OrderNo]])
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || len(got.RefundOutcomes) != 0 {
					t.Errorf("order %s: %s, outcomes %+v; want refunding, none", o.OrderNo, got.Status, got.RefundOutcomes)
				}
			}
		})
	}
}

// TestSweepRefundInReviewPassEndsWhenRateLimited: three orders went to
// needs_review with the user's confirmed refund still with WeChat Pay
// (another refund of each reported meanwhile), and WeChat Pay answers the
// sweep's first refund query 429 FREQUENCY_LIMITED through its retries.
// The pass of refunds open in review ends there (that refund's three
// attempts), as the pass of late refunds does; the next pass queries each
// of the three once, and each order stays in review, held for its refund
// (nothing ended on a 429). The pass queried the other two beside it.
func TestSweepRefundInReviewPassEndsWhenRateLimited(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true,
				service: func(o *payments.Options) { o.SoleWriter = driver == "embedded" }})
			ctx := context.Background()
			var orders []*store.Order
			refundNo := map[string]string{}
			for i := range 3 {
				o := paidOrder(t, e, fmt.Sprintf("oUser-review-limited-%d", i), 2)
				p := propose(t, e, o, 4999)
				confirmThenReview(t, e, o, p, refundWord{outRefundNo: fmt.Sprintf("RFmerchantplatform100%d", i), status: wechatpay.RefundSuccess, fen: 1000})
				orders = append(orders, o)
				refundNo[o.OrderNo] = p.OutRefundNo
			}
			e.clock.Advance(2 * time.Minute)
			queried := asked(e, "refund-query")
			e.sim.InjectFault(wxsim.Fault{Op: "refund-query", Kind: wxsim.FaultFrequencyLimited, Times: 3})
			st, err := e.svc.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if q := queried(); !oneNumberThrice(q) || st.Errors != 1 {
				t.Fatalf("pass under 429: %d refund queries %v, %+v; want one refund's three attempts, 1 error", len(q), q, st)
			}
			before := len(queried())
			if st, err := e.svc.Sweep(ctx); err != nil || st.Checked != 3 || st.Errors != 0 {
				t.Fatalf("pass once WeChat Pay answers: %+v, %v; want 3 checked", st, err)
			}
			seen := timesEach(queried()[before:])
			for _, o := range orders {
				if seen[refundNo[o.OrderNo]] != 1 {
					t.Errorf("refund of %s queried %d times in the pass; want once", o.OrderNo, seen[refundNo[o.OrderNo]])
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview || got.RefundReservedBy == "" {
					t.Errorf("order %s: %s, held by %q; want needs_review, still held", o.OrderNo, got.Status, got.RefundReservedBy)
				}
			}
		})
	}
}

// TestSweepRefundRateLimitedGivesLeasesBack: replicas share Redis, and
// WeChat Pay answers one replica's first refund query FREQUENCY_LIMITED
// through its retries. That replica's pass of late refunds ends there, and
// the leases it took for the page's orders (the one limited and those it
// did not reach) go back at once, so another replica's pass in the same
// interval queries each of them. Kept, the two it did not reach were held
// for an interval by a pass that asked about neither.
func TestSweepRefundRateLimitedGivesLeasesBack(t *testing.T) {
	ctx := context.Background()
	var opts payments.Options
	e := newEnv(t, envOptions{driver: "redis", storeClock: true,
		service: func(o *payments.Options) { opts = *o }})
	refundNo := map[string]string{}
	for i := range 3 {
		o := paidOrder(t, e, fmt.Sprintf("oUser-refund-limited-lease-%d", i), 1)
		p := propose(t, e, o, 0)
		if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
			t.Fatalf("confirm: %v, %v; want processing", resStatus(res), err)
		}
		refundNo[o.OrderNo] = p.OutRefundNo
	}
	other := otherReplica(t, opts)
	e.clock.Advance(2 * time.Minute)
	e.sim.InjectFault(wxsim.Fault{Op: "refund-query", Kind: wxsim.FaultFrequencyLimited, Times: 3})
	if st, err := e.svc.Sweep(ctx); err != nil || st.Checked != 1 || st.Errors != 1 {
		t.Fatalf("limited pass: %+v, %v; want 1 checked, 1 error", st, err)
	}
	e.clock.Advance(time.Second) // past the leases cut to a millisecond
	if st, err := other.Sweep(ctx); err != nil || st.Checked != 3 || st.Errors != 0 {
		t.Errorf("other replica's pass in the same interval: %+v, %v; want 3 checked", st, err)
	}
	seen := timesEach(asked(e, "refund-query")())
	for no, rn := range refundNo {
		if seen[rn] == 0 || e.order(no).Status != store.StatusRefunding {
			t.Errorf("refund of %s queried %d times, order %s; want queried, refunding", no, seen[rn], e.order(no).Status)
		}
	}
}

// TestSweepRefundResendPassEndsWhenRateLimited: three confirmed refunds
// never reached WeChat Pay (every create of each confirmation failed
// without effect), and WeChat Pay answers the sweep's first resend
// FREQUENCY_LIMITED through its retries. The pass of late refunds ends
// there, as it does at a query so answered: the resend's outcome is
// unknown (pending), and nothing is ended on a 429, but WeChat Pay asks
// for fewer calls. The pass went on and sent the other two refunds beside
// it, each resend a query and a create more into a WeChat Pay asking for
// fewer. The next pass sends each refund left once, under its one number.
func TestSweepRefundResendPassEndsWhenRateLimited(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			var orders []*store.Order
			refundNo := map[string]string{}
			for i := range 3 {
				o := paidOrder(t, e, fmt.Sprintf("oUser-resend-limited-%d", i), 1)
				p := propose(t, e, o, 0)
				e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultSystemError, Times: 3})
				if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundPending {
					t.Fatalf("confirm: %v, %v; want pending", resStatus(res), err)
				}
				orders = append(orders, o)
				refundNo[o.OrderNo] = p.OutRefundNo
			}
			if n := e.sim.RefundCount(""); n != 0 {
				t.Fatalf("%d refunds at WeChat Pay after the failed creates; want none", n)
			}
			e.clock.Advance(2 * time.Minute) // past refundQueryAfter and recordedGrace
			created := asked(e, "refund")
			before := len(created())
			e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultFrequencyLimited, Times: 3})
			st, err := e.svc.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c := created()[before:]; !oneNumberThrice(c) || st.Errors != 1 || e.sim.RefundCount("") != 0 {
				t.Fatalf("pass under 429: %d refund creates %v, %d refunds made, %+v; want one refund's three attempts, none made, 1 error", len(c), c, e.sim.RefundCount(""), st)
			}
			before = len(created())
			if st, err := e.svc.Sweep(ctx); err != nil || st.Checked != 3 || st.Errors != 0 {
				t.Fatalf("pass once WeChat Pay answers: %+v, %v; want 3 checked", st, err)
			}
			seen := timesEach(created()[before:])
			for _, o := range orders {
				if seen[refundNo[o.OrderNo]] != 1 {
					t.Errorf("refund of %s sent %d times in the pass; want once", o.OrderNo, seen[refundNo[o.OrderNo]])
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || len(got.RefundOutcomes) != 0 {
					t.Errorf("order %s: %s, outcomes %+v; want refunding, none", o.OrderNo, got.Status, got.RefundOutcomes)
				}
			}
			if n := e.sim.RefundCount(""); n != 3 {
				t.Errorf("%d refunds at WeChat Pay; want 3", n)
			}
		})
	}
}
