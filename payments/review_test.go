package payments_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// postRefundSuccess delivers WeChat Pay's REFUND.SUCCESS of the whole of o
// under outRefundNo, as a refund made on the merchant platform would send it.
func (e *env) postRefundSuccess(o *store.Order, outRefundNo, transactionID string) {
	e.t.Helper()
	res := wxsim.RefundResource{MchID: e.sim.MchID(), TransactionID: transactionID, OutTradeNo: o.OrderNo,
		RefundID: "50" + strings.Repeat("1", 27), OutRefundNo: outRefundNo, RefundStatus: wechatpay.RefundSuccess}
	res.Amount.Total, res.Amount.Refund, res.Amount.PayerTotal, res.Amount.PayerRefund = o.AmountFen, o.AmountFen, o.AmountFen, o.AmountFen
	n, err := e.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventRefundSuccess, Summary: "退款成功", OriginalType: "refund", Resource: res})
	if err != nil {
		e.t.Fatal(err)
	}
	if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
		e.t.Fatalf("refund notification: got %d %q; want 204", status, body)
	}
}

// TestPaymentForOrderInReviewIsRecorded: a refund notification that arrives
// before the payment's (refund made on the merchant platform, payment
// notification delayed) puts an awaiting_payment order in needs_review with
// no transaction. The payment notification that follows is the first word of
// that money: its transaction id and time are recorded on the order, which
// stays in review for a person, and it counts and alerts as review, not as a
// duplicate. Only the transaction on record is a duplicate; another one is
// added to the review, once.
func TestPaymentForOrderInReviewIsRecorded(t *testing.T) {
	const other = "4200009999" + "888888888888888888"
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			o := e.create("oUser-review-paid", 1)
			e.postRefundSuccess(o, "RFplatform0001", "")
			if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview || got.TransactionID != "" {
				t.Fatalf("after the refund: got %s txid %q; want needs_review without a transaction", got.Status, got.TransactionID)
			}
			count := func(outcome, reason string) float64 {
				return e.counter("paygate_notifications_total", map[string]string{"event": wechatpay.EventTransactionSuccess, "outcome": outcome, "reason": reason})
			}
			steps := []struct {
				name          string
				transactionID string
				wantTxID      string
				wantOutcome   string
				wantReason    string // the metric's reason
				wantInReview  string // in the order's review reason
			}{
				{name: "first payment", transactionID: e.paidTx(o).TransactionID, wantTxID: e.paidTx(o).TransactionID,
					wantOutcome: payments.OutcomeReview, wantReason: "paid_while_in_review", wantInReview: "paid_while_in_review"},
				{name: "copy of it", transactionID: e.paidTx(o).TransactionID, wantTxID: e.paidTx(o).TransactionID,
					wantOutcome: payments.OutcomeDuplicate, wantReason: "ok"},
				{name: "another transaction", transactionID: other, wantTxID: e.paidTx(o).TransactionID,
					wantOutcome: payments.OutcomeReview, wantReason: "transaction_mismatch", wantInReview: "transaction_mismatch"},
				{name: "copy of the other", transactionID: other, wantTxID: e.paidTx(o).TransactionID,
					wantOutcome: payments.OutcomeDuplicate, wantReason: "ok"},
			}
			for _, st := range steps {
				before := e.order(o.OrderNo)
				n0 := count(st.wantOutcome, st.wantReason)
				tx := e.paidTx(o)
				tx.TransactionID = st.transactionID
				n := e.buildPayment(tx, nil)
				if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
					t.Fatalf("%s: got %d %q; want 204", st.name, status, body)
				}
				got := e.order(o.OrderNo)
				if got.Status != store.StatusNeedsReview || !strings.HasPrefix(got.ReviewReason, "refund_on_awaiting_payment") {
					t.Errorf("%s: got %s %q; want it kept in needs_review (refund_on_awaiting_payment)", st.name, got.Status, got.ReviewReason)
				}
				if got.TransactionID != st.wantTxID || got.PaidAt.IsZero() {
					t.Errorf("%s: transaction_id %q paid_at %v; want %q and a time", st.name, got.TransactionID, got.PaidAt, st.wantTxID)
				}
				if n := count(st.wantOutcome, st.wantReason); n != n0+1 {
					t.Errorf("%s: counted %s/%s %v times; want once", st.name, st.wantOutcome, st.wantReason, n-n0)
				}
				if st.wantOutcome == payments.OutcomeDuplicate && got.Version != before.Version {
					t.Errorf("%s: a duplicate changed the order (v%d -> v%d)", st.name, before.Version, got.Version)
				}
				if st.wantInReview != "" && strings.Count(got.ReviewReason, st.wantInReview+":") != 1 {
					t.Errorf("%s: review reason %q; want %s noted once", st.name, got.ReviewReason, st.wantInReview)
				}
			}
			if n := strings.Count(e.logs.String(), "ALERT: wechat pay disagrees with the order record"); n != 2 {
				t.Errorf("payment alerts: got %d; want 2 (first payment, another transaction)", n)
			}
		})
	}
}
