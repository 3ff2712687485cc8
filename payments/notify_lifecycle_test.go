package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// outageStore refuses every order write while down, as a store that does
// not answer does (store.ErrUnavailable): nothing is written.
type outageStore struct {
	payments.Store
	down atomic.Bool
}

func (s *outageStore) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, evs ...store.Event) error {
	if s.down.Load() {
		return store.ErrUnavailable
	}
	return s.Store.UpdateOrder(ctx, o, expect, evs...)
}

func (s *outageStore) CreateOrder(ctx context.Context, o *store.Order, evs ...store.Event) error {
	if s.down.Load() {
		return store.ErrUnavailable
	}
	return s.Store.CreateOrder(ctx, o, evs...)
}

// lifecycle is an env whose transitions carry their audit records and
// merchant events as the server wires them (audit.TransitionEvents and
// webhook.Events, written atomically with each transition), kept per
// committed transition for the test to read.
type lifecycle struct {
	*env
	st *outageStore

	mu        sync.Mutex
	committed []payments.Transition
}

func newLifecycle(t *testing.T, driver string, notifyTo ...string) *lifecycle {
	t.Helper()
	l := &lifecycle{}
	l.env = newEnv(t, envOptions{driver: driver, notifyTo: strings.Join(notifyTo, ""), service: func(o *payments.Options) {
		l.st = &outageStore{Store: o.Store}
		o.Store = l.st
		o.Events = func(tr payments.Transition) []store.Event {
			return append(audit.TransitionEvents(tr), webhook.Events(tr)...)
		}
		inner := o.Committed
		o.Committed = func(tr payments.Transition) {
			l.mu.Lock()
			l.committed = append(l.committed, tr)
			l.mu.Unlock()
			inner(tr)
		}
	}})
	return l
}

// since returns the transitions of order no committed from mark on.
func (l *lifecycle) since(mark int, no string) []payments.Transition {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []payments.Transition
	for _, tr := range l.committed[mark:] {
		if tr.After.OrderNo == no {
			out = append(out, tr)
		}
	}
	return out
}

func (l *lifecycle) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.committed)
}

// want is what one notification must leave behind.
type want struct {
	status  int               // the answer WeChat Pay gets
	order   store.OrderStatus // "" when no order may exist
	reason  string            // a prefix of the order's review reason
	audit   string            // the audit action of the one transition; "" for none
	webhook string            // the merchant event of that transition; "" for none
	noteID  bool              // the audit record names the notification
	metric  map[string]string // a paygate_notifications_total series counted once
}

// check posts n and holds what follows to w.
func (l *lifecycle) check(t *testing.T, name, no string, n *wxsim.Notification, w want) {
	t.Helper()
	mark := l.mark()
	var before float64
	if w.metric != nil {
		before = l.counter("paygate_notifications_total", w.metric)
	}
	status, body := l.post(n.Header, n.Body)
	if status != w.status {
		t.Errorf("%s: answered %d %q; want %d", name, status, body, w.status)
	}
	if w.status >= 300 {
		var fail struct{ Code, Message string }
		if err := json.Unmarshal([]byte(body), &fail); err != nil || fail.Code != "FAIL" || fail.Message == "" {
			t.Errorf("%s: body %q; want {\"code\":\"FAIL\",\"message\":…}", name, body)
		}
	} else if body != "" {
		t.Errorf("%s: body %q; want none", name, body)
	}
	if w.metric != nil {
		if got := l.counter("paygate_notifications_total", w.metric); got != before+1 {
			t.Errorf("%s: paygate_notifications_total%v counted %v; want 1", name, w.metric, got-before)
		}
	}
	o, err := l.env.st.GetOrder(context.Background(), no)
	switch {
	case w.order == "" && !errors.Is(err, store.ErrNotFound):
		t.Errorf("%s: order %s is %v (%v); want none recorded", name, no, o, err)
	case w.order != "" && err != nil:
		t.Fatalf("%s: order %s: %v", name, no, err)
	case w.order != "" && (o.Status != w.order || !strings.HasPrefix(o.ReviewReason, w.reason)):
		t.Errorf("%s: order %s %q; want %s %q…", name, o.Status, o.ReviewReason, w.order, w.reason)
	}
	trs := l.since(mark, no)
	if w.audit == "" {
		if len(trs) != 0 {
			t.Errorf("%s: %d transitions (%s → %s); want none", name, len(trs), trs[0].Before.Status, trs[0].After.Status)
		}
		return
	}
	if len(trs) != 1 {
		t.Fatalf("%s: %d transitions; want 1", name, len(trs))
	}
	tr := trs[0]
	a := audit.TransitionAction(tr)
	if a.Name != w.audit || (w.noteID && a.NotificationID != gjson.GetBytes(n.Body, "id").Str) {
		t.Errorf("%s: audit %s notification_id %q; want %s naming %q", name, a.Name, a.NotificationID, w.audit, gjson.GetBytes(n.Body, "id").Str)
	}
	evs := webhook.Events(tr)
	switch {
	case w.webhook == "" && len(evs) != 0:
		t.Errorf("%s: merchant event %s; want none", name, evs[0].Payload)
	case w.webhook != "" && (len(evs) != 1 || gjson.GetBytes(evs[0].Payload, "type").Str != w.webhook):
		t.Errorf("%s: merchant events %d; want one %s", name, len(evs), w.webhook)
	}
}

// TestNotifyLifecycleAsWeChatPaySendsIt holds the notify route to how WeChat
// Pay really behaves: copies of one notification (WeChat Pay retries until
// it gets 200/204, and copies may arrive over two links), a payment that
// disagrees with the order, a payment after paygate expired the order, a
// payment of an order paygate does not know (another system on the same
// merchant id, whose numbers use characters paygate's do not), a refund's
// word before the payment's, a trade_state other than SUCCESS, a key
// paygate does not hold, a timestamp far off, and a store that cannot
// record: each through the real HTTP route, signed as WeChat Pay signs,
// asserting the answer, the order, its audit record and the merchant event.
func TestNotifyLifecycleAsWeChatPaySendsIt(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			l := newLifecycle(t, driver)
			ctx := context.Background()
			applied := func(event, outcome, reason string) map[string]string {
				return map[string]string{"event": event, "outcome": outcome, "reason": reason}
			}
			pay := wechatpay.EventTransactionSuccess

			t.Run("copies", func(t *testing.T) {
				o := l.create("oUser-life-copies", 1)
				n := l.buildPayment(l.paidTx(o), nil)
				l.check(t, "first", o.OrderNo, n, want{status: 204, order: store.StatusPaid, audit: "order.paid", webhook: webhook.TypeOrderPaid, noteID: true,
					metric: applied(pay, "applied", "ok")})
				l.check(t, "same bytes again", o.OrderNo, n, want{status: 204, order: store.StatusPaid, metric: applied(pay, "duplicate", "replay")})
				// WeChat Pay's retry: the same id, signed again.
				again := l.buildPayment(l.paidTx(o), func(s *wxsim.NotificationSpec) { s.ID = gjson.GetBytes(n.Body, "id").Str })
				l.check(t, "retry", o.OrderNo, again, want{status: 204, order: store.StatusPaid, metric: applied(pay, "duplicate", "replay")})
			})

			t.Run("amount disagrees", func(t *testing.T) {
				o := l.create("oUser-life-amount", 1)
				tx := l.paidTx(o)
				tx.Amount.Total, tx.Amount.PayerTotal = 1, 1
				n := l.buildPayment(tx, nil)
				l.check(t, "payment", o.OrderNo, n, want{status: 204, order: store.StatusNeedsReview, reason: "amount_mismatch",
					audit: "order.needs_review", webhook: webhook.TypeOrderNeedsReview, noteID: true, metric: applied(pay, "review", "amount_mismatch")})
				l.check(t, "copy", o.OrderNo, n, want{status: 204, order: store.StatusNeedsReview, reason: "amount_mismatch"})
			})

			t.Run("paid after expiry", func(t *testing.T) {
				o := l.create("oUser-life-late", 1)
				tx := l.paidTx(o) // paid at the last second, its word late
				l.clock.Advance(payments.DefaultOrderTTL + time.Minute)
				if _, err := l.svc.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
				l.clock.Advance(-(payments.DefaultOrderTTL + time.Minute))
				if s := l.order(o.OrderNo).Status; s != store.StatusExpired {
					t.Fatalf("after the sweep: %s; want expired", s)
				}
				n := l.buildPayment(tx, nil)
				l.check(t, "late payment", o.OrderNo, n, want{status: 204, order: store.StatusNeedsReview, reason: "paid_after_expired",
					audit: "order.needs_review", webhook: webhook.TypeOrderNeedsReview, noteID: true, metric: applied(pay, "review", "paid_after_expired")})
				l.check(t, "copy", o.OrderNo, n, want{status: 204, order: store.StatusNeedsReview, reason: "paid_after_expired"})
			})

			t.Run("order of another system", func(t *testing.T) {
				ghost := &store.Order{OrderNo: "ERP|2026*000017-a_b", AppID: l.sim.AppID(), User: "oGhost", AmountFen: 1234}
				n := l.buildPayment(l.paidTx(ghost), nil)
				l.check(t, "payment", ghost.OrderNo, n, want{status: 204, order: store.StatusNeedsReview, reason: "unknown_order",
					audit: "payment.orphan", webhook: webhook.TypeOrderNeedsReview, noteID: true, metric: applied(pay, "orphan", "unknown_order")})
				l.check(t, "copy", ghost.OrderNo, n, want{status: 204, order: store.StatusNeedsReview, reason: "unknown_order"})
			})

			t.Run("refund before payment", func(t *testing.T) {
				o := l.create("oUser-life-refund-first", 1)
				tx := l.paidTx(o)
				res := wxsim.RefundResource{MchID: l.sim.MchID(), TransactionID: tx.TransactionID, OutTradeNo: o.OrderNo,
					RefundID: "50" + strings.Repeat("3", 27), OutRefundNo: "RFmerchant0001", RefundStatus: wechatpay.RefundSuccess}
				res.Amount.Total, res.Amount.Refund, res.Amount.PayerTotal, res.Amount.PayerRefund = o.AmountFen, o.AmountFen, o.AmountFen, o.AmountFen
				rn, err := l.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventRefundSuccess, Summary: "退款成功", OriginalType: "refund", Resource: res})
				if err != nil {
					t.Fatal(err)
				}
				l.check(t, "refund", o.OrderNo, rn, want{status: 204, order: store.StatusNeedsReview, reason: "refund_on_awaiting_payment",
					audit: "order.needs_review", webhook: webhook.TypeOrderNeedsReview, noteID: true})
				l.check(t, "payment", o.OrderNo, l.buildPayment(tx, nil), want{status: 204, order: store.StatusNeedsReview, reason: "refund_on_awaiting_payment",
					audit: "order.updated", webhook: webhook.TypeOrderNeedsReview, noteID: true, metric: applied(pay, "review", "paid_while_in_review")})
			})

			t.Run("not SUCCESS", func(t *testing.T) {
				o := l.create("oUser-life-notpay", 1)
				tx := l.paidTx(o)
				tx.TradeState, tx.TransactionID, tx.SuccessTime = "NOTPAY", "", ""
				l.check(t, "NOTPAY", o.OrderNo, l.buildPayment(tx, nil), want{status: 204, order: store.StatusAwaitingPayment, metric: applied(pay, "ignored", "trade_state")})
			})

			t.Run("refused", func(t *testing.T) {
				o := l.create("oUser-life-refused", 1)
				tx := l.paidTx(o)
				for _, c := range []struct {
					name   string
					edit   func(*wxsim.NotificationSpec)
					reason string
				}{
					{"unknown serial", func(s *wxsim.NotificationSpec) { s.Serial = "PUB_KEY_ID_0114232000000000000000000000" }, "unknown_serial"},
					{"timestamp 6 minutes old", func(s *wxsim.NotificationSpec) { s.Timestamp = time.Now().Add(-6 * time.Minute) }, "stale_timestamp"},
					{"timestamp 6 minutes ahead", func(s *wxsim.NotificationSpec) { s.Timestamp = time.Now().Add(6 * time.Minute) }, "stale_timestamp"},
				} {
					l.check(t, c.name, o.OrderNo, l.buildPayment(tx, c.edit), want{status: 401, order: store.StatusAwaitingPayment,
						metric: map[string]string{"outcome": "rejected", "reason": c.reason}})
				}
			})

			t.Run("store down", func(t *testing.T) {
				o := l.create("oUser-life-outage", 1)
				ghost := &store.Order{OrderNo: "PGghostoutage0000001", AppID: l.sim.AppID(), User: "oGhost", AmountFen: 500}
				n, gn := l.buildPayment(l.paidTx(o), nil), l.buildPayment(l.paidTx(ghost), nil)
				l.st.down.Store(true)
				l.check(t, "payment", o.OrderNo, n, want{status: 500, order: store.StatusAwaitingPayment, metric: applied(pay, "error", "store_unavailable")})
				l.check(t, "orphan", ghost.OrderNo, gn, want{status: 500, metric: applied(pay, "error", "store_unavailable")})
				l.st.down.Store(false)
				l.check(t, "payment retried", o.OrderNo, n, want{status: 204, order: store.StatusPaid, audit: "order.paid", webhook: webhook.TypeOrderPaid, noteID: true})
				l.check(t, "orphan retried", ghost.OrderNo, gn, want{status: 204, order: store.StatusNeedsReview, reason: "unknown_order",
					audit: "payment.orphan", webhook: webhook.TypeOrderNeedsReview, noteID: true})
			})
		})
	}
}

// TestCloseRacingAPaymentAgreesWithWeChatPay: a close (a user's switch of
// pay method, or the expiry sweep) and the payer's payment of the same
// order race; WeChat Pay takes one of them. Whichever wins, paygate ends
// where WeChat Pay is, on both drivers: paid (with one order.paid) when the
// payment won, its notification a duplicate or the transition itself;
// closed or expired when the close won; never closed here on money
// WeChat Pay took.
func TestCloseRacingAPaymentAgreesWithWeChatPay(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			l := newLifecycle(t, driver)
			ctx := context.Background()
			won := map[string]int{}
			for i := range 12 {
				expiry := i%2 == 1
				o := l.create(fmt.Sprintf("oUser-race-%d", i), 1)
				mark := l.mark()
				var wg sync.WaitGroup
				var payErr, closeErr error
				var d *wxsim.Delivery
				start := make(chan struct{})
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					d, payErr = l.sim.Pay(ctx, o.OrderNo)
				}()
				go func() {
					defer wg.Done()
					<-start
					if expiry {
						_, closeErr = l.svc.Sweep(ctx)
						return
					}
					_, closeErr = l.svc.CloseOrder(ctx, o.OrderNo)
				}()
				if expiry {
					// Past its deadline for paygate only: the payer still
					// pays at WeChat Pay (the sweep's own clock moved).
					l.clock.Advance(payments.DefaultOrderTTL + time.Minute)
				}
				close(start)
				wg.Wait()
				if expiry {
					l.clock.Advance(-(payments.DefaultOrderTTL + time.Minute))
				}
				tx, _ := l.sim.Order(o.OrderNo)
				won[tx.TradeState]++
				got := l.order(o.OrderNo)
				paid := 0
				for _, tr := range l.since(mark, o.OrderNo) {
					if evs := webhook.Events(tr); len(evs) == 1 && gjson.GetBytes(evs[0].Payload, "type").Str == webhook.TypeOrderPaid {
						paid++
					}
				}
				switch tx.TradeState {
				case "SUCCESS":
					if payErr != nil {
						t.Fatalf("%d: payment won but answered %v", i, payErr)
					}
					if !d.Acked && expiry {
						// Signed by WeChat Pay's clock, hours before paygate's
						// moved one: refused as stale. Its retry comes.
						n := l.buildPayment(tx, func(s *wxsim.NotificationSpec) { s.ID = d.ID })
						if status, body := l.post(n.Header, n.Body); status != 204 {
							t.Errorf("%d: the retry of the payment's notification: got %d %q; want 204", i, status, body)
						}
					} else if !d.Acked {
						t.Errorf("%d: payment won but its notification was not acknowledged: %+v", i, d)
					}
					got = l.order(o.OrderNo)
					paid = 0
					for _, tr := range l.since(mark, o.OrderNo) {
						if evs := webhook.Events(tr); len(evs) == 1 && gjson.GetBytes(evs[0].Payload, "type").Str == webhook.TypeOrderPaid {
							paid++
						}
					}
					if got.Status != store.StatusPaid || paid != 1 {
						t.Errorf("%d: wechat pay took the money; paygate has %s with %d order.paid (close: %v); want paid, once", i, got.Status, paid, closeErr)
					}
				case "CLOSED":
					if !errors.Is(payErr, wxsim.ErrNotPayable) {
						t.Errorf("%d: closed at wechat pay, yet the payment answered %v", i, payErr)
					}
					if got.Status != store.StatusClosed && got.Status != store.StatusExpired {
						t.Errorf("%d: closed at wechat pay; paygate has %s", i, got.Status)
					}
				default:
					t.Errorf("%d: wechat pay has %s; want SUCCESS or CLOSED (pay %v, close %v)", i, tx.TradeState, payErr, closeErr)
				}
			}
			t.Logf("won at wechat pay: %v", won)
		})
	}
}

// refundNote is WeChat Pay's REFUND.* notification of refund outRefundNo of
// order o, of fen, in status (SUCCESS, CLOSED or ABNORMAL).
// confirmRefund proposes a refund of fen on o and confirms it as the user
// does, returning its out_refund_no.
func (l *lifecycle) confirmRefund(t *testing.T, o *store.Order, fen int64) string {
	t.Helper()
	p := propose(t, l.env, o, fen)
	if _, err := l.svc.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); err != nil {
		t.Fatal(err)
	}
	return p.OutRefundNo
}

// refundNote builds WeChat Pay's REFUND.* notification of fen of order o
// under outRefundNo; edit, when given, changes its resource first.
func (l *lifecycle) refundNote(t *testing.T, o *store.Order, outRefundNo, status string, fen int64, edit ...func(*wxsim.RefundResource)) *wxsim.Notification {
	t.Helper()
	res := wxsim.RefundResource{MchID: l.sim.MchID(), TransactionID: o.TransactionID, OutTradeNo: o.OrderNo,
		RefundID: "50" + strings.Repeat("4", 27), OutRefundNo: outRefundNo, RefundStatus: status, UserReceivedAccount: "支付用户零钱"}
	res.Amount.Total, res.Amount.Refund, res.Amount.PayerTotal, res.Amount.PayerRefund = o.AmountFen, fen, o.AmountFen, fen
	for _, e := range edit {
		e(&res)
	}
	n, err := l.sim.BuildNotification(wxsim.NotificationSpec{EventType: refundWord{outRefundNo, status, fen}.event(), Summary: "退款", OriginalType: "refund", Resource: res})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRefundNotificationsAsWeChatPaySendsThem holds the REFUND.* side of the
// notify route to WeChat Pay's behaviour on both drivers: the user's
// confirmed refund settled by its notification (and by nothing else: its
// copies change nothing), a refund WeChat Pay closed, one it reports
// ABNORMAL (money stuck: a person acts), and a refund nobody at paygate
// asked for (the merchant platform), each asserting the answer, the order,
// its audit record and the merchant event.
func TestRefundNotificationsAsWeChatPaySendsThem(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			l := newLifecycle(t, driver)
			confirm := func(o *store.Order, fen int64) string {
				t.Helper()
				no := l.confirmRefund(t, o, fen)
				if s := l.order(o.OrderNo).Status; s != store.StatusRefunding {
					t.Fatalf("after the confirmation: %s; want refunding (WeChat Pay holds it PROCESSING)", s)
				}
				return no
			}
			refund := func(event, outcome, reason string) map[string]string {
				return map[string]string{"event": event, "outcome": outcome, "reason": reason}
			}

			o := paidOrder(t, l.env, "oUser-life-refunds", 2) // 99.98 CNY, refunded 10.00, 15.00, 12.00 (10.00 again would be the first asked again)
			first := confirm(o, 1000)
			ok := l.refundNote(t, o, first, wechatpay.RefundSuccess, 1000)
			l.check(t, "refund succeeded", o.OrderNo, ok, want{status: 204, order: store.StatusPartiallyRefunded,
				audit: "refund.succeeded", webhook: webhook.TypeRefundSucceeded, noteID: true, metric: refund(wechatpay.EventRefundSuccess, "applied", "ok")})
			l.check(t, "its copy", o.OrderNo, ok, want{status: 204, order: store.StatusPartiallyRefunded, metric: refund(wechatpay.EventRefundSuccess, "duplicate", "replay")})

			second := confirm(o, 1500)
			l.check(t, "the first's copy while the second is in flight", o.OrderNo, l.refundNote(t, o, first, wechatpay.RefundSuccess, 1000),
				want{status: 204, order: store.StatusRefunding, metric: refund(wechatpay.EventRefundSuccess, "duplicate", "ok")})
			closed := l.refundNote(t, o, second, wechatpay.RefundClosed, 1500)
			l.check(t, "refund closed", o.OrderNo, closed, want{status: 204, order: store.StatusPartiallyRefunded,
				audit: "refund.failed", webhook: webhook.TypeRefundFailed, noteID: true, metric: refund(wechatpay.EventRefundClosed, "applied", "ok")})
			l.check(t, "its copy", o.OrderNo, closed, want{status: 204, order: store.StatusPartiallyRefunded})
			if got := l.order(o.OrderNo); got.RefundedFen != 1000 {
				t.Errorf("refunded_fen %d; want 1000 (the closed refund moved nothing)", got.RefundedFen)
			}

			third := confirm(o, 1200)
			stuck := l.refundNote(t, o, third, wechatpay.RefundAbnormal, 1200)
			l.check(t, "refund abnormal", o.OrderNo, stuck, want{status: 204, order: store.StatusNeedsReview, reason: "refund_abnormal",
				audit: "order.needs_review", webhook: webhook.TypeOrderNeedsReview, noteID: true, metric: refund(wechatpay.EventRefundAbnormal, "review", "refund_abnormal")})
			l.check(t, "its copy", o.OrderNo, stuck, want{status: 204, order: store.StatusNeedsReview, reason: "refund_abnormal"})

			other := paidOrder(t, l.env, "oUser-life-platform-refund", 1)
			platform := l.refundNote(t, other, "RFplatform7777", wechatpay.RefundSuccess, other.AmountFen)
			l.check(t, "refund made on the merchant platform", other.OrderNo, platform, want{status: 204, order: store.StatusNeedsReview, reason: "refund_not_requested",
				audit: "order.needs_review", webhook: webhook.TypeOrderNeedsReview, noteID: true, metric: refund(wechatpay.EventRefundSuccess, "review", "refund_not_requested")})
			l.check(t, "its copy", other.OrderNo, platform, want{status: 204, order: store.StatusNeedsReview, reason: "refund_not_requested"})
		})
	}
}

// TestRefundNotificationThatDisagreesWithTheOrderGoesToReview: the
// SUCCESS of the user's confirmed refund, in flight, from another merchant
// or naming another order total than the record's, is WeChat Pay's word
// about real money that contradicts the record (SPEC 2.4): acknowledged
// (204), the order to needs_review with the field named, one audit record
// and one order.needs_review, nothing counted as refunded; its copy
// changes nothing. So too on an order already in review with that refund
// open (WeChat Pay reported it ABNORMAL first): noted in the review
// reason, not counted as refunded while in review. On both drivers.
func TestRefundNotificationThatDisagreesWithTheOrderGoesToReview(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			l := newLifecycle(t, driver)
			for _, c := range []struct {
				name, reason string
				edit         func(*wxsim.RefundResource)
			}{
				{"another merchant", "mchid_mismatch", func(r *wxsim.RefundResource) { r.MchID = "1900009999" }},
				{"another order total", "amount_mismatch", func(r *wxsim.RefundResource) { r.Amount.Total, r.Amount.PayerTotal = 1, 1 }},
			} {
				for _, inReview := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/in review %v", c.name, inReview), func(t *testing.T) {
						o := paidOrder(t, l.env, fmt.Sprintf("oUser-life-refund-%s-%v", strings.ReplaceAll(c.name, " ", "-"), inReview), 1)
						no := l.confirmRefund(t, o, 0)
						w := want{status: 204, order: store.StatusNeedsReview, reason: c.reason, audit: "order.needs_review",
							webhook: webhook.TypeOrderNeedsReview, noteID: true,
							metric: map[string]string{"event": wechatpay.EventRefundSuccess, "outcome": "review", "reason": c.reason}}
						if inReview {
							l.check(t, "abnormal", o.OrderNo, l.refundNote(t, o, no, wechatpay.RefundAbnormal, o.AmountFen),
								want{status: 204, order: store.StatusNeedsReview, reason: "refund_abnormal", audit: "order.needs_review",
									webhook: webhook.TypeOrderNeedsReview, noteID: true})
							w.reason, w.audit = "refund_abnormal", "order.updated"
						}
						n := l.refundNote(t, o, no, wechatpay.RefundSuccess, o.AmountFen, c.edit)
						l.check(t, "refund", o.OrderNo, n, w)
						l.check(t, "its copy", o.OrderNo, n, want{status: 204, order: store.StatusNeedsReview, reason: w.reason})
						got := l.order(o.OrderNo)
						if got.RefundedFen != 0 || len(got.RefundNos) != 0 {
							t.Errorf("refunded_fen %d, refund_nos %v; want nothing counted", got.RefundedFen, got.RefundNos)
						}
						if !strings.Contains(got.ReviewReason, c.reason+": wechat pay refund "+no+" (SUCCESS)") {
							t.Errorf("review reason %q; want the refund's SUCCESS noted as %s", got.ReviewReason, c.reason)
						}
					})
				}
			}
		})
	}
}

// TestNotificationWithoutItsNumbersChangesNothing: a notification signed
// and decrypted as WeChat Pay's whose resource is not a transaction or a
// refund paygate can place (no out_trade_no, a refund without its
// out_refund_no, not an object) is answered 500 FAIL with an alert, so
// WeChat Pay retries while a person looks, and nothing is recorded: no
// orphan under an empty number, and the refund in flight of the order it
// does name is not sent to review as a refund nobody asked for. On both
// drivers.
func TestNotificationWithoutItsNumbersChangesNothing(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			l := newLifecycle(t, driver)
			o := paidOrder(t, l.env, "oUser-life-numberless", 1)
			l.confirmRefund(t, o, 0)
			refund := func(edit func(map[string]any)) any {
				r := map[string]any{"mchid": l.sim.MchID(), "transaction_id": o.TransactionID, "out_trade_no": o.OrderNo,
					"refund_id": "50" + strings.Repeat("5", 27), "out_refund_no": "RF" + strings.Repeat("5", 24), "refund_status": wechatpay.RefundSuccess,
					"amount": map[string]any{"total": o.AmountFen, "refund": o.AmountFen, "payer_total": o.AmountFen, "payer_refund": o.AmountFen}}
				edit(r)
				return r
			}
			for _, c := range []struct {
				name, event, order string
				resource           any
			}{
				{"payment without out_trade_no", wechatpay.EventTransactionSuccess, "", map[string]any{"mchid": l.sim.MchID(), "appid": l.sim.AppID(),
					"transaction_id": "4200000000" + strings.Repeat("7", 18), "trade_state": wechatpay.TradeSuccess, "trade_type": "JSAPI",
					"amount": map[string]any{"total": 4999, "currency": "CNY"}}},
				{"payment resource not an object", wechatpay.EventTransactionSuccess, "", "a transaction"},
				{"refund without out_refund_no", wechatpay.EventRefundSuccess, o.OrderNo, refund(func(r map[string]any) { delete(r, "out_refund_no") })},
				{"refund without out_trade_no", wechatpay.EventRefundSuccess, "", refund(func(r map[string]any) { delete(r, "out_trade_no") })},
			} {
				n, err := l.sim.BuildNotification(wxsim.NotificationSpec{EventType: c.event, Summary: "…", OriginalType: "refund", Resource: c.resource})
				if err != nil {
					t.Fatal(err)
				}
				alerts := strings.Count(l.logs.String(), "resource is not a")
				w := want{status: 500, metric: map[string]string{"event": c.event, "outcome": "error", "reason": "bad_resource"}}
				if c.order != "" {
					w.order = store.StatusRefunding
				}
				l.check(t, c.name, c.order, n, w)
				if got := strings.Count(l.logs.String(), "resource is not a"); got != alerts+1 {
					t.Errorf("%s: %d alerts; want 1", c.name, got-alerts)
				}
			}
		})
	}
}

// TestPaymentWithoutNotificationIsFound: WeChat Pay's notification never
// reaches paygate (its notify route unreachable for every attempt). The
// sweep's active query finds the payment: the order is paid with its
// audit record (cause sweep, no notification id) and one order.paid; the
// notification WeChat Pay sends again later is acknowledged and changes
// nothing. On both drivers.
func TestPaymentWithoutNotificationIsFound(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			l := newLifecycle(t, driver, "sink")
			ctx := context.Background()
			o := l.create("oUser-life-unheard", 1)
			d, err := l.sim.Pay(ctx, o.OrderNo)
			if err != nil || d.Acked {
				t.Fatalf("delivery to the unreachable route: %+v, %v; want not acknowledged", d, err)
			}
			mark := l.mark()
			l.clock.Advance(payments.DefaultActiveQueryAfter + time.Second)
			if _, err := l.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			l.clock.Advance(-(payments.DefaultActiveQueryAfter + time.Second))
			trs := l.since(mark, o.OrderNo)
			if got := l.order(o.OrderNo); got.Status != store.StatusPaid || len(trs) != 1 {
				t.Fatalf("after the sweep: %s with %d transitions; want paid, once", got.Status, len(trs))
			}
			a := audit.TransitionAction(trs[0])
			if a.Name != "order.paid" || a.Cause != "sweep" || a.NotificationID != "" || a.TransactionID == "" {
				t.Errorf("audit: %s cause %s notification %q transaction %q; want order.paid by the sweep with the transaction", a.Name, a.Cause, a.NotificationID, a.TransactionID)
			}
			if evs := webhook.Events(trs[0]); len(evs) != 1 || gjson.GetBytes(evs[0].Payload, "type").Str != webhook.TypeOrderPaid {
				t.Errorf("merchant events %d; want one order.paid", len(evs))
			}
			tx, _ := l.sim.Order(o.OrderNo)
			late := l.buildPayment(tx, func(s *wxsim.NotificationSpec) { s.ID = d.ID })
			l.check(t, "the notification at last", o.OrderNo, late, want{status: 204, order: store.StatusPaid,
				metric: map[string]string{"event": wechatpay.EventTransactionSuccess, "outcome": "duplicate", "reason": "ok"}})
		})
	}
}
