package payments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

func TestNotifyValidPaysOnce(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			o := e.create("oUser-valid", 1)
			d, err := e.sim.Pay(context.Background(), o.OrderNo)
			if err != nil {
				t.Fatalf("pay: %v", err)
			}
			if !d.Acked || d.Attempts != 1 || d.LastStatus != http.StatusNoContent {
				t.Fatalf("delivery: got %+v; want acknowledged with 204 at the first attempt", d)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusPaid || got.TransactionID == "" || got.PaidAt.IsZero() {
				t.Errorf("order: got %s txid=%q; want paid with a transaction id", got.Status, got.TransactionID)
			}
			if n := e.counter("paygate_order_transitions_total", map[string]string{"to": "paid"}); n != 1 {
				t.Errorf("transitions to paid: got %v; want 1", n)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"outcome": "applied", "event": wechatpay.EventTransactionSuccess}); n != 1 {
				t.Errorf("applied notifications: got %v; want 1", n)
			}
			// WeChat retries the same notification later: nothing changes.
			tx, _ := e.sim.Order(o.OrderNo)
			n := e.buildPayment(tx, nil)
			status, body := e.post(n.Header, n.Body)
			if status != http.StatusNoContent || body != "" {
				t.Errorf("repeat: got %d %q; want 204 empty", status, body)
			}
			if again := e.order(o.OrderNo); again.Version != got.Version {
				t.Errorf("repeat changed the order: version %d -> %d", got.Version, again.Version)
			}
		})
	}
}

func TestNotifyConcurrentCopiesOneTransition(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			o := e.create("oUser-concurrent", 1)
			n := e.buildPayment(e.paidTx(o), nil)
			const copies = 10
			statuses := make([]int, copies)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range copies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					statuses[i], _ = e.post(n.Header, n.Body)
				}()
			}
			close(start)
			wg.Wait()
			for i, s := range statuses {
				if s != http.StatusNoContent {
					t.Errorf("copy %d: got %d; want 204", i, s)
				}
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusPaid {
				t.Fatalf("order: got %s; want paid", got.Status)
			}
			if got.Version != o.Version+1 {
				t.Errorf("version: got %d; want %d (exactly one write)", got.Version, o.Version+1)
			}
			if n := e.counter("paygate_order_transitions_total", map[string]string{"to": "paid"}); n != 1 {
				t.Errorf("transitions to paid: got %v; want 1", n)
			}
			applied := e.counter("paygate_notifications_total", map[string]string{"outcome": "applied"})
			dup := e.counter("paygate_notifications_total", map[string]string{"outcome": "duplicate"})
			if applied != 1 || dup != copies-1 {
				t.Errorf("outcomes: applied %v duplicate %v; want 1 and %d", applied, dup, copies-1)
			}
		})
	}
}

func TestNotifyRejectsUnauthentic(t *testing.T) {
	e := newEnv(t, envOptions{})
	o := e.create("oUser-reject", 1)
	tx := e.paidTx(o)
	tests := []struct {
		name   string
		make   func() (http.Header, []byte)
		status int
		reason string
	}{
		{name: "tampered body", status: 401, reason: "bad_signature", make: func() (http.Header, []byte) {
			n := e.buildPayment(tx, nil)
			return n.Header, []byte(strings.Replace(string(n.Body), `"summary":"`, `"summary":"x`, 1))
		}},
		{name: "wrong signature", status: 401, reason: "bad_signature", make: func() (http.Header, []byte) {
			n, other := e.buildPayment(tx, nil), e.buildPayment(tx, nil)
			n.Header.Set("Wechatpay-Signature", other.Header.Get("Wechatpay-Signature"))
			return n.Header, n.Body
		}},
		{name: "unknown serial", status: 401, reason: "unknown_serial", make: func() (http.Header, []byte) {
			n := e.buildPayment(tx, func(s *wxsim.NotificationSpec) { s.Serial = "PUB_KEY_ID_0000000000000000000000000000" })
			return n.Header, n.Body
		}},
		{name: "stale timestamp", status: 401, reason: "stale_timestamp", make: func() (http.Header, []byte) {
			n := e.buildPayment(tx, func(s *wxsim.NotificationSpec) { s.Timestamp = time.Now().Add(-10 * time.Minute) })
			return n.Header, n.Body
		}},
		{name: "no signature headers", status: 401, reason: "missing_headers", make: func() (http.Header, []byte) {
			n := e.buildPayment(tx, nil)
			return http.Header{"Content-Type": {"application/json"}}, n.Body
		}},
		{name: "signed but not decryptable", status: 500, reason: "decrypt_failed", make: func() (http.Header, []byte) {
			n := e.buildPayment(tx, func(s *wxsim.NotificationSpec) { s.APIv3Key = strings.Repeat("w", 32) })
			return n.Header, n.Body
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := tt.make()
			status, resp := e.post(h, body)
			if status != tt.status {
				t.Errorf("status: got %d; want %d", status, tt.status)
			}
			var fail struct{ Code, Message string }
			if err := json.Unmarshal([]byte(resp), &fail); err != nil || fail.Code != "FAIL" || fail.Message == "" {
				t.Errorf("body: got %q; want {\"code\":\"FAIL\",\"message\":…}", resp)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusAwaitingPayment || got.Version != o.Version {
				t.Errorf("order changed: %s v%d; want awaiting_payment v%d", got.Status, got.Version, o.Version)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"reason": tt.reason}); n < 1 {
				t.Errorf("metric with reason %q: got %v; want ≥1", tt.reason, n)
			}
			if !strings.Contains(e.logs.String(), tt.reason) && !strings.Contains(e.logs.String(), "does not decrypt") {
				t.Errorf("no log line names %q", tt.reason)
			}
		})
	}
	if !strings.Contains(e.logs.String(), `"alert":true`) {
		t.Errorf("undecryptable notification raised no alert in the log")
	}
	if n := e.counter("paygate_order_transitions_total", map[string]string{"to": "paid"}); n != 0 {
		t.Errorf("transitions to paid: got %v; want 0", n)
	}
}

func TestNotifyInconsistentGoesToReview(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tests := []struct {
				name   string
				edit   func(*wxsim.Transaction)
				reason string
			}{
				{name: "amount mismatch", reason: "amount_mismatch", edit: func(tx *wxsim.Transaction) { tx.Amount.Total = 1 }},
				{name: "mchid mismatch", reason: "mchid_mismatch", edit: func(tx *wxsim.Transaction) { tx.MchID = "1900009999" }},
				{name: "appid mismatch", reason: "appid_mismatch", edit: func(tx *wxsim.Transaction) { tx.AppID = "wx0000000000000000" }},
			}
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					o := e.create("oUser-review-"+string(rune('a'+i)), 1)
					tx := e.paidTx(o)
					tt.edit(&tx)
					n := e.buildPayment(tx, nil)
					for range 2 { // a retry of the same changes nothing more
						if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent || body != "" {
							t.Fatalf("got %d %q; want 204 (acknowledged)", status, body)
						}
					}
					got := e.order(o.OrderNo)
					if got.Status != store.StatusNeedsReview || !strings.HasPrefix(got.ReviewReason, tt.reason) {
						t.Errorf("order: got %s %q; want needs_review %s", got.Status, got.ReviewReason, tt.reason)
					}
					if got.Version != o.Version+1 {
						t.Errorf("version: got %d; want %d", got.Version, o.Version+1)
					}
					if n := e.counter("paygate_notifications_total", map[string]string{"outcome": "review", "reason": tt.reason}); n != 1 {
						t.Errorf("review metric: got %v; want 1", n)
					}
					if !strings.Contains(e.logs.String(), tt.reason) {
						t.Errorf("no log line names %q", tt.reason)
					}
				})
			}
			if n := e.counter("paygate_order_transitions_total", map[string]string{"to": "paid"}); n != 0 {
				t.Errorf("transitions to paid: got %v; want 0", n)
			}
		})
	}
}

// TestNotifyRefusedTransitionAlerts: a verified notification the state
// machine will not let paygate record (every status has an edge to
// needs_review, so only a bug gets here) is WeChat Pay's word about money
// going unrecorded while WeChat Pay retries: it answers 500 FAIL, changes
// nothing, and raises an alert naming the order and the fact, not the
// passing store_error of a store that did not answer.
func TestNotifyRefusedTransitionAlerts(t *testing.T) {
	payments.DropTransition(t, store.StatusAwaitingPayment, store.StatusNeedsReview)
	e := newEnv(t, envOptions{})
	tests := []struct {
		name  string
		post  func(o *store.Order) (int, string)
		event string
		fact  map[string]any // what the alert must name
	}{
		{name: "payment", event: wechatpay.EventTransactionSuccess,
			post: func(o *store.Order) (int, string) {
				tx := e.paidTx(o)
				tx.Amount.Total = 1 // a disagreement: the order goes to review
				n := e.buildPayment(tx, nil)
				return e.post(n.Header, n.Body)
			},
			fact: map[string]any{"transaction_id": "4200001234" + strings.Repeat("7", 18), "total_fen": float64(1)}},
		{name: "refund", event: wechatpay.EventRefundSuccess,
			post: func(o *store.Order) (int, string) {
				return e.postRefund(o, "", refundWord{"RFplatform0001", wechatpay.RefundSuccess, 1000})
			},
			fact: map[string]any{"out_refund_no": "RFplatform0001", "refund_status": wechatpay.RefundSuccess, "refund_fen": float64(1000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := e.create("oUser-refused-"+tt.name, 1)
			status, body := tt.post(o)
			if status != http.StatusInternalServerError || !strings.Contains(body, `"code":"FAIL"`) {
				t.Errorf("got %d %q; want 500 FAIL so WeChat Pay retries", status, body)
			}
			if got := e.order(o.OrderNo); got.Version != o.Version || got.Status != o.Status {
				t.Errorf("order changed: %s v%d; want %s v%d", got.Status, got.Version, o.Status, o.Version)
			}
			labels := map[string]string{"event": tt.event, "outcome": "error", "reason": "transition_refused"}
			if n := e.counter("paygate_notifications_total", labels); n != 1 {
				t.Errorf("counted %v %v; want 1", labels, n)
			}
			var alert map[string]any
			for _, line := range strings.Split(e.logs.String(), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil && rec["alert"] == true && rec["order_no"] == o.OrderNo &&
					strings.Contains(fmt.Sprint(rec["msg"]), "not recorded") {
					alert = rec
				}
			}
			if alert == nil {
				t.Fatalf("no alert names order %s; log:\n%s", o.OrderNo, e.logs.String())
			}
			if alert["level"] != "ERROR" || alert["event"] != tt.event {
				t.Errorf("alert %v; want level ERROR and event %s", alert, tt.event)
			}
			for k, v := range tt.fact {
				if alert[k] != v {
					t.Errorf("alert %s = %v; want %v", k, alert[k], v)
				}
			}
		})
	}
}

func TestNotifyUnknownOrderRecordsOrphan(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ghost := &store.Order{OrderNo: "PGghost0000000000001", AppID: e.sim.AppID(), User: "oGhost", AmountFen: 777}
			n := e.buildPayment(e.paidTx(ghost), nil)
			for range 3 {
				if status, _ := e.post(n.Header, n.Body); status != http.StatusNoContent {
					t.Fatalf("got %d; want 204", status)
				}
			}
			got := e.order(ghost.OrderNo)
			if got.Status != store.StatusNeedsReview || got.AmountFen != 777 || !strings.HasPrefix(got.ReviewReason, "unknown_order") || got.TransactionID == "" {
				t.Errorf("orphan: got %+v", got)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"outcome": "orphan", "reason": "unknown_order"}); n != 1 {
				t.Errorf("orphan metric: got %v; want 1", n)
			}
			if !strings.Contains(e.logs.String(), "unknown order") {
				t.Errorf("no log line about the unknown order")
			}
		})
	}
}

func TestNotifyRefund(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	o := e.create("oUser-refund", 2) // 99.98 CNY
	if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
		t.Fatal(err)
	}
	// The user confirms a proposal (the order goes refunding and WeChat Pay
	// is asked); the notification settles it.
	confirm := func(fen int64) string {
		t.Helper()
		p, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "changed my mind", AmountFen: fen})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
			t.Fatal(err)
		}
		return p.OutRefundNo
	}
	complete := func(outRefundNo string) {
		t.Helper()
		d, err := e.sim.CompleteRefund(ctx, outRefundNo)
		if err != nil || !d.Acked {
			t.Fatalf("refund delivery: got %+v, %v", d, err)
		}
	}
	first := confirm(4999)
	complete(first)
	got := e.order(o.OrderNo)
	if got.Status != store.StatusPartiallyRefunded || got.RefundedFen != 4999 {
		t.Fatalf("after the first refund: got %s %d; want partially_refunded 4999", got.Status, got.RefundedFen)
	}
	// A late copy of that refund's notification changes nothing, also while
	// the next refund is in flight.
	rf, _ := e.sim.Refund(first)
	res := wxsim.RefundResource{MchID: e.sim.MchID(), TransactionID: rf.TransactionID, OutTradeNo: rf.OutTradeNo,
		RefundID: rf.RefundID, OutRefundNo: rf.OutRefundNo, RefundStatus: "SUCCESS", SuccessTime: rf.SuccessTime}
	res.Amount.Total, res.Amount.Refund, res.Amount.PayerTotal, res.Amount.PayerRefund = o.AmountFen, 4999, o.AmountFen, 4999
	n, err := e.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventRefundSuccess, Summary: "退款成功", OriginalType: "refund", Resource: res})
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := e.post(n.Header, n.Body); status != http.StatusNoContent {
		t.Fatalf("late copy: got %d; want 204", status)
	}
	if again := e.order(o.OrderNo); again.Version != got.Version || again.RefundedFen != 4999 {
		t.Errorf("late copy changed the order: v%d %d fen", again.Version, again.RefundedFen)
	}
	second := confirm(0) // the rest
	inFlight := e.order(o.OrderNo)
	if inFlight.Status != store.StatusRefunding {
		t.Fatalf("after the second confirmation: got %s; want refunding", inFlight.Status)
	}
	n, err = e.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventRefundSuccess, Summary: "退款成功", OriginalType: "refund", Resource: res})
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := e.post(n.Header, n.Body); status != http.StatusNoContent {
		t.Fatalf("late copy during the second refund: got %d; want 204", status)
	}
	if again := e.order(o.OrderNo); again.Version != inFlight.Version || again.RefundedFen != 4999 || again.Status != store.StatusRefunding {
		t.Errorf("late copy of the first refund moved the second: %s v%d %d fen", again.Status, again.Version, again.RefundedFen)
	}
	complete(second)
	got = e.order(o.OrderNo)
	if got.Status != store.StatusRefunded || got.RefundedFen != o.AmountFen {
		t.Errorf("after the second refund: got %s %d; want refunded %d", got.Status, got.RefundedFen, o.AmountFen)
	}

	// A refund paygate never asked for is a disagreement.
	p := e.create("oUser-refund-unasked", 1)
	if _, err := e.sim.Pay(ctx, p.OrderNo); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: p.OrderNo, OutRefundNo: "RFunasked0001", Refund: 4999, Total: 4999}); err != nil {
		t.Fatal(err)
	}
	if d, err := e.sim.CompleteRefund(ctx, "RFunasked0001"); err != nil || !d.Acked {
		t.Fatalf("delivery: %+v %v", d, err)
	}
	if got := e.order(p.OrderNo); got.Status != store.StatusNeedsReview || !strings.HasPrefix(got.ReviewReason, "refund_not_requested") {
		t.Errorf("unasked refund: got %s %q; want needs_review refund_not_requested", got.Status, got.ReviewReason)
	}
	if n := e.counter("paygate_notifications_total", map[string]string{"event": wechatpay.EventRefundSuccess, "outcome": payments.OutcomeApplied}); n != 2 {
		t.Errorf("applied refund notifications: got %v; want 2", n)
	}

	// So is one on an order paygate has already refunded in part, or while
	// another of its refunds is in flight: not a late copy of a refund it
	// applied.
	for i, inFlight := range []bool{false, true} {
		q := e.create(fmt.Sprintf("oUser-refund-unasked-%d", i), 2)
		if _, err := e.sim.Pay(ctx, q.OrderNo); err != nil {
			t.Fatal(err)
		}
		refund := func(fen int64) string {
			t.Helper()
			p, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: q.User, OrderNo: q.OrderNo, Reason: "changed my mind", AmountFen: fen})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", q.User, p.RefundID); err != nil {
				t.Fatal(err)
			}
			return p.OutRefundNo
		}
		complete(refund(1000))
		if inFlight {
			refund(1500) // another refund: 10.00 again would be the first one asked again
		}
		no := fmt.Sprintf("RFunasked%04d", 10+i)
		if _, err := e.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: q.OrderNo, OutRefundNo: no, Refund: 2000, Total: q.AmountFen}); err != nil {
			t.Fatal(err)
		}
		if d, err := e.sim.CompleteRefund(ctx, no); err != nil || !d.Acked {
			t.Fatalf("delivery: %+v %v", d, err)
		}
		if got := e.order(q.OrderNo); got.Status != store.StatusNeedsReview || !strings.HasPrefix(got.ReviewReason, "refund_not_requested") {
			t.Errorf("unasked refund (another in flight: %v): got %s %q; want needs_review refund_not_requested", inFlight, got.Status, got.ReviewReason)
		}
	}
}

// TestRefundNotificationForAnUnknownOrderIsRecorded: a refund notification
// for an order paygate does not know is acknowledged (WeChat Pay's word on
// real money) and recorded as an orphan in review: with the refund it
// reports, not only the payment it implies, whether it is the first such
// word or a later one, and a copy notes nothing twice.
func TestRefundNotificationForAnUnknownOrderIsRecorded(t *testing.T) {
	e := newEnv(t, envOptions{})
	const no = "PGghostRefund00000001"
	refund := func(outRefundNo string, fen int64) {
		t.Helper()
		res := wxsim.RefundResource{
			MchID: e.sim.MchID(), TransactionID: "420000123477777777777777777777", OutTradeNo: no,
			RefundID: "503000000000000000000000" + outRefundNo[len(outRefundNo)-5:], OutRefundNo: outRefundNo, RefundStatus: "SUCCESS",
			SuccessTime: "2026-01-02T03:04:05+08:00", UserReceivedAccount: "支付用户零钱",
		}
		res.Amount.Total, res.Amount.Refund, res.Amount.PayerTotal, res.Amount.PayerRefund = 9998, fen, 9998, fen
		n, err := e.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventRefundSuccess, Summary: "退款成功", OriginalType: "refund", Resource: res})
		if err != nil {
			t.Fatal(err)
		}
		if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
			t.Fatalf("refund notification %s: %d %s; want 204", outRefundNo, status, body)
		}
	}
	refund("RFghostFirst00001", 3000)
	got := e.order(no)
	if got.Status != store.StatusNeedsReview || !strings.Contains(got.ReviewReason, "RFghostFirst00001") || !strings.Contains(got.ReviewReason, "3000 fen") {
		t.Fatalf("after the first refund word: %s, review reason %q; want needs_review naming RFghostFirst00001 of 3000 fen", got.Status, got.ReviewReason)
	}
	refund("RFghostFirst00001", 3000) // WeChat Pay's retry
	if again := e.order(no); again.ReviewReason != got.ReviewReason {
		t.Errorf("a copy changed the review reason:\n%q\nwas\n%q", again.ReviewReason, got.ReviewReason)
	}
	refund("RFghostSecond0002", 1000)
	if got = e.order(no); !strings.Contains(got.ReviewReason, "RFghostFirst00001") || !strings.Contains(got.ReviewReason, "RFghostSecond0002") {
		t.Errorf("after the second refund word: review reason %q; want both refunds named", got.ReviewReason)
	}
	if got.RefundedFen != 0 {
		t.Errorf("refunded_fen %d; want 0 (refunds paygate never asked for are noted, not counted)", got.RefundedFen)
	}
}
