package payments_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestSweepAsksAboutARefundInFlightOnAnOrderInReview: the user's confirmed
// refund is with WeChat Pay when its order goes to needs_review (WeChat
// Pay reports it ABNORMAL, or reports money going back that paygate never
// asked for), and the notification of its outcome is lost (the notify
// route down for longer than WeChat Pay retries, a wrong APIv3 key for a
// day). The sweep asks WeChat Pay about it, as it does for a refunding
// order, and records its word on the order in review: the SUCCESS is
// counted and ends the reservation, so a person can resolve the order and
// the user's repeated confirm is told it succeeded. The sweep looked at
// refunding orders only: the order stayed held by a refund "in flight"
// for good, and resolving it was refused ("wait for its outcome") for an
// outcome nobody would ever ask about. Nothing is sent again for an order
// in review.
func TestSweepAsksAboutARefundInFlightOnAnOrderInReview(t *testing.T) {
	tests := []struct {
		name string
		word refundWord
		own  bool
	}{
		{name: "abnormal", word: refundWord{status: wechatpay.RefundAbnormal, fen: 4999}, own: true},
		{name: "another refund", word: refundWord{outRefundNo: "RFmerchantplatform0002", status: wechatpay.RefundSuccess, fen: 1000}},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				// The embedded store's sole writer adopts the order
				// (adopt); replicas on Redis take its lease.
				e := newEnv(t, envOptions{driver: driver, storeClock: true,
					service: func(o *payments.Options) { o.SoleWriter = driver == "embedded" }})
				ctx := context.Background()
				lost, cancel := context.WithCancel(ctx)
				cancel()
				o := paidOrder(t, e, "oUser-review-sweep", 2) // 99.98 CNY
				p := propose(t, e, o, 4999)
				w := tt.word
				if tt.own {
					w.outRefundNo = p.OutRefundNo
				}
				confirmThenReview(t, e, o, p, w)
				// The refund goes through; its notification never arrives.
				if _, err := e.sim.CompleteRefund(lost, p.OutRefundNo); err != nil {
					t.Fatal(err)
				}
				e.clock.Advance(2 * time.Minute)
				if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
					t.Fatalf("sweep: %+v, %v", st, err)
				}
				got := e.order(o.OrderNo)
				if got.Status != store.StatusNeedsReview || got.RefundReservedBy != "" || got.RefundedFen != 4999 ||
					!slices.Contains(got.RefundNos, p.OutRefundNo) {
					t.Fatalf("after the sweep: %s, held by %q, refunded %d fen (%v); want needs_review, held by none, 4999 fen refunded under %s",
						got.Status, got.RefundReservedBy, got.RefundedFen, got.RefundNos, p.OutRefundNo)
				}
				// The lost notification's retry, late, is a copy: counted once.
				if status, body := e.postRefund(o, got.TransactionID, refundWord{outRefundNo: p.OutRefundNo, status: wechatpay.RefundSuccess, fen: 4999}); status/100 != 2 {
					t.Fatalf("refund notification: %d %s", status, body)
				}
				if again := e.order(o.OrderNo); again.RefundedFen != 4999 || again.Version != got.Version {
					t.Errorf("after the late notification: refunded %d fen, version %d -> %d; want 4999, unchanged", again.RefundedFen, got.Version, again.Version)
				}
				if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundSucceeded {
					t.Errorf("confirm again after the sweep: %v, %v; want succeeded", resStatus(res), err)
				}
				if r, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusClosed); err != nil || r.Status != store.StatusClosed {
					t.Errorf("resolve as closed: %v, %v; want closed", r, err)
				}
				if n := e.sim.RefundCount(o.OrderNo); n != 1 {
					t.Errorf("refunds at WeChat Pay: %d; want 1", n)
				}
				// Asked again, WeChat Pay's word is a copy: nothing changes.
				before := e.order(o.OrderNo)
				e.clock.Advance(payments.DefaultSweepInterval)
				if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
					t.Fatalf("second sweep: %+v, %v", st, err)
				}
				if after := e.order(o.OrderNo); after.Version != before.Version {
					t.Errorf("second sweep changed the order: version %d -> %d", before.Version, after.Version)
				}
			})
		}
	}
}

// confirmThenReview confirms p's refund of o (processing), then posts
// WeChat Pay's word w of o, which sends o to needs_review still held for
// p's refund.
func confirmThenReview(t *testing.T, e *env, o *store.Order, p *store.RefundProposal, w refundWord) {
	t.Helper()
	if res, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
		t.Fatalf("confirm: %v, %v; want processing", resStatus(res), err)
	}
	if status, body := e.postRefund(o, e.order(o.OrderNo).TransactionID, w); status/100 != 2 {
		t.Fatalf("refund notification: %d %s", status, body)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview || got.RefundReservedBy != p.RefundID {
		t.Fatalf("order %s held by %q; want needs_review, still held for %s", got.Status, got.RefundReservedBy, p.RefundID)
	}
}

// refusedInReview is a WeChat Pay that refuses every refund, after the
// order went to review meanwhile (before, runs during the call); with
// unanswered, the refund never reaches it and the call has no answer.
type refusedInReview struct {
	payments.Backend
	before     func()
	unanswered bool
}

func (b *refusedInReview) CreateRefund(ctx context.Context, req wechatpay.RefundRequest) (*wechatpay.Refund, error) {
	b.before()
	if b.unanswered {
		return nil, &wechatpay.APIError{Op: "refund", StatusCode: 503, Code: "SYSTEM_ERROR", Message: "busy", Attempts: 1, Kind: wechatpay.ErrTemporary}
	}
	return nil, &wechatpay.APIError{Op: "refund", StatusCode: 400, Code: "INVALID_REQUEST", Message: "refused", Attempts: 1, Kind: wechatpay.ErrRejected}
}

// TestSweepEndsAReservationInReviewWhoseRefundWasNeverMade: the order went
// to needs_review while the user's confirmed refund was on its way (WeChat
// Pay's word of a refund made on the merchant platform came meanwhile),
// and WeChat Pay refused the refund, or the confirmation stopped before it
// reached WeChat Pay. Nothing put the order back (it is a person's), so it
// stayed held by a refund WeChat Pay never made: no notification would
// ever end it, and Resolve refused the order both ways ("wait for its
// outcome") for good. The sweep, finding the refund unknown to WeChat Pay
// once no confirmation can still be sending it, ends the reservation
// without sending anything and keeps the refund's outcome (failed) for the
// user's next turn; the order stays in review for the person, who can now
// close it. A refusal the confirmation got at once ends the reservation
// there, and keeps no outcome: the user was told by the confirmation's
// answer (502), and a failed outcome kept by the sweep told them a second
// time on their next turn.
func TestSweepEndsAReservationInReviewWhoseRefundWasNeverMade(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, unanswered := range []bool{false, true} {
			name := driver + "/refused"
			if unanswered {
				name = driver + "/unanswered"
			}
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				var e *env
				var o *store.Order
				e = newEnv(t, envOptions{driver: driver, storeClock: true, service: func(opts *payments.Options) {
					opts.SoleWriter = driver == "embedded"
					opts.Backend = &refusedInReview{Backend: opts.Backend, unanswered: unanswered, before: func() {
						w := refundWord{outRefundNo: "RFmerchantplatform0003", status: wechatpay.RefundSuccess, fen: 1000}
						if status, body := e.postRefund(o, e.order(o.OrderNo).TransactionID, w); status/100 != 2 {
							t.Errorf("refund notification: %d %s", status, body)
						}
					}}
				}})
				o = paidOrder(t, e, "oUser-review-never-made", 2) // 99.98 CNY
				p := propose(t, e, o, 4999)
				res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				wantHeld := ""
				if unanswered {
					// Told it is on its way: the outcome is the sweep's to tell.
					if err != nil || res.Status != payments.RefundPending {
						t.Fatalf("confirm: %v, %v; want pending", resStatus(res), err)
					}
					wantHeld = p.RefundID
				} else if err == nil {
					t.Fatalf("confirm: no error; want the refusal")
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview || got.RefundReservedBy != wantHeld {
					t.Fatalf("order %s held by %q; want needs_review, held by %q", got.Status, got.RefundReservedBy, wantHeld)
				}
				e.clock.Advance(2 * time.Minute)
				if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
					t.Fatalf("sweep: %+v, %v", st, err)
				}
				got := e.order(o.OrderNo)
				if got.Status != store.StatusNeedsReview || got.RefundReservedBy != "" || got.RefundedFen != 0 {
					t.Fatalf("after the sweep: %s, held by %q, refunded %d fen; want needs_review, held by none, nothing refunded",
						got.Status, got.RefundReservedBy, got.RefundedFen)
				}
				if told := slices.ContainsFunc(got.RefundOutcomes, func(r store.RefundOutcome) bool {
					return r.OutRefundNo == p.OutRefundNo && r.Status == store.RefundFailed
				}); told != unanswered {
					t.Errorf("refund outcomes %+v; want %s failed kept for the user's next turn: %v (a refusal the confirmation got was answered so)",
						got.RefundOutcomes, p.OutRefundNo, unanswered)
				}
				if r, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusClosed); err != nil || r.Status != store.StatusClosed {
					t.Errorf("resolve as closed: %v, %v; want closed", r, err)
				}
				if n := e.sim.RefundCount(o.OrderNo); n != 0 {
					t.Errorf("refunds at WeChat Pay: %d; want none (nothing sent for an order in review)", n)
				}
			})
		}
	}
}
