package payments_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestPaymentAfterTheRefundOfAnUnknownOrderIsRecorded: WeChat Pay's
// refund notification for an order paygate does not know can come before
// the payment's (the payment's first delivery answered 500, its retry
// later). The refund records an orphan from what a refund says: no appid,
// no payer, no time of payment. The payment's notification then brings
// them, WeChat Pay's only word on who paid: it is recorded on the orphan
// (the app, the time of payment, the payer in the review reason), and the
// merchant hears of it (order.needs_review), not acknowledged as a
// duplicate and dropped for good. A copy of it changes nothing.
func TestPaymentAfterTheRefundOfAnUnknownOrderIsRecorded(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			const no, txid, payer = "PGghostRefundFirst0001", "420000123488888888888888888888", "oGhostPayerRefundFirst"
			res := wxsim.RefundResource{
				MchID: e.sim.MchID(), TransactionID: txid, OutTradeNo: no,
				RefundID: "50300000000000000000000088888", OutRefundNo: "RFghostRefundFirst01", RefundStatus: "SUCCESS",
				SuccessTime: time.Now().Format(time.RFC3339), UserReceivedAccount: "支付用户零钱",
			}
			res.Amount.Total, res.Amount.Refund, res.Amount.PayerTotal, res.Amount.PayerRefund = 4999, 4999, 4999, 4999
			rn, err := e.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventRefundSuccess, Summary: "退款成功", OriginalType: "refund", Resource: res})
			if err != nil {
				t.Fatal(err)
			}
			if status, body := e.post(rn.Header, rn.Body); status != http.StatusNoContent {
				t.Fatalf("refund notification: %d %s; want 204", status, body)
			}
			orphan := e.order(no)
			if orphan.Status != store.StatusNeedsReview {
				t.Fatalf("after the refund: %s; want needs_review", orphan.Status)
			}

			paidAt := time.Now().Add(-time.Minute).Truncate(time.Second)
			tx := e.paidTx(&store.Order{OrderNo: no, AppID: e.sim.AppID(), User: payer, AmountFen: 4999})
			tx.TransactionID, tx.SuccessTime = txid, paidAt.Format(time.RFC3339)
			pn := e.buildPayment(tx, nil)
			if status, body := e.post(pn.Header, pn.Body); status != http.StatusNoContent {
				t.Fatalf("payment notification: %d %s; want 204", status, body)
			}
			got := e.order(no)
			if got.Status != store.StatusNeedsReview {
				t.Errorf("after the payment: %s; want needs_review", got.Status)
			}
			if !got.PaidAt.Equal(paidAt) || got.AppID != e.sim.AppID() || got.PayMethod != "jsapi" || !strings.Contains(got.ReviewReason, payer) {
				t.Errorf("after the payment: paid_at %v, app_id %q, pay_method %q, review reason %q; want paid_at %v, app_id %q, jsapi and the payer %s named",
					got.PaidAt, got.AppID, got.PayMethod, got.ReviewReason, paidAt, e.sim.AppID(), payer)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"event": wechatpay.EventTransactionSuccess, "outcome": "review"}); n != 1 {
				t.Errorf("payment notifications with outcome review: got %v; want 1", n)
			}
			e.await(func(tr payments.Transition) bool {
				return tr.After.OrderNo == no && tr.Before.Status == store.StatusNeedsReview && tr.After.AppID == e.sim.AppID()
			})

			if status, body := e.post(pn.Header, pn.Body); status != http.StatusNoContent { // WeChat Pay's retry
				t.Fatalf("copy of the payment notification: %d %s; want 204", status, body)
			}
			if again := e.order(no); again.Version != got.Version {
				t.Errorf("a copy of the payment changed the orphan: version %d -> %d, review reason %q", got.Version, again.Version, again.ReviewReason)
			}
		})
	}
}
