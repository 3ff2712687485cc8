package payments_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestCopyOfThePaymentAfterAResolution: an order in review for a refund
// made on the merchant platform is closed by a person; WeChat Pay then
// sends its payment or that refund's notification again (its
// acknowledgement was lost, and it retries for a day). Each is what the
// order records: a copy, which changes nothing. A refund's copy, taken as
// a refund on a dead order (refund_on_closed), put it back in review, the
// merchant told of it again. Taken as money on a dead order
// (paid_after_closed), it put the order back in review under a reason that
// had lost the refund, and a person could then settle as paid, the
// merchant delivering for money the payer had back.
func TestCopyOfThePaymentAfterAResolution(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, copyOf := range []string{"payment", "refund"} {
			t.Run(driver+"/"+copyOf, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-resolve-copy", 1)
				if status, body := e.postRefund(o, o.TransactionID, refundWord{"RFplatform0001", wechatpay.RefundSuccess, o.AmountFen}); status != http.StatusNoContent {
					t.Fatalf("platform refund notification: %d %s", status, body)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview || !strings.Contains(got.ReviewReason, "refund_not_requested") {
					t.Fatalf("after the platform refund: %s (%s); want needs_review for refund_not_requested", got.Status, got.ReviewReason)
				}
				if _, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusClosed); err != nil {
					t.Fatalf("resolve as closed: %v", err)
				}
				if copyOf == "refund" {
					if status, body := e.postRefund(o, o.TransactionID, refundWord{"RFplatform0001", wechatpay.RefundSuccess, o.AmountFen}); status != http.StatusNoContent {
						t.Fatalf("the refund's copy: %d %s", status, body)
					}
					if got := e.order(o.OrderNo); got.Status != store.StatusClosed {
						t.Errorf("after the refund's copy: %s (%s); want closed, as the person resolved it", got.Status, got.ReviewReason)
					}
					return
				}
				tx, ok := e.sim.Order(o.OrderNo)
				if !ok {
					t.Fatal("order unknown to the simulator")
				}
				n, err := e.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventTransactionSuccess, Summary: "支付成功", OriginalType: "transaction", Resource: tx})
				if err != nil {
					t.Fatal(err)
				}
				if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
					t.Fatalf("the payment's copy: %d %s", status, body)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusClosed {
					t.Errorf("after the payment's copy: %s (%s); want closed, as the person resolved it", got.Status, got.ReviewReason)
					if res, err := e.svc.Resolve(ctx, o.OrderNo, store.StatusPaid); err == nil {
						t.Errorf("then resolved as paid: %s, with its money back with the payer", res.Status)
					}
				}
			})
		}
	}
}
