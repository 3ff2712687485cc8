package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestPartialRefundsOfOneOrderInSequence: the partial refunds of one paid
// 99.98 order, each proposed by request_refund and confirmed by the user,
// each ending at WeChat Pay (the simulator, through the official client) as
// WeChat Pay ends refunds: 10.00 succeeded, 20.00 closed (its notification
// delivered, or lost and found by the sweep's refund query), then
// everything left, proposed by default. After each, refunded_fen (of the
// order and of its view) counts the succeeded ones only, the order is
// partially_refunded until they sum to the payment and refunded then, and
// every refund request carried amount.total = the order's 99.98 and
// amount.refund = the confirmed amount. A closed refund's amount is the
// order's to refund again (WeChat Pay's, as paygate's): "what is left" is
// 89.98, and WeChat Pay takes it. On both drivers.
func TestPartialRefundsOfOneOrderInSequence(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, lost := range []bool{false, true} {
			name := driver + "/closed-notified"
			if lost {
				name = driver + "/closed-queried"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver})
				tools := newTools(e)
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-partial-seq", 2) // 99.98
				u := caller(o.User)
				refund := func(amount string, wantFen int64) *store.RefundProposal {
					t.Helper()
					args := `{"order_no":"` + o.OrderNo + `","reason":"partly unused"` + amount + `}`
					tc := call(t, tools, u, "request_refund", args)
					rf, _ := tc.action["refund"].(map[string]any)
					id, _ := rf["refund_id"].(string)
					if tc.result["status"] != "awaiting_user_confirmation" || rf["amount_fen"] != float64(wantFen) {
						t.Fatalf("request_refund %s: %s; want a proposal of %d fen", args, tc.out.Result, wantFen)
					}
					res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, id)
					if err != nil || res.Status != payments.RefundProcessing {
						t.Fatalf("confirm %d fen: %v, %v", wantFen, resStatus(res), err)
					}
					r, ok := e.sim.Refund(payments.OutRefundNo(id))
					if !ok || r.Amount.Total != o.AmountFen || r.Amount.Refund != wantFen {
						t.Fatalf("wechat pay got refund %+v (known %v); want amount.total %d, amount.refund %d", r.Amount, ok, o.AmountFen, wantFen)
					}
					return res.Proposal
				}
				check := func(step string, status store.OrderStatus, refunded int64) {
					t.Helper()
					got := e.order(o.OrderNo)
					view := payments.OrderView(got)
					if got.Status != status || got.RefundedFen != refunded || view["refunded_fen"] != refunded {
						t.Fatalf("%s: order %s refunded_fen %d (view %v); want %s %d", step, got.Status, got.RefundedFen, view["refunded_fen"], status, refunded)
					}
				}

				p := refund(`,"amount":"10.00"`, 1000)
				check("10.00 sent", store.StatusRefunding, 0)
				if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
					t.Fatalf("10.00 succeeded: %+v %v", d, err)
				}
				check("10.00 succeeded", store.StatusPartiallyRefunded, 1000)

				p = refund(`,"amount":"20.00"`, 2000)
				check("20.00 sent", store.StatusRefunding, 1000)
				nctx := ctx
				if lost {
					c, cancel := context.WithCancel(ctx)
					cancel() // its notification never arrives
					nctx = c
				}
				d, err := e.sim.CloseRefund(nctx, p.OutRefundNo)
				if err != nil || d.Acked == lost {
					t.Fatalf("20.00 closed: %+v %v", d, err)
				}
				if lost {
					check("20.00 closed, not yet heard", store.StatusRefunding, 1000)
					e.clock.Advance(2 * time.Minute)
					if _, err := e.svc.Sweep(ctx); err != nil {
						t.Fatalf("sweep: %v", err)
					}
				}
				check("20.00 closed", store.StatusPartiallyRefunded, 1000)

				p = refund(``, 8998) // what is left, the closed 20.00 with it
				check("the rest sent", store.StatusRefunding, 1000)
				if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
					t.Fatalf("the rest succeeded: %+v %v", d, err)
				}
				check("the rest succeeded", store.StatusRefunded, 9998)
				tc := call(t, tools, u, "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"more"}`)
				if tc.result["status"] != "not_refundable" || tc.action != nil {
					t.Errorf("a refund of a refunded order: %s; want not_refundable", tc.out.Result)
				}

				// ABNORMAL: the money left the merchant and did not reach
				// the payer; a person re-handles it. Nothing is counted.
				o = paidOrder(t, e, "oUser-partial-seq-stuck", 1) // 49.99
				u = caller(o.User)
				p = refund(`,"amount":"30.00"`, 3000)
				nctx = ctx
				if lost {
					c, cancel := context.WithCancel(ctx)
					cancel()
					nctx = c
				}
				if d, err := e.sim.AbnormalRefund(nctx, p.OutRefundNo); err != nil || d.Acked == lost {
					t.Fatalf("30.00 abnormal: %+v %v", d, err)
				}
				if lost {
					e.clock.Advance(2 * time.Minute)
					if _, err := e.svc.Sweep(ctx); err != nil {
						t.Fatalf("sweep: %v", err)
					}
				}
				check("30.00 abnormal", store.StatusNeedsReview, 0)
				for _, rq := range e.sim.Requests() {
					if rq.Op == "refund" && rq.Status/100 != 2 {
						t.Errorf("a refund request refused by wechat pay: %+v", rq)
					}
				}
			})
		}
	}
}
