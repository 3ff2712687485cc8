package payments_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestNotifyPaidOrderCopyThatDisagreesGoesToReview: a second notification
// of an order's transaction, already recorded as paid, that names another
// amount, currency, merchant, app id or payer is WeChat Pay's signed word disagreeing with
// the record (SPEC 2.4 checks amount.total and mchid against the stored
// order on every notification): it is acknowledged, and the order goes to
// needs_review, raised, not taken for a copy that changes nothing.
func TestNotifyPaidOrderCopyThatDisagreesGoesToReview(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name   string
		edit   func(*wxsim.Transaction)
		reason string
	}{
		{name: "amount", reason: "amount_mismatch", edit: func(tx *wxsim.Transaction) { tx.Amount.Total = 1 }},
		{name: "currency", reason: "currency_mismatch", edit: func(tx *wxsim.Transaction) { tx.Amount.Currency = "USD" }},
		{name: "mchid", reason: "mchid_mismatch", edit: func(tx *wxsim.Transaction) { tx.MchID = "1900009999" }},
		{name: "appid", reason: "appid_mismatch", edit: func(tx *wxsim.Transaction) { tx.AppID = "wx0000000000000000" }},
		{name: "payer", reason: "payer_mismatch", edit: func(tx *wxsim.Transaction) { tx.Payer = &wxsim.Payer{OpenID: "oSomeoneElse"} }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := e.create("oUser-copydiff-"+string(rune('a'+i)), 1)
			tx := e.paidTx(o)
			tx.TransactionID = "42000012" + strings.Repeat(string(rune('1'+i)), 20)
			first := e.buildPayment(tx, nil)
			if status, body := e.post(first.Header, first.Body); status != http.StatusNoContent {
				t.Fatalf("first: got %d %q; want 204", status, body)
			}
			paid := e.order(o.OrderNo)
			if paid.Status != store.StatusPaid {
				t.Fatalf("first: order %s; want paid", paid.Status)
			}
			tt.edit(&tx)
			n := e.buildPayment(tx, nil)
			for range 2 { // a retry of the differing copy changes nothing more
				if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent || body != "" {
					t.Fatalf("differing copy: got %d %q; want 204 (acknowledged)", status, body)
				}
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusNeedsReview || !strings.HasPrefix(got.ReviewReason, tt.reason) {
				t.Fatalf("order: got %s %q; want needs_review %s", got.Status, got.ReviewReason, tt.reason)
			}
			if got.Version != paid.Version+1 || got.TransactionID != paid.TransactionID {
				t.Errorf("order: version %d txid %s; want version %d txid %s", got.Version, got.TransactionID, paid.Version+1, paid.TransactionID)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"outcome": "review", "reason": tt.reason}); n != 1 {
				t.Errorf("review metric: got %v; want 1", n)
			}
		})
	}
	// A copy that agrees stays a duplicate (TestNotifyValidPaysOnce), and so
	// does a copy of a payment from another app id that a person settled
	// as paid from review: it says what the person saw.
	t.Run("resolved appid", func(t *testing.T) {
		o := e.create("oUser-copydiff-resolved", 1)
		tx := e.paidTx(o)
		tx.TransactionID = "42000012" + strings.Repeat("9", 20)
		tx.AppID = "wx0000000000000000"
		n := e.buildPayment(tx, nil)
		if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
			t.Fatalf("first: got %d %q; want 204", status, body)
		}
		if _, err := e.svc.Resolve(context.Background(), o.OrderNo, store.StatusPaid); err != nil {
			t.Fatalf("resolve as paid: %v", err)
		}
		paid := e.order(o.OrderNo)
		again := e.buildPayment(tx, nil)
		if status, body := e.post(again.Header, again.Body); status != http.StatusNoContent {
			t.Fatalf("copy: got %d %q; want 204", status, body)
		}
		if got := e.order(o.OrderNo); got.Status != store.StatusPaid || got.Version != paid.Version {
			t.Errorf("after the copy: %s v%d (%s); want paid v%d, as the person resolved it", got.Status, got.Version, got.ReviewReason, paid.Version)
		}
	})
}
