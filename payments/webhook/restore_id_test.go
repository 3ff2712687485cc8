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
