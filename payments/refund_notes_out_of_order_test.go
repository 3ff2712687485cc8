package payments_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestRefundNotificationsOutOfOrder: WeChat Pay retries a notification until
// it is acknowledged, so an earlier word about a refund can arrive after a
// later one (an ABNORMAL whose delivery failed while the merchant re-handled
// the refund and its SUCCESS got through), and a word can contradict one
// applied (a SUCCESS of a refund applied as CLOSED). On both drivers: a
// copy of a counted refund's SUCCESS changes nothing, also once partial
// refunds sum to the payment (the order stays refunded); a CLOSED or
// ABNORMAL of a refund counted already (its SUCCESS is final at WeChat Pay)
// goes to a person (needs_review, refund_contradicted) with refunded_fen
// and the refund's outcome as they were; a SUCCESS of a refund applied as
// CLOSED is not counted and goes to a person (needs_review), never a
// second count of money nobody confirmed twice.
func TestRefundNotificationsOutOfOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			l := newLifecycle(t, driver)
			confirm := func(o *store.Order, fen int64) string {
				t.Helper()
				return l.confirmRefund(t, o, fen)
			}
			refunded := func(no string, want int64, status store.OrderStatus) {
				t.Helper()
				if got := l.order(no); got.RefundedFen != want || got.Status != status {
					t.Fatalf("order %s refunded_fen %d; want %s %d", got.Status, got.RefundedFen, status, want)
				}
			}

			o := paidOrder(t, l.env, "oUser-refund-out-of-order", 2) // 99.98 CNY
			first := confirm(o, 1000)
			l.check(t, "first refund succeeded", o.OrderNo, l.refundNote(t, o, first, wechatpay.RefundSuccess, 1000),
				want{status: 204, order: store.StatusPartiallyRefunded, audit: "refund.succeeded", webhook: webhook.TypeRefundSucceeded, noteID: true})
			l.check(t, "its copy", o.OrderNo, l.refundNote(t, o, first, wechatpay.RefundSuccess, 1000),
				want{status: 204, order: store.StatusPartiallyRefunded})
			refunded(o.OrderNo, 1000, store.StatusPartiallyRefunded)

			// The rest: partial refunds summing to the payment leave it
			// refunded, not partially_refunded.
			last := confirm(o, 0)
			l.check(t, "the rest succeeded", o.OrderNo, l.refundNote(t, o, last, wechatpay.RefundSuccess, 8998),
				want{status: 204, order: store.StatusRefunded, audit: "refund.succeeded", webhook: webhook.TypeRefundSucceeded, noteID: true})
			refunded(o.OrderNo, 9998, store.StatusRefunded)
			l.check(t, "the first one's copy, after another refund", o.OrderNo, l.refundNote(t, o, first, wechatpay.RefundSuccess, 1000),
				want{status: 204, order: store.StatusRefunded})
			refunded(o.OrderNo, 9998, store.StatusRefunded)
			if n := l.sim.RefundCount(o.OrderNo); n != 2 {
				t.Errorf("simulator refunds %d; want 2 (one per confirmation)", n)
			}

			// A CLOSED or ABNORMAL of a refund counted already contradicts
			// WeChat Pay's own final SUCCESS, and paygate's record of money
			// that went back: a person hears of it (needs_review, alerted,
			// counted as a review), and refunded_fen and the refund's
			// outcome stay as they were; its copy is a duplicate.
			contradicted := func(name string, o *store.Order, no, status string, fen, refundedFen int64) {
				t.Helper()
				n := l.refundNote(t, o, no, status, fen)
				l.check(t, name, o.OrderNo, n,
					want{status: 204, order: store.StatusNeedsReview, reason: "refund_contradicted",
						audit: "order.needs_review", webhook: webhook.TypeOrderNeedsReview, noteID: true,
						metric: map[string]string{"outcome": "review", "reason": "refund_contradicted"}})
				if !strings.Contains(l.env.logs.String(), "ALERT: wechat pay's refund disagrees with the order record") ||
					!strings.Contains(l.env.logs.String(), `"reason":"refund_contradicted"`) {
					t.Errorf("%s: no alert of refund_contradicted", name)
				}
				l.check(t, name+", its copy", o.OrderNo, n, want{status: 204, order: store.StatusNeedsReview, reason: "refund_contradicted"})
				got := l.order(o.OrderNo)
				if got.RefundedFen != refundedFen || !slices.Contains(got.RefundNos, no) || slices.Contains(got.ClosedRefundNos, no) {
					t.Errorf("%s: refunded_fen %d refund_nos %v closed_refund_nos %v; want %d, it counted and not closed", name, got.RefundedFen, got.RefundNos, got.ClosedRefundNos, refundedFen)
				}
				for _, r := range got.RefundOutcomes {
					if r.OutRefundNo == no && r.Status != store.RefundSucceeded {
						t.Errorf("%s: outcomes %+v; want %s succeeded alone", name, got.RefundOutcomes, no)
					}
				}
			}
			contradicted("the first one's ABNORMAL, after another refund", o, first, wechatpay.RefundAbnormal, 1000, 9998)
			p := paidOrder(t, l.env, "oUser-refund-success-then-closed", 2)
			part := confirm(p, 1000)
			l.check(t, "refund succeeded", p.OrderNo, l.refundNote(t, p, part, wechatpay.RefundSuccess, 1000),
				want{status: 204, order: store.StatusPartiallyRefunded, audit: "refund.succeeded", webhook: webhook.TypeRefundSucceeded, noteID: true})
			contradicted("its CLOSED", p, part, wechatpay.RefundClosed, 1000, 1000)

			// A SUCCESS of a refund applied as CLOSED contradicts the
			// record: a person decides, and nothing is counted.
			c := paidOrder(t, l.env, "oUser-refund-closed-then-success", 1)
			closed := confirm(c, 0)
			l.check(t, "refund closed", c.OrderNo, l.refundNote(t, c, closed, wechatpay.RefundClosed, 4999),
				want{status: 204, order: store.StatusPaid, audit: "refund.failed", webhook: webhook.TypeRefundFailed, noteID: true})
			success := l.refundNote(t, c, closed, wechatpay.RefundSuccess, 4999)
			l.check(t, "the closed refund's SUCCESS", c.OrderNo, success,
				want{status: 204, order: store.StatusNeedsReview, reason: "refund_not_requested",
					audit: "order.needs_review", webhook: webhook.TypeOrderNeedsReview, noteID: true})
			l.check(t, "its copy", c.OrderNo, success, want{status: 204, order: store.StatusNeedsReview, reason: "refund_not_requested"})
			if got := l.order(c.OrderNo); got.RefundedFen != 0 || !strings.Contains(got.ReviewReason, closed) {
				t.Errorf("after the closed refund's SUCCESS: refunded_fen %d, reason %q; want 0 and the refund named", got.RefundedFen, got.ReviewReason)
			}

			// The same SUCCESS once the order is in review for another
			// reason (a refund made on the merchant platform): noted, and
			// counted no more than outside review.
			r := paidOrder(t, l.env, "oUser-refund-closed-then-review", 1)
			closed = confirm(r, 0)
			l.check(t, "refund closed", r.OrderNo, l.refundNote(t, r, closed, wechatpay.RefundClosed, 4999),
				want{status: 204, order: store.StatusPaid, audit: "refund.failed", webhook: webhook.TypeRefundFailed, noteID: true})
			l.check(t, "a refund made on the merchant platform", r.OrderNo, l.refundNote(t, r, "RFplatform-closed-review", wechatpay.RefundSuccess, 1),
				want{status: 204, order: store.StatusNeedsReview, reason: "refund_not_requested",
					audit: "order.needs_review", webhook: webhook.TypeOrderNeedsReview, noteID: true})
			l.check(t, "the closed refund's SUCCESS in review", r.OrderNo, l.refundNote(t, r, closed, wechatpay.RefundSuccess, 4999),
				want{status: 204, order: store.StatusNeedsReview, reason: "refund_not_requested", audit: "order.updated", webhook: webhook.TypeOrderNeedsReview, noteID: true})
			if got := l.order(r.OrderNo); got.RefundedFen != 0 || slices.Contains(got.RefundNos, closed) {
				t.Errorf("the closed refund's SUCCESS in review: refunded_fen %d, refund_nos %v; want 0 and it not counted, as outside review (reason %q)",
					got.RefundedFen, got.RefundNos, got.ReviewReason)
			}

			// A CLOSED or ABNORMAL of a refund counted already, told once
			// the order is in review for another reason: noted for the
			// person, and the refund's outcome stays succeeded (the user's
			// next turn is not told a refund that went back was closed or
			// stuck), named refund_contradicted as outside review.
			v := paidOrder(t, l.env, "oUser-refund-counted-then-review", 2)
			counted := confirm(v, 1000)
			l.check(t, "refund succeeded", v.OrderNo, l.refundNote(t, v, counted, wechatpay.RefundSuccess, 1000),
				want{status: 204, order: store.StatusPartiallyRefunded, audit: "refund.succeeded", webhook: webhook.TypeRefundSucceeded, noteID: true})
			l.check(t, "a refund made on the merchant platform", v.OrderNo, l.refundNote(t, v, "RFplatform-counted-review", wechatpay.RefundSuccess, 1),
				want{status: 204, order: store.StatusNeedsReview, reason: "refund_not_requested",
					audit: "order.needs_review", webhook: webhook.TypeOrderNeedsReview, noteID: true})
			for _, status := range []string{wechatpay.RefundClosed, wechatpay.RefundAbnormal} {
				n := l.refundNote(t, v, counted, status, 1000)
				if code, body := l.post(n.Header, n.Body); code != 204 {
					t.Fatalf("%s of a counted refund in review: %d %s", status, code, body)
				}
			}
			got := l.order(v.OrderNo)
			for _, status := range []string{wechatpay.RefundClosed, wechatpay.RefundAbnormal} {
				if note := "refund_contradicted: wechat pay refund " + counted + " (" + status + ")"; !strings.Contains(got.ReviewReason, note) {
					t.Errorf("counted refund's %s in review: reason %q; want it noted as %q…", status, got.ReviewReason, note)
				}
			}
			if got.RefundedFen != 1000 || slices.Contains(got.ClosedRefundNos, counted) {
				t.Errorf("counted refund's CLOSED in review: refunded_fen %d, closed_refund_nos %v; want 1000 and it not closed", got.RefundedFen, got.ClosedRefundNos)
			}
			for _, r := range got.RefundOutcomes {
				if r.OutRefundNo == counted && r.Status != store.RefundSucceeded {
					t.Errorf("counted refund's outcomes %+v; want succeeded alone (reason %q)", got.RefundOutcomes, got.ReviewReason)
				}
			}
		})
	}
}
