package payments_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
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

// refundWord is one REFUND.* notification WeChat Pay sends about an order.
type refundWord struct {
	outRefundNo string
	status      string // wechatpay.Refund*: SUCCESS, CLOSED or ABNORMAL
	fen         int64
}

// event is the notification's event_type.
func (w refundWord) event() string {
	switch w.status {
	case wechatpay.RefundSuccess:
		return wechatpay.EventRefundSuccess
	case wechatpay.RefundClosed:
		return wechatpay.EventRefundClosed
	}
	return wechatpay.EventRefundAbnormal
}

// postRefund delivers WeChat Pay's notification w about order o (of
// transaction transactionID) and returns the HTTP status and body.
func (e *env) postRefund(o *store.Order, transactionID string, w refundWord) (int, string) {
	e.t.Helper()
	res := wxsim.RefundResource{MchID: e.sim.MchID(), TransactionID: transactionID, OutTradeNo: o.OrderNo,
		RefundID: "50" + strings.Repeat("2", 27), OutRefundNo: w.outRefundNo, RefundStatus: w.status, UserReceivedAccount: "招商银行信用卡0403"}
	res.Amount.Total, res.Amount.Refund, res.Amount.PayerTotal, res.Amount.PayerRefund = o.AmountFen, w.fen, o.AmountFen, w.fen
	n, err := e.sim.BuildNotification(wxsim.NotificationSpec{EventType: w.event(), Summary: "退款", OriginalType: "refund", Resource: res})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.post(n.Header, n.Body)
}

// TestRefundWordForOrderInReviewIsRecorded: a confirmed refund that WeChat
// Pay reports ABNORMAL (the user's card was cancelled, say) puts its order in
// needs_review. The merchant then re-handles it through WeChat Pay's
// abnormal-refund API under the same out_refund_no, and WeChat Pay sends
// REFUND.SUCCESS for it: money went back, and it must be recorded on the
// order still in review (refunded_fen, refund_nos, the review reason),
// committed as a transition, and counted as review, not acknowledged and
// dropped as a duplicate. Every other refund fact WeChat Pay reports while
// the order is in review is added to the review reason without counting
// its money: a SUCCESS of a refund paygate did not ask for (the merchant
// platform, or a late copy of a refund from before refund numbers were
// kept, which would count twice) or one that would refund more than was
// paid; each exactly once: copies change nothing.
func TestRefundWordForOrderInReviewIsRecorded(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			o := paidOrder(t, e, "oUser-review-refund", 2) // 99.98 CNY
			p := propose(t, e, o, 4999)
			if _, err := e.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); err != nil {
				t.Fatalf("confirm: %v", err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
				t.Fatalf("after the confirmation: got %s; want refunding", got.Status)
			}
			steps := []struct {
				name         string
				word         refundWord
				wantOutcome  string
				wantReason   string // the metric's reason
				wantRefunded int64
			}{
				{name: "abnormal", word: refundWord{p.OutRefundNo, wechatpay.RefundAbnormal, 4999},
					wantOutcome: payments.OutcomeReview, wantReason: "refund_abnormal"},
				{name: "copy of the abnormal", word: refundWord{p.OutRefundNo, wechatpay.RefundAbnormal, 4999},
					wantOutcome: payments.OutcomeDuplicate, wantReason: "ok"},
				{name: "success once the merchant re-handled it", word: refundWord{p.OutRefundNo, wechatpay.RefundSuccess, 4999},
					wantOutcome: payments.OutcomeReview, wantReason: "refunded_while_in_review", wantRefunded: 4999},
				{name: "copy of the success", word: refundWord{p.OutRefundNo, wechatpay.RefundSuccess, 4999},
					wantOutcome: payments.OutcomeDuplicate, wantReason: "ok", wantRefunded: 4999},
				{name: "another refund closed", word: refundWord{"RFplatform0002", wechatpay.RefundClosed, 1000},
					wantOutcome: payments.OutcomeReview, wantReason: "refund_closed", wantRefunded: 4999},
				{name: "copy of the closed", word: refundWord{"RFplatform0002", wechatpay.RefundClosed, 1000},
					wantOutcome: payments.OutcomeDuplicate, wantReason: "ok", wantRefunded: 4999},
				{name: "another refund abnormal", word: refundWord{"RFplatform0003", wechatpay.RefundAbnormal, 1000},
					wantOutcome: payments.OutcomeReview, wantReason: "refund_abnormal", wantRefunded: 4999},
				// Not the refund in flight: noted, not counted, as outside
				// review (refund_not_requested); a person reconciles it.
				{name: "refund made on the merchant platform", word: refundWord{"RFplatform0004", wechatpay.RefundSuccess, 1000},
					wantOutcome: payments.OutcomeReview, wantReason: "refund_not_requested", wantRefunded: 4999},
				{name: "copy of the platform refund", word: refundWord{"RFplatform0004", wechatpay.RefundSuccess, 1000},
					wantOutcome: payments.OutcomeDuplicate, wantReason: "ok", wantRefunded: 4999},
				{name: "refund of more than is left", word: refundWord{"RFplatform0005", wechatpay.RefundSuccess, 5000},
					wantOutcome: payments.OutcomeReview, wantReason: "refund_amount_mismatch", wantRefunded: 4999},
				{name: "copy of that", word: refundWord{"RFplatform0005", wechatpay.RefundSuccess, 5000},
					wantOutcome: payments.OutcomeDuplicate, wantReason: "ok", wantRefunded: 4999},
			}
			counted := []string{}
			for _, st := range steps {
				before := e.order(o.OrderNo)
				labels := map[string]string{"event": st.word.event(), "outcome": st.wantOutcome, "reason": st.wantReason}
				n0 := e.counter("paygate_notifications_total", labels)
				if status, body := e.postRefund(o, o.TransactionID, st.word); status != http.StatusNoContent {
					t.Fatalf("%s: got %d %q; want 204", st.name, status, body)
				}
				got := e.order(o.OrderNo)
				if got.Status != store.StatusNeedsReview || !strings.HasPrefix(got.ReviewReason, "refund_abnormal") {
					t.Errorf("%s: got %s %q; want it kept in needs_review (refund_abnormal)", st.name, got.Status, got.ReviewReason)
				}
				if got.RefundedFen != st.wantRefunded {
					t.Errorf("%s: refunded_fen %d; want %d", st.name, got.RefundedFen, st.wantRefunded)
				}
				if st.wantReason == "refunded_while_in_review" && !slices.Contains(counted, st.word.outRefundNo) {
					counted = append(counted, st.word.outRefundNo)
				}
				if !slices.Equal(got.RefundNos, counted) {
					t.Errorf("%s: refund_nos %q; want %q", st.name, got.RefundNos, counted)
				}
				if n := e.counter("paygate_notifications_total", labels); n != n0+1 {
					t.Errorf("%s: counted %s/%s %v times; want once", st.name, st.wantOutcome, st.wantReason, n-n0)
				}
				if dup := st.wantOutcome == payments.OutcomeDuplicate; dup != (got.Version == before.Version) {
					t.Errorf("%s: v%d -> v%d; want a new version unless a duplicate", st.name, before.Version, got.Version)
				}
				fact := fmt.Sprintf("refund %s (%s)", st.word.outRefundNo, st.word.status)
				if n := strings.Count(got.ReviewReason, fact); n != 1 {
					t.Errorf("%s: review reason %q notes %q %d times; want once", st.name, got.ReviewReason, fact, n)
				}
				if st.wantOutcome != payments.OutcomeDuplicate && !strings.Contains(got.ReviewReason, st.wantReason+": wechat pay "+fact) {
					t.Errorf("%s: review reason %q; want %s noted", st.name, got.ReviewReason, st.wantReason)
				}
			}
			// The money of the re-handled refund was committed as a
			// transition of its own, naming the user's refund (audit).
			tr := e.await(func(tr payments.Transition) bool {
				return tr.After.OrderNo == o.OrderNo && tr.Before.RefundedFen == 0 && tr.After.RefundedFen == 4999
			})
			if tr.Refund == nil || tr.Refund.RefundID != p.RefundID || tr.Cause != "notification" {
				t.Errorf("transition of the re-handled refund: cause %q refund %+v; want the notification and proposal %s", tr.Cause, tr.Refund, p.RefundID)
			}
		})
	}
}

// TestMoneyOnOrderOfAnyStatusIsRecorded: WeChat Pay's verified word that
// money moved is acknowledged and recorded whatever the order's status:
// applied when it fits (a pending order is paid), else the order goes to
// needs_review (SPEC 2.4). A held or rejected order has no prepay, so a
// payment or refund WeChat Pay reports for it contradicts the record all
// the more; yet those two statuses had no edge to needs_review, so the
// notification answered 500, changed nothing, and WeChat Pay retried for a
// day in vain.
func TestMoneyOnOrderOfAnyStatusIsRecorded(t *testing.T) {
	const recorded = "4200000000" + "111111111111111111" // not paidTx's
	tests := []struct {
		status store.OrderStatus
		// paid is where a payment notification leaves the order, and why
		// (the start of the review reason) when in review.
		paid    store.OrderStatus
		paidWhy string
		// refundWhy is why an unasked REFUND.SUCCESS puts it in review. A
		// refunding order's word is judged against its refund in flight
		// (TestNotifyRefund); this one has none (a confirmation that
		// reserved the order and stopped before recording its refund, so
		// nothing went to WeChat Pay), and money that went back is unasked.
		refundWhy string
	}{
		{store.StatusCreating, store.StatusPaid, "", "refund_on_creating"},
		{store.StatusAwaitingPayment, store.StatusPaid, "", "refund_on_awaiting_payment"},
		{store.StatusApprovalRequired, store.StatusNeedsReview, "paid_after_approval_required", "refund_on_approval_required"},
		{store.StatusRejected, store.StatusNeedsReview, "paid_after_rejected", "refund_on_rejected"},
		{store.StatusClosed, store.StatusNeedsReview, "paid_after_closed", "refund_on_closed"},
		{store.StatusExpired, store.StatusNeedsReview, "paid_after_expired", "refund_on_expired"},
		{store.StatusPaid, store.StatusNeedsReview, "transaction_mismatch", "refund_not_requested"},
		{store.StatusRefunding, store.StatusNeedsReview, "transaction_mismatch", "refund_not_requested"},
		{store.StatusPartiallyRefunded, store.StatusNeedsReview, "transaction_mismatch", "refund_not_requested"},
		{store.StatusRefunded, store.StatusNeedsReview, "transaction_mismatch", "refund_not_requested"},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			// order stores an order of status st as the service left it.
			order := func(st store.OrderStatus, user string) *store.Order {
				t.Helper()
				now := e.clock.Now()
				o := &store.Order{
					OrderNo: payments.NewOrderNo(now), Client: "shop-bot", AppID: e.sim.AppID(), User: user,
					SKU: "premium-monthly", Description: "Premium tier, 1 month", Quantity: 1, AmountFen: 4999, Currency: "CNY",
					PayMethod: "jsapi", Status: st, CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute),
				}
				if payments.PaidOrLater(st) {
					o.TransactionID, o.PaidAt = recorded, now
				}
				switch st {
				case store.StatusPartiallyRefunded:
					o.RefundedFen, o.RefundNos = 1000, []string{"RFearlier0001"}
				case store.StatusRefunded:
					o.RefundedFen, o.RefundNos = o.AmountFen, []string{"RFearlier0001"}
				}
				if err := e.st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
				return o
			}
			for _, tt := range tests {
				t.Run(string(tt.status), func(t *testing.T) {
					o := order(tt.status, "oUser-any-paid-"+string(tt.status))
					n := e.buildPayment(e.paidTx(o), nil)
					status, body := e.post(n.Header, n.Body)
					got := e.order(o.OrderNo)
					if status != http.StatusNoContent || got.Status != tt.paid || !strings.HasPrefix(got.ReviewReason, tt.paidWhy) {
						t.Errorf("payment on a %s order: got HTTP %d %q, order %s %q; want 204 and %s %s",
							tt.status, status, body, got.Status, got.ReviewReason, tt.paid, tt.paidWhy)
					}
					if tt.refundWhy == "" {
						return
					}
					o = order(tt.status, "oUser-any-refunded-"+string(tt.status))
					status, body = e.postRefund(o, recorded, refundWord{"RFplatform0001", wechatpay.RefundSuccess, 1000})
					got = e.order(o.OrderNo)
					if status != http.StatusNoContent || got.Status != store.StatusNeedsReview || !strings.HasPrefix(got.ReviewReason, tt.refundWhy) {
						t.Errorf("refund of a %s order: got HTTP %d %q, order %s %q; want 204 and needs_review %s",
							tt.status, status, body, got.Status, got.ReviewReason, tt.refundWhy)
					}
				})
			}
		})
	}
}

// TestWordOnOrderInReviewReachesTheMerchant: what WeChat Pay reports about
// an order already in needs_review is recorded on it without a status
// change, and the merchant hears of it: another order.needs_review with the
// order as it now is (review_reason, transaction_id, refunded_fen; the
// re-handled refund's money is counted in TestRefundWordForOrderInReviewIsRecorded). A
// payment that arrived after a refund had put the order in review was
// audited but reached no webhook, so the merchant never learnt that money
// arrived. A copy that changes nothing sends nothing; every event has its
// own id.
func TestWordOnOrderInReviewReachesTheMerchant(t *testing.T) {
	var mu sync.Mutex
	var sent []store.Event
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Events = func(tr payments.Transition) []store.Event {
			evs := webhook.Events(tr)
			mu.Lock()
			sent = append(sent, evs...)
			mu.Unlock()
			return evs
		}
	}})
	o := e.create("oUser-review-webhook", 2) // 99.98 CNY
	tx := e.paidTx(o)
	refund := func(no string, fen int64) func() (int, string) {
		return func() (int, string) {
			return e.postRefund(o, tx.TransactionID, refundWord{no, wechatpay.RefundSuccess, fen})
		}
	}
	pay := func() (int, string) {
		n := e.buildPayment(tx, nil)
		return e.post(n.Header, n.Body)
	}
	steps := []struct {
		name string
		post func() (int, string)
		// wantNoted is in the review reason of the event; "" for none.
		wantNoted    string
		wantTxID     string
		wantRefunded int64
	}{
		{name: "refund made on the merchant platform first", post: refund("RFplatform0001", 1000), wantNoted: "refund_on_awaiting_payment"},
		{name: "then the payment", post: pay, wantNoted: "paid_while_in_review", wantTxID: tx.TransactionID},
		{name: "copy of the payment", post: pay},
		{name: "another refund", post: refund("RFplatform0002", 2000), wantNoted: "refund_not_requested", wantTxID: tx.TransactionID},
		{name: "copy of the refund", post: refund("RFplatform0002", 2000)},
	}
	ids := map[string]bool{}
	for _, st := range steps {
		mu.Lock()
		before := len(sent)
		mu.Unlock()
		if status, body := st.post(); status != http.StatusNoContent {
			t.Fatalf("%s: got %d %q; want 204", st.name, status, body)
		}
		mu.Lock()
		evs := slices.Clone(sent[before:])
		mu.Unlock()
		if st.wantNoted == "" {
			if len(evs) != 0 {
				t.Errorf("%s: changed nothing but sent %s", st.name, evs[0].Payload)
			}
			continue
		}
		if len(evs) != 1 {
			t.Fatalf("%s: %d merchant events; want 1 (order.needs_review)", st.name, len(evs))
		}
		ev := evs[0]
		got := e.order(o.OrderNo)
		body := gjson.ParseBytes(ev.Payload)
		if typ := body.Get("type").Str; typ != webhook.TypeOrderNeedsReview || ev.Key != o.OrderNo {
			t.Errorf("%s: event %s keyed %q; want %s keyed %s", st.name, typ, ev.Key, webhook.TypeOrderNeedsReview, o.OrderNo)
		}
		if r := body.Get("data.review_reason").Str; r != got.ReviewReason || !strings.Contains(r, st.wantNoted+":") {
			t.Errorf("%s: review_reason %q; want the order's %q, noting %s", st.name, r, got.ReviewReason, st.wantNoted)
		}
		if id := body.Get("data.transaction_id").Str; id != st.wantTxID {
			t.Errorf("%s: transaction_id %q; want %q", st.name, id, st.wantTxID)
		}
		if fen := body.Get("data.order.refunded_fen").Int(); fen != st.wantRefunded || body.Get("data.order.status").Str != string(store.StatusNeedsReview) {
			t.Errorf("%s: data.order %s; want needs_review with refunded_fen %d", st.name, body.Get("data.order").Raw, st.wantRefunded)
		}
		if ids[ev.ID] || body.Get("id").Str != ev.ID {
			t.Errorf("%s: event id %q (body %q) is not new", st.name, ev.ID, body.Get("id").Str)
		}
		ids[ev.ID] = true
	}
}
