package webhook_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestResendOfAPaymentGivenUpInAnEarlierBodyKeepsItsID: an order.paid
// rendered by an earlier version (its data.order without a key added
// since) was given up: the merchant's answer was lost (a proxy in front
// answered 502), so it may have delivered the goods. The body no longer
// announces the order's state as this version renders it, but the payment
// is the same one (README: the order.paid of an order's payment has an id
// made from the order number and WeChat Pay's transaction_id; only a
// forced resend has a new one). A resend without force must send it under
// that id, which the merchant discards if it acted; under a new id it
// delivered the goods twice.
func TestResendOfAPaymentGivenUpInAnEarlierBodyKeepsItsID(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			var up atomic.Bool
			acted := map[string]int{} // the order.paid ids the merchant acted on (under rc's lock)
			rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
				if nth == 0 && a.typ == webhook.TypeOrderPaid {
					acted[a.id]++ // the first sighting of an id: the merchant acts
				}
				if up.Load() {
					return http.StatusOK
				}
				return http.StatusBadGateway // its answer is lost on the way back
			})
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o := ob.create("PGEARLIERBODY"+driver, store.StatusAwaitingPayment)
			before := *o
			o.Status, o.UpdatedAt, o.PaidAt, o.TransactionID = store.StatusPaid, time.Now(), time.Now(), "4200EARLIER"+driver
			evs := webhook.Events(payments.Transition{Before: before, After: *o, Cause: "notification"})
			if len(evs) != 1 {
				t.Fatalf("%d events; want the order.paid", len(evs))
			}
			r := giveUpInAnEarlierBody(t, st, rc, clk, o, before.Status, evs[0])

			up.Store(true)
			a := postResend(t, r, o.OrderNo, "")
			if a.code != http.StatusAccepted || a.Type != webhook.TypeOrderPaid {
				t.Fatalf("resend: %+v; want 202 naming an order.paid", a)
			}
			runFor(t, r, clk, 2*time.Second)
			if a.EventID != evs[0].ID || len(acted) != 1 {
				t.Errorf("resend sent the payment as %s; the merchant acted on order.paid ids %v; want the given-up %s, acted on once", a.EventID, acted, evs[0].ID)
			}
		})
	}
}

// TestResendOfAReviewGivenUpInAnEarlierBodyIsNotSentUnderThePaymentsID:
// only an order.paid keeps its payment's id on a resend of an earlier
// body. An order.needs_review of a paid order (it has a transaction) sent
// under it was discarded by a merchant that had acted on the payment, as
// a repeat of it.
func TestResendOfAReviewGivenUpInAnEarlierBodyIsNotSentUnderThePaymentsID(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			var up atomic.Bool
			rc := newReceiver(t, clk.Now, func(a arrival, nth int) int {
				if up.Load() {
					return http.StatusOK
				}
				return http.StatusBadGateway
			})
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o := ob.create("PGEARLIERREVIEW"+driver, store.StatusAwaitingPayment)
			before := *o
			o.Status, o.UpdatedAt, o.PaidAt, o.TransactionID = store.StatusNeedsReview, time.Now(), time.Now(), "4200EARLIERREVIEW"+driver
			o.ReviewReason = "amount_mismatch: paid after close"
			paid := *o
			paid.Status = store.StatusPaid
			paidEvs := webhook.Events(payments.Transition{Before: before, After: paid, Cause: "notification"})
			evs := webhook.Events(payments.Transition{Before: before, After: *o, Cause: "notification"})
			if len(evs) != 1 || len(paidEvs) != 1 {
				t.Fatalf("%d events, %d of the payment; want the order.needs_review and the order.paid", len(evs), len(paidEvs))
			}
			r := giveUpInAnEarlierBody(t, st, rc, clk, o, before.Status, evs[0])
			up.Store(true)
			a := postResend(t, r, o.OrderNo, "")
			if a.code != http.StatusAccepted || a.Type != webhook.TypeOrderNeedsReview {
				t.Fatalf("resend: %+v; want 202 naming an %s", a, webhook.TypeOrderNeedsReview)
			}
			if a.EventID == paidEvs[0].ID {
				t.Errorf("resend sent the %s as %s, the id of the order's payment", a.Type, a.EventID)
			}
		})
	}
}

// giveUpInAnEarlierBody records o's transition from status with ev, its
// body as an earlier version rendered it (data.order without refunded_fen),
// and runs a relay until the receiver's failures give ev up.
func giveUpInAnEarlierBody(t *testing.T, st store.Store, rc *receiver, clk *clock, o *store.Order, status store.OrderStatus, ev store.Event) *webhook.Relay {
	t.Helper()
	old, err := sjson.DeleteBytes(ev.Payload, "data.order.refunded_fen")
	if err != nil {
		t.Fatal(err)
	}
	ev.Payload = old
	if err := st.UpdateOrder(context.Background(), o, status, ev); err != nil {
		t.Fatal(err)
	}
	r := newRelay(t, st, rc.URL, clk.Now, shortWindow)
	runFor(t, r, clk, 6*time.Second)
	if v := getAdminView(t, r); len(v.DeadLetters) != 1 || v.DeadLetters[0].EventID != ev.ID {
		t.Fatalf("dead letters %+v; want the %s", v.DeadLetters, ev.ID)
	}
	return r
}
