package payments_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestRefundOutcomesKeptOnTheOrder: how each of paygate's refunds of an order
// ended at WeChat Pay (succeeded, closed, abnormal) is kept on the order,
// with its amount and the proposal the user confirmed, once however often
// WeChat Pay says it, so that the user's next turn can tell them "your refund
// of 49.99 CNY succeeded" (the order's status alone does not say which
// refund, or, for a closed one, that there was any). A refund WeChat Pay
// reports that paygate never made is not the user's refund: none is kept.
func TestRefundOutcomesKeptOnTheOrder(t *testing.T) {
	type step struct {
		fen    int64  // the refund the user confirms
		status string // what WeChat Pay then reports of it
	}
	tests := []struct {
		name   string
		steps  []step
		want   []string // fen/status of each outcome, in order
		status store.OrderStatus
	}{
		{name: "succeeded", steps: []step{{4999, wechatpay.RefundSuccess}}, want: []string{"4999/succeeded"}, status: store.StatusRefunded},
		{name: "closed", steps: []step{{4999, wechatpay.RefundClosed}}, want: []string{"4999/closed"}, status: store.StatusPaid},
		{name: "abnormal, then succeeded in review", steps: []step{{4999, wechatpay.RefundAbnormal}},
			want: []string{"4999/abnormal", "4999/succeeded"}, status: store.StatusNeedsReview},
		{name: "two partial refunds", steps: []step{{1000, wechatpay.RefundSuccess}, {2000, wechatpay.RefundSuccess}},
			want: []string{"1000/succeeded", "2000/succeeded"}, status: store.StatusPartiallyRefunded},
		{name: "closed, then another succeeded", steps: []step{{1000, wechatpay.RefundClosed}, {3999, wechatpay.RefundSuccess}},
			want: []string{"1000/closed", "3999/succeeded"}, status: store.StatusPartiallyRefunded},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-outcome", 1) // 49.99
				var ids []string
				for _, s := range tt.steps {
					p := propose(t, e, e.order(o.OrderNo), s.fen)
					ids = append(ids, p.RefundID)
					if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundProcessing {
						t.Fatalf("confirm: %v, %v", resStatus(res), err)
					}
					w := refundWord{outRefundNo: p.OutRefundNo, status: s.status, fen: s.fen}
					for range 2 { // WeChat Pay's copy changes nothing
						if status, body := e.postRefund(o, e.order(o.OrderNo).TransactionID, w); status/100 != 2 {
							t.Fatalf("refund notification: %d %s", status, body)
						}
					}
					if s.status == wechatpay.RefundAbnormal {
						w.status = wechatpay.RefundSuccess // the merchant re-handled it
						if status, body := e.postRefund(o, e.order(o.OrderNo).TransactionID, w); status/100 != 2 {
							t.Fatalf("refund success in review: %d %s", status, body)
						}
					}
				}
				// A refund of the merchant platform's, which paygate never
				// made: the order goes to review, no outcome of the user's.
				got := e.order(o.OrderNo)
				var outs []string
				for _, r := range got.RefundOutcomes {
					outs = append(outs, fmt.Sprintf("%d/%s", r.AmountFen, r.Status))
					if r.At.IsZero() || r.OutRefundNo != payments.OutRefundNo(r.RefundID) {
						t.Errorf("outcome %+v: want its time and the proposal it came from", r)
					}
				}
				if fmt.Sprint(outs) != fmt.Sprint(tt.want) || got.Status != tt.status {
					t.Errorf("order %s with outcomes %v; want %s with %v", got.Status, outs, tt.status, tt.want)
				}
				for i, r := range got.RefundOutcomes {
					if want := ids[min(i, len(ids)-1)]; r.RefundID != want && tt.name != "abnormal, then succeeded in review" {
						t.Errorf("outcome %d of refund %s; want %s", i, r.RefundID, want)
					}
				}
				if status, body := e.postRefund(o, got.TransactionID, refundWord{outRefundNo: "RFmerchantplatform0001", status: wechatpay.RefundSuccess, fen: 1}); status/100 != 2 {
					t.Fatalf("unasked refund notification: %d %s", status, body)
				}
				if after := e.order(o.OrderNo); len(after.RefundOutcomes) != len(got.RefundOutcomes) {
					t.Errorf("a refund paygate never made added an outcome: %+v", after.RefundOutcomes)
				}
			})
		}
	}
}

// phasedRT stands in for the network to WeChat Pay: while down, every
// refund request is lost before it arrives (WeChat Pay has no such
// refund); once refusing, WeChat Pay refuses refunds (403 NO_AUTH).
// Everything else passes to the simulator.
type phasedRT struct {
	down, refusing atomic.Bool
}

func (r *phasedRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.URL.Path == "/v3/refund/domestic/refunds" {
		switch {
		case r.down.Load():
			return nil, errors.New("connection reset by peer")
		case r.refusing.Load():
			return (&refusingRT{refuse: func(string, string, int) bool { return true }}).RoundTrip(req)
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestRefundRefusedOnResendIsKeptOnTheOrder: the user confirmed a refund
// and WeChat Pay could not be reached (the request may have arrived: the
// user was told it is pending); the sweep's resend under the same number
// is refused (403 NO_AUTH). That refusal says nothing of the first send,
// which may have made the refund: the order goes to needs_review naming
// the refund and the refusal, its refund kept in flight, and nothing is
// told the user as failed. Put back to paid with the refund failed, a new
// proposal under a new out_refund_no could refund the order twice. A
// confirmation refused outright, with no earlier send, still puts the
// order back to paid, the user told at once (ErrRefundFailed).
func TestRefundRefusedOnResendIsKeptOnTheOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, tt := range []struct {
			name        string
			unreachable bool // the confirmation's send is lost first
		}{
			{name: "unreachable, then refused", unreachable: true},
			{name: "refused at once"},
		} {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				rt := &phasedRT{}
				rt.down.Store(tt.unreachable)
				rt.refusing.Store(!tt.unreachable)
				e := newEnv(t, envOptions{driver: driver, storeClock: true, client: func(c *wechatpay.Config) { c.Transport = rt }})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-resend-refused", 1)
				p := propose(t, e, o, 0)
				res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				if !tt.unreachable {
					got := e.order(o.OrderNo)
					if !errors.Is(err, payments.ErrRefundFailed) || got.Status != store.StatusPaid || len(got.RefundOutcomes) != 0 {
						t.Errorf("confirm refused at once: %v, order %s with outcomes %+v; want ErrRefundFailed, paid, nothing kept to tell later",
							err, got.Status, got.RefundOutcomes)
					}
					return
				}
				if err != nil || res.Status != payments.RefundPending {
					t.Fatalf("confirm with WeChat Pay unreachable: %v, %v; want pending", resStatus(res), err)
				}
				rt.down.Store(false)
				rt.refusing.Store(true)
				e.clock.Advance(2 * time.Minute)
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Logf("sweep: %v", err)
				}
				got := e.order(o.OrderNo)
				if got.Status != store.StatusNeedsReview || got.RefundReservedBy != p.RefundID || len(got.RefundOutcomes) != 0 ||
					!strings.Contains(got.ReviewReason, "wechat pay refund "+p.OutRefundNo+": outcome of the first send unknown, resend refused: NO_AUTH") {
					t.Errorf("after the refused resend: order %s reserved by %q with outcomes %+v, review reason %q; want needs_review with the refund in flight, nothing told failed",
						got.Status, got.RefundReservedBy, got.RefundOutcomes, got.ReviewReason)
				}
				if _, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "again", AmountFen: 4999}); err == nil {
					t.Errorf("a new refund was proposed for an order whose refund WeChat Pay may have made")
				}
			})
		}
	}
}
