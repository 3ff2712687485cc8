package payments_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestSweepLeavesARefundHeardInReview: WeChat Pay's SUCCESS of the user's
// refund came with another amount than the user confirmed, so the order
// went to needs_review with it noted and not counted, still held for it
// (refundHeard: a person settles it). SUCCESS is WeChat Pay's last word on
// a refund number, and any later word of it is noted already
// (noteRefundInReview), so nothing a query could answer changes the order:
// the sweep asked WeChat Pay about it on every pass all the same, for as
// long as the order waited for a person, each query one more toward
// FREQUENCY_LIMITED for the merchant's other orders.
func TestSweepLeavesARefundHeardInReview(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true,
				service: func(o *payments.Options) { o.SoleWriter = driver == "embedded" }})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-review-heard-sweep", 2) // 99.98 CNY
			p := propose(t, e, o, 4999)
			confirmThenReview(t, e, o, p, refundWord{outRefundNo: p.OutRefundNo, status: wechatpay.RefundSuccess, fen: 1000})
			if got := e.order(o.OrderNo); !strings.Contains(got.ReviewReason, "refund_amount_mismatch") {
				t.Fatalf("review reason %q; want refund_amount_mismatch", got.ReviewReason)
			}
			before := e.order(o.OrderNo)
			for range 3 {
				e.clock.Advance(payments.DefaultSweepInterval + time.Minute) // 4.5 min in all: the copy below within its 5
				if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
					t.Fatalf("sweep: %+v, %v", st, err)
				}
			}
			asked := 0
			for _, r := range e.sim.Requests() {
				if r.Op == "refund-query" && r.OutRefundNo == p.OutRefundNo {
					asked++
				}
			}
			if asked != 0 {
				t.Errorf("wechat pay asked about the refund heard in review %d times in 3 sweeps; want 0", asked)
			}
			if after := e.order(o.OrderNo); after.Version != before.Version || after.RefundReservedBy != p.RefundID {
				t.Errorf("order version %d -> %d, held by %q; want unchanged, held for %s (a person's)", before.Version, after.Version, after.RefundReservedBy, p.RefundID)
			}
			// Left by the sweep, the order is still the person's: WeChat Pay's
			// copy of that SUCCESS is acknowledged and changes nothing, and
			// the person closes the order (Resolve ends the reservation).
			w := refundWord{outRefundNo: p.OutRefundNo, status: wechatpay.RefundSuccess, fen: 1000}
			if status, body := e.postRefund(o, before.TransactionID, w); status/100 != 2 {
				t.Errorf("the SUCCESS again: %d %s; want acknowledged", status, body)
			}
			if after := e.order(o.OrderNo); after.Version != before.Version {
				t.Errorf("the SUCCESS again moved the order to v%d %s; want unchanged", after.Version, after.Status)
			}
			if r, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusClosed); err != nil || r.Status != store.StatusClosed || r.RefundReservedBy != "" {
				t.Errorf("resolve as closed: %+v, %v; want closed, its reservation ended", r, err)
			}
		})
	}
}
