package webhook_test

import (
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
)

// TestResolvedPaymentAnnouncedOnceAfterRestore: an order paid from
// another app id (or by another payer) waits in review; a manager judges
// the payment good and resolves it paid, and the merchant delivers on its
// order.paid. The disk dies and a copy made before the resolution goes
// back (README, Restoring a backup): the order is in review again, and the
// manager, told to look its number up on the merchant platform, finds it
// paid there and resolves it paid again. The same payment announced again
// must carry the id the merchant handled, as the order.paid of a payment
// the sweep finds again does, or the merchant, deduplicating by id,
// delivers twice. A restore from before the payment may take the other
// road (the payment found by the sweep first, of the same transaction):
// one payment, one id.
func TestResolvedPaymentAnnouncedOnceAfterRestore(t *testing.T) {
	review := order(store.StatusNeedsReview, 0)
	review.ReviewReason = "appid_mismatch"
	paid := order(store.StatusPaid, 0)
	resolve := func() string {
		evs := webhook.Events(payments.Transition{Before: review, After: paid, Cause: payments.CauseResolve})
		if len(evs) != 1 {
			t.Fatalf("resolution: %d events; want one order.paid", len(evs))
		}
		return evs[0].ID
	}
	first, again := resolve(), resolve()
	if first != again {
		t.Errorf("the same payment resolved paid again after a restore was announced as %s; the merchant handled it as %s (a new id: the goods delivered twice)", again, first)
	}
	direct := webhook.Events(payments.Transition{Before: order(store.StatusAwaitingPayment, 0), After: paid, Cause: "notification"})
	if len(direct) != 1 || direct[0].ID != first {
		t.Errorf("order.paid of transaction %s: %v when found paid, %s when resolved paid; want one id", paid.TransactionID, ids(direct), first)
	}
	other := paid
	other.TransactionID = "4200000002"
	if evs := webhook.Events(payments.Transition{Before: review, After: other, Cause: payments.CauseResolve}); len(evs) != 1 || evs[0].ID == first {
		t.Errorf("another transaction's order.paid: %v; want its own id, not %s", ids(evs), first)
	}
}

func ids(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// TestRefundOutcomeAnnouncedOnceAfterRestore: a copy made while a
// confirmed refund was in flight (the order refunding) goes back after the
// refund succeeded and the merchant, told refund.succeeded, revoked what
// it refunds (README: a merchant revokes each refund once, by its event).
// The restored order is refunding: the sweep asks WeChat Pay, finds the
// refund done and announces it again. It must come under the id the
// merchant handled, or it revokes again (a credit ledger debited twice);
// another refund of the order has its own.
func TestRefundOutcomeAnnouncedOnceAfterRestore(t *testing.T) {
	p := &store.RefundProposal{RefundID: "rf_abc", OrderNo: "P20260304A1", AmountFen: 2000, Reason: "changed my mind"}
	for _, tc := range []struct {
		name  string
		after store.Order
	}{
		{"succeeded", order(store.StatusPartiallyRefunded, 2000)},
		{"failed", order(store.StatusPaid, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settle := func(p *store.RefundProposal) string {
				evs := webhook.Events(payments.Transition{Before: order(store.StatusRefunding, 0), After: tc.after, Cause: "reconcile", Refund: p})
				if len(evs) != 1 {
					t.Fatalf("refund settled: %d events; want one", len(evs))
				}
				return evs[0].ID
			}
			first, again := settle(p), settle(p)
			if first != again {
				t.Errorf("refund %s's outcome announced again after a restore as %s; the merchant handled it as %s (a new id: handled twice)", p.RefundID, again, first)
			}
			other := *p
			other.RefundID = "rf_def"
			if id := settle(&other); id == first {
				t.Errorf("another refund's outcome took %s, the id of %s's", id, p.RefundID)
			}
		})
	}
}
