package payments_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// beforeRefundPost runs hook once, armed, before a refund create leaves
// for WeChat Pay: what happens to the order while the sweep's resend is
// on its way.
type beforeRefundPost struct {
	mu    sync.Mutex
	armed bool
	hook  func()
}

func (r *beforeRefundPost) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.URL.Path == "/v3/refund/domestic/refunds" {
		r.mu.Lock()
		hook := r.hook
		if !r.armed {
			hook = nil
		}
		r.armed = false
		r.mu.Unlock()
		if hook != nil {
			hook()
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestResendRefusedLeavesARefundReservedSince: the sweep resends a refund
// whose first send's answer was lost; while the resend is on its way, the
// first send's SUCCESS comes (the order partially refunded) and the user
// confirms a second refund on another replica (the order refunding again,
// at a later version, for it). WeChat Pay then refuses the resend. The
// refusal is of a refund that settled: the order, refunding for the second
// refund, is left as it is, not sent to needs_review under the first
// refund's name (resendRefused writes only at the version it resent at).
func TestResendRefusedLeavesARefundReservedSince(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			rt := &beforeRefundPost{}
			e := newEnv(t, envOptions{driver: driver, storeClock: true, client: func(c *wechatpay.Config) {
				c.MaxAttempts = 1
				c.AttemptTimeout = faultAttemptTimeout
				c.Transport = rt
			}})
			ctx := context.Background()
			o, p := confirmedAnswerLost(t, e, "oUser-resend-moved")
			other := replicaOn(t, e, e.st)
			var p2 *store.RefundProposal
			rt.mu.Lock()
			rt.armed = true
			rt.hook = func() {
				if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
					t.Errorf("the first refund's SUCCESS: %+v %v", d, err)
				}
				var err error
				p2, _, err = other.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "the rest", AmountFen: 1000})
				if err != nil {
					t.Errorf("second proposal: %v", err)
					return
				}
				if res, err := other.ConfirmRefund(ctx, "shop-bot", o.User, p2.RefundID); err != nil {
					t.Errorf("second confirm: %v, %v; want it sent", resStatus(res), err)
				}
				e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultNotEnough})
			}
			rt.mu.Unlock()
			e.sim.InjectFault(wxsim.Fault{Op: "refund-query", Kind: wxsim.FaultNotExist})
			e.clock.Advance(2 * time.Minute) // past refundQueryAfter and recordedGrace
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Logf("sweep: %v", err)
			}
			if p2 == nil {
				t.Fatal("the resend never left")
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusRefunding || got.RefundReservedBy != p2.RefundID || strings.Contains(got.ReviewReason, p.OutRefundNo) {
				t.Errorf("after the refused resend of the settled refund: order %s reserved by %q, review reason %q; want refunding for %s",
					got.Status, got.RefundReservedBy, got.ReviewReason, p2.RefundID)
			}
		})
	}
}
