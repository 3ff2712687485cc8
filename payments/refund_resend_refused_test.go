package payments_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestResendRefusedAfterAnUnknownSendKeepsTheRefund: the user confirms a
// refund; WeChat Pay makes it and the create's answer is lost (timeout),
// and the client's query in the same call is answered by a replica that
// has not seen it yet (not found), so the confirmation answers pending. At
// the sweep the query says not found again and the resend under the same
// out_refund_no is refused (NOT_ENOUGH). That refusal says nothing of the
// first send: the order goes to needs_review naming the refund, its refund
// kept in flight, no outcome "failed" told to the user, and no new
// proposal (a new out_refund_no) possible. Put back to paid with the
// refund failed, a second proposal was confirmed and WeChat Pay held two
// refunds for one request. The review sweep's not found changes nothing
// either, and the refund's late SUCCESS is counted.
func TestResendRefusedAfterAnUnknownSendKeepsTheRefund(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var mu sync.Mutex
			var merchant []string // the merchant events and audit actions of the order's transitions
			e := newEnv(t, envOptions{driver: driver, storeClock: true, client: func(c *wechatpay.Config) {
				c.MaxAttempts = 1
				c.AttemptTimeout = faultAttemptTimeout
			}, service: func(o *payments.Options) {
				inner := o.Committed
				o.Committed = func(tr payments.Transition) {
					mu.Lock()
					for _, ev := range webhook.Events(tr) {
						merchant = append(merchant, gjson.GetBytes(ev.Payload, "type").Str)
					}
					merchant = append(merchant, audit.TransitionAction(tr).Name)
					mu.Unlock()
					inner(tr)
				}
			}})
			ctx := context.Background()
			o, p := confirmedAnswerLost(t, e, "oUser-lag")
			e.sim.InjectFault(wxsim.Fault{Op: "refund-query", Kind: wxsim.FaultNotExist})
			e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultNotEnough})
			e.clock.Advance(2 * time.Minute) // past refundQueryAfter and recordedGrace
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Logf("sweep: %v", err)
			}
			noSecondRefund := func(when, reservedBy string) {
				t.Helper()
				got := e.order(o.OrderNo)
				if got.Status != store.StatusNeedsReview || got.RefundReservedBy != reservedBy ||
					!strings.Contains(got.ReviewReason, p.OutRefundNo) ||
					!strings.Contains(got.ReviewReason, "outcome of the first send unknown, resend refused: NOT_ENOUGH") {
					t.Errorf("%s: order %s reserved by %q, review reason %q; want needs_review reserved by %q, the reason naming %s",
						when, got.Status, got.RefundReservedBy, got.ReviewReason, reservedBy, p.OutRefundNo)
				}
				if slices.ContainsFunc(got.RefundOutcomes, func(r store.RefundOutcome) bool { return r.Status == store.RefundFailed }) {
					t.Errorf("%s: outcomes %+v; the refund WeChat Pay may have made is told failed", when, got.RefundOutcomes)
				}
				p2, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "again", AmountFen: 2000})
				if err == nil {
					_, _ = e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p2.RefundID)
					t.Errorf("%s: a second proposal %s (out_refund_no %s beside %s) was made", when, p2.RefundID, p2.OutRefundNo, p.OutRefundNo)
				}
				if n := e.sim.RefundCount(o.OrderNo); n != 1 {
					t.Errorf("%s: %d refunds at WeChat Pay for one request; want 1", when, n)
				}
			}
			noSecondRefund("after the refused resend", p.RefundID)
			mu.Lock()
			heard := slices.Clone(merchant)
			mu.Unlock()
			if !slices.Contains(heard, webhook.TypeOrderNeedsReview) || !slices.Contains(heard, "order.needs_review") || slices.Contains(heard, webhook.TypeRefundFailed) {
				t.Errorf("the merchant heard %v; want %s (audited order.needs_review), no %s", heard, webhook.TypeOrderNeedsReview, webhook.TypeRefundFailed)
			}
			// The review sweep's query, at a replica still behind, finds
			// nothing either: still nothing said of the first send. The
			// reservation ends (a person can settle the order), with no
			// outcome told.
			e.sim.InjectFault(wxsim.Fault{Op: "refund-query", Kind: wxsim.FaultNotExist})
			e.clock.Advance(2 * time.Minute) // the notification below stays within its timestamp window
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Logf("review sweep: %v", err)
			}
			noSecondRefund("after the review sweep's not found", "")
			if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("the refund's SUCCESS: %+v %v", d, err)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusNeedsReview || got.RefundedFen != 2000 || !slices.Contains(got.RefundNos, p.OutRefundNo) ||
				!slices.ContainsFunc(got.RefundOutcomes, func(r store.RefundOutcome) bool {
					return r.OutRefundNo == p.OutRefundNo && r.Status == store.RefundSucceeded
				}) {
				t.Errorf("after its SUCCESS: order %s refunded %d, refund_nos %v, outcomes %+v; want 2000 counted in review, succeeded",
					got.Status, got.RefundedFen, got.RefundNos, got.RefundOutcomes)
			}
			if _, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusPaid); !errors.Is(err, payments.ErrCannotResolve) {
				t.Errorf("resolved as paid with a refund of it made: %v", err)
			}
		})
	}
}

// answerLostNotFound has WeChat Pay make the next refund and lose its
// answer (timeout), and the client's query in the same call answered by a
// replica that has not seen it yet (not found): the confirmation answers
// pending while the refund is made.
func answerLostNotFound(e *env) {
	e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultTimeout})
	e.sim.InjectFault(wxsim.Fault{Op: "refund-query", Kind: wxsim.FaultNotExist})
}

// confirmedAnswerLost pays an order of user's (49.99), proposes a refund of
// 20.00 and confirms it with its answer lost (answerLostNotFound): pending,
// the refund made at WeChat Pay.
func confirmedAnswerLost(t *testing.T, e *env, user string) (*store.Order, *store.RefundProposal) {
	t.Helper()
	o := paidOrder(t, e, user, 1)
	p := propose(t, e, o, 2000)
	answerLostNotFound(e)
	if res, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundPending {
		t.Fatalf("confirm: %v, %v; want pending", resStatus(res), err)
	}
	return o, p
}
