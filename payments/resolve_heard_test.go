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

// TestResolveClosesAnOrderWhoseRefundWasHeard: the confirmed refund in
// flight when WeChat Pay's SUCCESS of it disagreed with the record (another
// amount than the user confirmed) sent the order to review with its
// reservation kept, and that word is final: nothing more comes of the
// refund, so nothing would end the reservation. Closing ends it; paid is
// still refused (money went back).
func TestResolveClosesAnOrderWhoseRefundWasHeard(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-resolve-heard", 2)
			p := propose(t, e, o, 4999)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
				t.Fatalf("confirm: %v", err)
			}
			if status, body := e.postRefund(o, o.TransactionID, refundWord{p.OutRefundNo, wechatpay.RefundSuccess, 1000}); status != http.StatusNoContent {
				t.Fatalf("refund notification: %d %s", status, body)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusNeedsReview || got.RefundReservedBy != p.RefundID || !strings.HasPrefix(got.ReviewReason, "refund_amount_mismatch") {
				t.Fatalf("after the refund's word: %s reserved by %q (%q); want needs_review reserved by %s for refund_amount_mismatch",
					got.Status, got.RefundReservedBy, got.ReviewReason, p.RefundID)
			}
			if _, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusPaid); err == nil {
				t.Errorf("resolve as paid: accepted; want refused")
			}
			res, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusClosed)
			if err != nil || res == nil || res.Status != store.StatusClosed {
				t.Fatalf("resolve as closed: %+v %v; want closed", res, err)
			}
			if now := e.order(o.OrderNo); now.Status != store.StatusClosed || now.RefundReservedBy != "" {
				t.Errorf("after the resolution: %s reserved by %q; want closed reserved by none", now.Status, now.RefundReservedBy)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("simulator refunds %d; want 1", n)
			}
		})
	}
}

// TestResolveWaitsForTheTapThatTookTheRefund: a confirmation that took the
// user's word has not yet recorded its refund (between its two writes,
// on another replica) when WeChat Pay's word of a refund made on the
// merchant platform sends the order to review, reservation kept. Closing
// then is refused as a refund in flight: the confirmation goes on to
// record its refund and send it, and a close that ended its reservation
// told the merchant the order was settled while paygate sent a refund on
// it. Past takenGrace (no tap can still be at it) closing ends it.
func TestResolveWaitsForTheTapThatTookTheRefund(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-resolve-tap", 2)
			p := propose(t, e, o, 1000)
			hooked := &afterConsume{Store: e.st, hook: func() {
				if status, body := e.postRefund(o, o.TransactionID, refundWord{"RFplatform0001", wechatpay.RefundSuccess, 500}); status != http.StatusNoContent {
					t.Errorf("platform refund notification: %d %s", status, body)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview || got.RefundReservedBy != p.RefundID {
					t.Errorf("after the platform refund: %s reserved by %q (%s); want needs_review reserved by %s", got.Status, got.RefundReservedBy, got.ReviewReason, p.RefundID)
				}
				if got, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusClosed); !errors.Is(err, payments.ErrCannotResolve) {
					t.Errorf("closed between the tap's two writes: %+v %v; want refused, a refund in flight", got, err)
				}
			}}
			b := replicaOn(t, e, hooked)
			if _, err := b.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
				t.Logf("the tap: %v", err)
			}
			if got := e.order(o.OrderNo); got.Status == store.StatusClosed {
				t.Errorf("order closed with refund %s sent under it", p.OutRefundNo)
			}
		})
	}
}

// TestResolveClosesPastTheTapThatDied: the confirmation that took the
// user's word stopped before recording its refund (its replica died), and
// WeChat Pay's word of a refund made on the merchant platform sent the
// order to review, reservation kept. Closing is refused while that tap
// could still be at it, and ends the reservation past takenGrace, when
// nothing will be sent under it.
func TestResolveClosesPastTheTapThatDied(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-resolve-died", 2)
			p := propose(t, e, o, 1000)
			cur := e.order(o.OrderNo) // the tap's reservation, then its taking the proposal; then it died
			cur.Status, cur.RefundReservedBy = store.StatusRefunding, p.RefundID
			if err := e.st.UpdateOrder(ctx, cur, store.StatusPaid); err != nil {
				t.Fatal(err)
			}
			if _, err := e.st.ConsumeRefundProposal(ctx, p.RefundID, o.User); err != nil {
				t.Fatal(err)
			}
			if status, body := e.postRefund(o, o.TransactionID, refundWord{"RFplatform0001", wechatpay.RefundSuccess, 500}); status != http.StatusNoContent {
				t.Fatalf("platform refund notification: %d %s", status, body)
			}
			if got, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusClosed); !errors.Is(err, payments.ErrCannotResolve) {
				t.Errorf("closed at once: %+v %v; want refused, a refund in flight", got, err)
			}
			e.clock.Advance(2 * time.Minute)
			got, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusClosed)
			if err != nil || got.Status != store.StatusClosed || got.RefundReservedBy != "" {
				t.Fatalf("closed past the tap: %+v %v; want closed reserved by none", got, err)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 0 {
				t.Errorf("simulator refunds %d; want none", n)
			}
		})
	}
}
