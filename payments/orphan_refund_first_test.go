package payments_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
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
			rn := orphanRefundNote(t, e, no, txid, "50300000000000000000000088888", "RFghostRefundFirst01")
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

// wordBeforeOrphan posts the notification note to the notify route right
// before the first orphan of number no is recorded whose time of payment is
// set (paid: the payment's orphan) or not (the orphan a refund implies):
// the other notification's word lands between that one's read that found
// no order and its record of the orphan, as two deliveries a moment apart
// do.
type wordBeforeOrphan struct {
	fullStore
	no     string
	paid   bool
	url    string
	note   *wxsim.Notification
	armed  atomic.Bool
	status atomic.Int64 // note's answer
}

func (s *wordBeforeOrphan) CreateOrder(ctx context.Context, o *store.Order, events ...store.Event) error {
	if o.OrderNo == s.no && o.PaidAt.IsZero() != s.paid && s.armed.CompareAndSwap(true, false) {
		req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(s.note.Body))
		if err == nil {
			for k, v := range s.note.Header {
				req.Header[k] = v
			}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				s.status.Store(int64(resp.StatusCode))
				resp.Body.Close()
			}
		}
	}
	return s.fullStore.CreateOrder(ctx, o, events...)
}

// TestPaymentRacingTheRefundOfAnUnknownOrderIsRecorded: the refund's
// notification of an order paygate does not know records its orphan while
// the payment's notification of the same order, which read no order a
// moment before, goes to record its own: that record finds the refund's
// orphan, with the transaction id the refund names. The payment is still
// WeChat Pay's only word on the app, the time of payment and the payer: it
// is recorded on the orphan, as when it comes after the refund, not
// acknowledged as a copy of a payment already recorded and dropped.
func TestPaymentRacingTheRefundOfAnUnknownOrderIsRecorded(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			const no, txid, payer = "PGghostRefundRace0001", "420000123477777777777777777777", "oGhostPayerRefundRace"
			var st *wordBeforeOrphan
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				st = &wordBeforeOrphan{fullStore: o.Store.(fullStore), no: no, paid: true}
				o.Store = st
			}})
			rn := orphanRefundNote(t, e, no, txid, "50300000000000000000000077777", "RFghostRefundRace01")
			st.url, st.note = e.notify.URL+payments.NotifyPath, rn
			st.armed.Store(true)

			paidAt := time.Now().Add(-time.Minute).Truncate(time.Second)
			tx := e.paidTx(&store.Order{OrderNo: no, AppID: e.sim.AppID(), User: payer, AmountFen: 4999})
			tx.TransactionID, tx.SuccessTime = txid, paidAt.Format(time.RFC3339)
			pn := e.buildPayment(tx, nil)
			if status, body := e.post(pn.Header, pn.Body); status != http.StatusNoContent {
				t.Fatalf("payment notification: %d %s; want 204", status, body)
			}
			if st.armed.Load() || st.status.Load() != http.StatusNoContent {
				t.Fatalf("the refund notification did not land before the payment's orphan: armed %v, answered %d", st.armed.Load(), st.status.Load())
			}
			got := e.order(no)
			if got.Status != store.StatusNeedsReview {
				t.Errorf("after both: %s; want needs_review", got.Status)
			}
			if !got.PaidAt.Equal(paidAt) || got.AppID != e.sim.AppID() || got.PayMethod != "jsapi" || !strings.Contains(got.ReviewReason, payer) ||
				!strings.Contains(got.ReviewReason, "RFghostRefundRace01") {
				t.Errorf("after both: paid_at %v, app_id %q, pay_method %q, review reason %q; want paid_at %v, app_id %q, jsapi, the payer %s and the refund named",
					got.PaidAt, got.AppID, got.PayMethod, got.ReviewReason, paidAt, e.sim.AppID(), payer)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"event": wechatpay.EventTransactionSuccess, "outcome": "review"}); n != 1 {
				t.Errorf("payment notifications with outcome review: got %v; want 1", n)
			}
		})
	}
}

// TestRefundRacingThePaymentOfAnUnknownOrderIsCounted: the payment's
// notification of an order paygate does not know records its orphan while
// the refund's notification of the same order, which read no order a
// moment before, goes to record the orphan the refund implies: it finds
// the payment's, and the refund goes onto it, as when it comes after the
// payment. Its notification is counted as what it did there (review,
// refund_not_requested), not as a duplicate: it was WeChat Pay's first
// word of that refund, and an operator counting reviews by the metric
// missed it.
func TestRefundRacingThePaymentOfAnUnknownOrderIsCounted(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			const no, txid, payer = "PGghostPaymentRace0001", "420000123466666666666666666666", "oGhostPayerPaymentRace"
			var st *wordBeforeOrphan
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				st = &wordBeforeOrphan{fullStore: o.Store.(fullStore), no: no}
				o.Store = st
			}})
			paidAt := time.Now().Add(-time.Minute).Truncate(time.Second)
			tx := e.paidTx(&store.Order{OrderNo: no, AppID: e.sim.AppID(), User: payer, AmountFen: 4999})
			tx.TransactionID, tx.SuccessTime = txid, paidAt.Format(time.RFC3339)
			st.url, st.note = e.notify.URL+payments.NotifyPath, e.buildPayment(tx, nil)
			st.armed.Store(true)

			rn := orphanRefundNote(t, e, no, txid, "50300000000000000000000066666", "RFghostPaymentRace01")
			if status, body := e.post(rn.Header, rn.Body); status != http.StatusNoContent {
				t.Fatalf("refund notification: %d %s; want 204", status, body)
			}
			if st.armed.Load() || st.status.Load() != http.StatusNoContent {
				t.Fatalf("the payment notification did not land before the refund's orphan: armed %v, answered %d", st.armed.Load(), st.status.Load())
			}
			got := e.order(no)
			if got.Status != store.StatusNeedsReview || !got.PaidAt.Equal(paidAt) || !strings.Contains(got.ReviewReason, "RFghostPaymentRace01") {
				t.Fatalf("after both: %s, paid_at %v, review reason %q; want needs_review, paid at %v, the refund named", got.Status, got.PaidAt, got.ReviewReason, paidAt)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"event": wechatpay.EventRefundSuccess, "outcome": "review", "reason": "refund_not_requested"}); n != 1 {
				t.Errorf("refund notifications counted review, refund_not_requested: got %v; want 1 (duplicate: %v)", n,
					e.counter("paygate_notifications_total", map[string]string{"event": wechatpay.EventRefundSuccess, "outcome": "duplicate"}))
			}
		})
	}
}

// afterOrphan posts note to the notify route right after the first orphan
// of number no is recorded: a copy of the notification that recorded it,
// delivered over another link, lands before that one goes on.
type afterOrphan struct {
	fullStore
	no     string
	url    string
	note   *wxsim.Notification
	armed  atomic.Bool
	status atomic.Int64
}

func (s *afterOrphan) CreateOrder(ctx context.Context, o *store.Order, events ...store.Event) error {
	err := s.fullStore.CreateOrder(ctx, o, events...)
	if err == nil && o.OrderNo == s.no && s.armed.CompareAndSwap(true, false) {
		req, rerr := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(s.note.Body))
		if rerr == nil {
			for k, v := range s.note.Header {
				req.Header[k] = v
			}
			if resp, derr := http.DefaultClient.Do(req); derr == nil {
				s.status.Store(int64(resp.StatusCode))
				resp.Body.Close()
			}
		}
	}
	return err
}

// TestCopiesOfTheRefundOfAnUnknownOrderCountOnce: two copies of one refund
// notification for an order paygate does not know race (WeChat Pay sends
// copies a second apart over different links): the second lands just
// after the first recorded the orphan, before the first put the refund on
// it. One refund, one orphan: the notifications are counted once as the
// orphan and once as a duplicate, not also as a review of the refund the
// second put on the first's orphan (an operator counting reviews by the
// metric saw one more than there was), and the refund is on the orphan
// once.
func TestCopiesOfTheRefundOfAnUnknownOrderCountOnce(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			const no, txid = "PGghostRefundCopies0001", "420000123455555555555555555555"
			var st *afterOrphan
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				st = &afterOrphan{fullStore: o.Store.(fullStore), no: no}
				o.Store = st
			}})
			rn := orphanRefundNote(t, e, no, txid, "50300000000000000000000055555", "RFghostRefundCopies01")
			st.url, st.note = e.notify.URL+payments.NotifyPath, rn
			st.armed.Store(true)
			if status, body := e.post(rn.Header, rn.Body); status != http.StatusNoContent {
				t.Fatalf("refund notification: %d %s; want 204", status, body)
			}
			if st.armed.Load() || st.status.Load() != http.StatusNoContent {
				t.Fatalf("the copy did not land after the orphan: armed %v, answered %d", st.armed.Load(), st.status.Load())
			}
			count := func(outcome string) float64 {
				return e.counter("paygate_notifications_total", map[string]string{"event": wechatpay.EventRefundSuccess, "outcome": outcome})
			}
			if o, r, d := count(payments.OutcomeOrphan), count(payments.OutcomeReview), count(payments.OutcomeDuplicate); o != 1 || r != 0 || d != 1 {
				t.Errorf("refund notifications counted orphan %v, review %v, duplicate %v; want 1, 0 and 1", o, r, d)
			}
			got := e.order(no)
			if got.Status != store.StatusNeedsReview || strings.Count(got.ReviewReason, "RFghostRefundCopies01") != 1 {
				t.Errorf("orphan %s, review reason %q; want needs_review with the refund on it once", got.Status, got.ReviewReason)
			}
		})
	}
}

// orphanRefundNote builds WeChat Pay's REFUND.SUCCESS notification of a
// whole 49.99 refund of order no (transaction txid) that paygate never
// made: the refund of an order it does not know.
func orphanRefundNote(t *testing.T, e *env, no, txid, refundID, outRefundNo string) *wxsim.Notification {
	t.Helper()
	res := wxsim.RefundResource{
		MchID: e.sim.MchID(), TransactionID: txid, OutTradeNo: no,
		RefundID: refundID, OutRefundNo: outRefundNo, RefundStatus: "SUCCESS",
		SuccessTime: time.Now().Format(time.RFC3339), UserReceivedAccount: "支付用户零钱",
	}
	res.Amount.Total, res.Amount.Refund, res.Amount.PayerTotal, res.Amount.PayerRefund = 4999, 4999, 4999, 4999
	rn, err := e.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventRefundSuccess, Summary: "退款成功", OriginalType: "refund", Resource: res})
	if err != nil {
		t.Fatal(err)
	}
	return rn
}
